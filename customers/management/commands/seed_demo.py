"""`manage.py seed_demo`: fill an empty database with demo customers, accounts, events and example groups."""

from __future__ import annotations

import time

from django.apps import apps
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from customers import demo
from customers.models import Account, Customer


class Command(BaseCommand):
    help = (
        "Load demo data: customers with roles, statuses, consents, birthdates and attributes, households and "
        "business accounts, a year of check-ins and purchases, and the example groups of the product docs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=3000, help="How many customers (default 3000).")
        parser.add_argument("--seed", type=int, default=1, help="Random seed: the same seed gives the same data.")
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when customers already exist.")

    def handle(self, *args, customers: int, seed: int, if_empty: bool, verbosity: int = 1, **options):
        if customers < 1:
            raise CommandError("--customers must be at least 1.")
        # Accounts count too: the demo's account ids (H00001...) would collide with existing ones.
        existing = f"{Customer.objects.count()} customers and {Account.objects.count()} accounts"
        if Customer.objects.exists() or Account.objects.exists():
            if if_empty:
                self.stdout.write(f"Demo data skipped: the database already has {existing}.")
                return
            raise CommandError(
                f"The database already has {existing}; seed_demo only fills an empty database "
                "(add --if-empty to skip quietly)."
            )

        started = time.monotonic()
        # The bars go to stderr, so the summary on stdout stays one clean line; verbosity 0 hides them.
        # tqdm writes to the stream under Django's wrapper, which would end each redraw with a newline.
        bars: list[tqdm] = []

        def bar(total: int, description: str, unit: str):
            stream = self.stderr._out
            bars.append(tqdm(total=total, desc=description, unit=unit, file=stream, disable=verbosity == 0))
            return bars[-1].update

        try:
            with transaction.atomic():
                # COPY bypasses model signals on purpose: nothing is announced customer by customer,
                # because the groups below are refreshed in full once everything is in.
                counts = demo.load(
                    size=customers,
                    seed=seed,
                    now=timezone.now(),
                    generating=bar(customers, "Generating customers", "customer"),
                    writing=lambda total: bar(total, "Writing rows", "row"),
                )
                for done in bars:
                    done.close()  # before the groups' own output
                # The example groups belong to the groups app, which this app must not import.
                if apps.is_installed("groups"):
                    call_command("seed_demo_groups", stdout=self.stdout)
        finally:
            for done in bars:
                done.close()
        # After the commit: triggers start at the feed's head, so the demo's own filling fires nothing.
        if apps.is_installed("automations"):
            call_command("seed_demo_triggers", stdout=self.stdout)
        summary = ", ".join(f"{count} {name}" for name, count in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Demo data loaded in {time.monotonic() - started:.1f} s: {summary}."))
