"""One module per app a group can be synced to, behind the small interface of `base.Provider`."""
