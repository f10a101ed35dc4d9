"""One module per app a group can be synced to, behind the small interface of `base.Provider`.

Each module registers itself; the app config imports them all at start.
"""
