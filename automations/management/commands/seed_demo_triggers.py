"""`manage.py seed_demo_triggers`: the example triggers of the demo (called by seed_demo)."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand

from automations.models import Trigger
from groups.models import CustomerGroup

TEA_EMAIL = {
    "subject": "A little thank-you, {{ customer.first_name|default:'tea lover' }}",
    "body": "Thank you for choosing our Chinese teas. Show this code for 5% off your next one: TEA5.",
}
CALL_LAPSED_VIP = {
    "title": "Call {{ customer }}: a VIP who has not visited in 60 days",
    "assignee": "admin",
    "due_in_days": 3,
    "notes": "Email {{ customer.email|default:'unknown' }}, phone {{ customer.phone|default:'unknown' }}.",
}


class Command(BaseCommand):
    help = "Create the demo's example triggers on the example groups (once)."

    def handle(self, *args, **options):
        groups = {g.slug: g for g in CustomerGroup.objects.all()}
        if Trigger.objects.exists() or "bought-chinese-tea" not in groups or "lapsed-vips" not in groups:
            return
        tea = Trigger.objects.create(name="Thank tea buyers with a code", group=groups["bought-chinese-tea"],
                                     action="email", settings=TEA_EMAIL, reentry=Trigger.Reentry.ONCE,
                                     minimum_time=timedelta(minutes=1))  # fmt: skip
        if "household-active-subscription" in groups:
            tea.suppressed_by.set([groups["household-active-subscription"]])
        Trigger.objects.create(name="Call lapsed VIPs", group=groups["lapsed-vips"], action="task",
                               settings=CALL_LAPSED_VIP, cooldown=timedelta(days=30))  # fmt: skip
        self.stdout.write("Example triggers created: an email for tea buyers, a task for lapsed VIPs.")
