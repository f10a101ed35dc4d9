"""`manage.py import_customers FILE --map COLUMN=FIELD ... [--skip-bad-rows]`: import customers from CSV."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from customers.imports import ImportInvalid, import_customers, parse_mapping


class Command(BaseCommand):
    help = (
        "Import customers from a UTF-8 CSV file. Rows are matched by external_id, else by email (ignoring case); "
        "matched customers are updated (empty cells keep what is known), others are created. With any bad row "
        "nothing is imported unless --skip-bad-rows is given."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="The CSV file; the first line names the columns.")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="COLUMN=FIELD",
            help="Map a column to a field (Email=email) or an attribute (Tier=attributes.tier); declare a new "
            "attribute with its type (Points=attributes.points:number). Without --map, columns named like a "
            "field or attributes.<key> are imported.",
        )
        parser.add_argument("--skip-bad-rows", action="store_true", help="Import the good rows, report the bad.")

    def handle(self, *args, file: str, map: list[str], skip_bad_rows: bool, **options) -> None:
        try:
            mapping = parse_mapping(map) if map else None
            with open(file, "rb") as stream, tqdm(unit=" rows", disable=options["verbosity"] < 1) as bar:
                report = import_customers(
                    stream, mapping, skip_bad_rows=skip_bad_rows, progress=lambda rows: bar.update(rows - bar.n)
                )
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from exc
        except ImportInvalid as exc:
            raise CommandError(str(exc)) from exc
        for error in report.errors:
            value = f" (the cell holds {error.value!r})" if error.value else ""
            self.stderr.write(f"line {error.line}, column {error.column or '-'}: {error.reason}{value}")
        if report.bad_rows > len(report.errors):
            self.stderr.write(f"... and more: {report.bad_rows} bad rows in all")
        if not report.imported:
            raise CommandError(report.summary())
        self.stdout.write(self.style.SUCCESS(report.summary()))
