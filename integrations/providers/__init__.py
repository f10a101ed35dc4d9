"""One module per app a group can be synced to, behind the small interface of `base.Provider`.

Importing a provider module registers it; the list below is every app the connection picker offers.
"""

from . import klaviyo, mailchimp  # noqa: F401
