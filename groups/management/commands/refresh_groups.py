"""`manage.py refresh_groups --group ID ... | --all`: full refresh by hand, with a progress bar."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from groups import services
from groups.dependencies import dependency_order
from groups.models import CustomerGroup, Reason


class Command(BaseCommand):
    help = "Refresh groups now (dependencies first) and report what changed."

    def add_arguments(self, parser):
        parser.add_argument("--group", type=int, action="append", default=[], metavar="ID", help="a group id (repeat)")
        parser.add_argument("--all", action="store_true", help="every active dynamic group")

    def handle(self, *args, group: list[int], all: bool, **options):
        if bool(group) == all:
            raise CommandError("Give either --group ID (one or more) or --all.")
        groups = CustomerGroup.objects.dynamic()
        if all:
            groups = groups.filter(is_active=True)
        else:
            groups = groups.filter(pk__in=group)
            missing = set(group) - set(groups.values_list("pk", flat=True))
            if missing:
                raise CommandError(f"No dynamic group with id {', '.join(map(str, sorted(missing)))}.")
        ordered = dependency_order(list(groups))
        failed = 0
        with tqdm(ordered, unit="group", disable=not ordered, file=self.stderr) as bar:
            for item in bar:
                bar.set_description(item.name[:40])
                try:
                    run = services.refresh(item, reason=Reason.MANUAL_REFRESH)
                except Exception as exc:  # one failing group must not stop the others; it is recorded on its run
                    failed += 1
                    bar.write(f"{item.name}: failed: {exc}", file=self.stdout)
                    continue
                bar.write(
                    f"{item.name}: +{run.added} -{run.removed} in {run.duration_ms} ms ({run.status})", file=self.stdout
                )
        if failed:
            raise CommandError(f"{failed} of {len(ordered)} groups failed; see their processing history.")
        self.stdout.write(self.style.SUCCESS(f"Refreshed {len(ordered)} groups."))
