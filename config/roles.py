"""The staff roles: Viewer, Editor and Group admin, as Django auth groups with their permissions.

`manage.py setup_roles` (run by `make run` after migrating) creates them or puts them back to these
permissions. A role only adds permissions: superusers keep everything, and the System tables (API
keys, staff users and roles, Celery beat's schedules, login lockouts) are for superusers alone.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction

VIEWER = "Viewer"
EDITOR = "Editor"
GROUP_ADMIN = "Group admin"

# What the back office shows: customers and their data, groups and what happened to them, syncs and
# automations. Looking includes every tab and the history, not downloading the customers (below).
VIEWED = {
    "customers": ["customer", "account", "accountmembership", "event", "attributedefinition", "customerimport"],
    "groups": ["customergroup", "membership", "membershipchange", "refreshrun", "ruleversion", "sizesnapshot", "tag"],
    "integrations": ["connection", "groupsync", "syncbatch", "syncskip", "remotecontact", "receivedwebhook"],
    "automations": ["trigger", "firing", "task", "send", "sendrecipient"],
}

VIEWER_PERMISSIONS = [f"{app}.view_{model}" for app, models in VIEWED.items() for model in models]

# Day-to-day marketing work: keep customers current (by hand and by CSV import), download them, build
# and change groups (rules, manual members, refresh, activation, copies, sync on or off), and run
# automations and one-off sends. Nothing is deleted.
EDITOR_PERMISSIONS = [
    *VIEWER_PERMISSIONS,
    "customers.export_customer",
    "customers.add_customer", "customers.change_customer",
    "customers.add_account", "customers.change_account",
    "customers.add_accountmembership", "customers.change_accountmembership", "customers.delete_accountmembership",
    "customers.add_event",
    "groups.add_customergroup", "groups.change_customergroup",
    "groups.add_tag", "groups.change_tag",
    "automations.add_trigger", "automations.change_trigger",
    "automations.change_task",
    "automations.add_send", "automations.change_send",
]  # fmt: skip

# Everything an editor does, and what changes the set-up for everyone: deleting groups, tags and
# accounts, the attribute catalogue (which types what rules and imports read), connections to other
# apps (their credentials) and removing automations. Deleting a customer also deletes their events and
# group history, so it stays with superusers.
GROUP_ADMIN_PERMISSIONS = [
    *EDITOR_PERMISSIONS,
    "customers.delete_account",
    "customers.add_attributedefinition", "customers.change_attributedefinition",
    "customers.delete_attributedefinition",
    "groups.delete_customergroup", "groups.delete_tag",
    "integrations.add_connection", "integrations.change_connection", "integrations.delete_connection",
    "automations.delete_trigger", "automations.delete_task", "automations.delete_send",
]  # fmt: skip

ROLES: dict[str, list[str]] = {
    VIEWER: VIEWER_PERMISSIONS,
    EDITOR: EDITOR_PERMISSIONS,
    GROUP_ADMIN: GROUP_ADMIN_PERMISSIONS,
}


def permissions_of(names: list[str]) -> list[Permission]:
    """The Permission rows for "app.codename" names; a name with no row is a mistake here, said at once."""
    wanted = {tuple(name.split(".", 1)) for name in names}
    found = Permission.objects.filter(codename__in=[codename for _, codename in wanted]).select_related("content_type")
    rows = [p for p in found if (p.content_type.app_label, p.codename) in wanted]
    missing = wanted - {(p.content_type.app_label, p.codename) for p in rows}
    if missing:
        raise LookupError(f"no such permissions (is the database migrated?): {sorted(missing)}")
    return rows


@transaction.atomic
def setup_roles() -> dict[str, int]:
    """Create the roles, or set them back to exactly their permissions; how many each has."""
    counts = {}
    for name, names in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(permissions_of(names))
        counts[name] = len(set(names))
    return counts
