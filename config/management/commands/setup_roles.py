"""`manage.py setup_roles`: create the staff roles Viewer, Editor and Group admin (or reset their permissions)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from config.roles import setup_roles


class Command(BaseCommand):
    help = (
        "Create the staff roles Viewer, Editor and Group admin with their permissions (README, Staff roles); "
        "run again, it sets a role changed by hand back to them. Add staff to a role on System > Staff roles."
    )

    def handle(self, *args, **options):
        counts = setup_roles()
        summary = ", ".join(f"{name} ({count} permissions)" for name, count in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Staff roles ready: {summary}."))
