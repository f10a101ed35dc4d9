"""CSV import of customers: map columns to fields and attributes, check every row, then upsert set-based.

The separator (comma, semicolon or tab) is read from the header line; the quote a spreadsheet-safe
export puts before a formula or a long number (ours, Shopify's) is taken off (customers.spreadsheet).
Every row is checked against the fields and the attribute catalogue while it is copied into a
temporary table; nothing reaches the customers table until the whole file has been read. With any
bad row the import stops there and reports every bad row (line, column, reason), unless staff chose
to skip bad rows. Good rows are then matched (external_id, else email ignoring case) and written
with one UPDATE ... FROM and one INSERT ... SELECT, and the groups evaluate all imported customers
once, after commit, with the reason "import".
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction

from . import fields, spreadsheet
from .attributes import KEY_RE, declared_types
from .models import AttributeDefinition, Customer
from .signals import announce, announcing_as
from .values import coerce_attribute_value

# The built-in fields an import may write, and their kind.
FIELDS = tuple(fields.CUSTOMER_FIELDS)
TEXT_FIELDS = fields.of_type(fields.CUSTOMER_FIELDS, fields.TEXT)
BOOLEAN_FIELDS = fields.of_type(fields.CUSTOMER_FIELDS, fields.BOOLEAN)
ATTRIBUTE_PREFIX = "attributes."
ATTRIBUTE_TYPES = fields.ATTRIBUTE_TYPES
MAX_REPORTED_ERRORS = 1000
# Wider files are refused: the mapping page lists every column, and no customer has that many fields.
MAX_COLUMNS = 1000
BATCH_ROWS = 5000
MAPPING_RE = re.compile(r"^(?P<column>.+?)=(?P<target>[^=:]+?)(?::(?P<type>[a-z]+))?$")
# The separators spreadsheets save CSV with: a semicolon where the comma is the decimal mark.
SEPARATORS = (",", ";", "\t")
# A bad value is shown in the report up to this many characters.
MAX_SHOWN_VALUE = 100


class ImportInvalid(ValueError):
    """The mapping or the file as a whole cannot be imported (not one bad row: those are reported)."""


@dataclass(frozen=True)
class ColumnMap:
    """One CSV column and where it goes: a built-in field or `attributes.<key>`; `type` declares a new
    attribute (text, number, boolean, date, datetime)."""

    column: str
    target: str
    type: str | None = None

    @property
    def attribute_key(self) -> str | None:
        return self.target[len(ATTRIBUTE_PREFIX) :] if self.target.startswith(ATTRIBUTE_PREFIX) else None


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    reason: str
    value: str = ""  # the cell as the file has it, shortened, so staff can find and fix it


@dataclass
class ImportReport:
    rows: int = 0
    bad_rows: int = 0
    created: int = 0
    updated: int = 0
    imported: bool = False
    errors: list[RowError] = field(default_factory=list)
    declared_attributes: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return self.bad_rows if self.imported else self.rows

    def as_dict(self) -> dict:
        return {**asdict(self), "skipped": self.skipped}

    def summary(self) -> str:
        if not self.imported:
            verb = "has" if self.bad_rows == 1 else "have"
            return (
                f"Nothing imported: {self.bad_rows} of {rows(self.rows)} {verb} problems. Fix them, or import "
                "the good rows only."
            )
        skipped = f", {rows(self.bad_rows, 'bad row')} skipped" if self.bad_rows else ""
        return f"Imported {rows(self.rows - self.bad_rows)}: {self.created} created, {self.updated} updated{skipped}."


def rows(count: int, word: str = "row") -> str:
    """ "1 row", "2 rows"."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def detect_separator(first_line: str) -> str:
    """The separator of a CSV file from its header line: the one that splits it into the most columns
    (a comma when none splits it, as for a file of one column)."""
    best, most = ",", 1
    for separator in SEPARATORS:
        columns = len(next(csv.reader([first_line], delimiter=separator), []))
        if columns > most:
            best, most = separator, columns
    return best


def _shown(raw: str) -> str:
    # The report is stored as jsonb, which cannot hold NUL: it is shown by its symbol instead.
    raw = raw.replace("\x00", "\u2400")
    return raw if len(raw) <= MAX_SHOWN_VALUE else raw[: MAX_SHOWN_VALUE - 1] + "…"


def parse_mapping(specs: Iterable[str]) -> list[ColumnMap]:
    """`["Email=email", "Tier=attributes.tier:text"]` as column maps; ImportInvalid says which is wrong."""
    mapping = []
    for spec in specs:
        match = MAPPING_RE.match(spec.strip())
        if match is None:
            raise ImportInvalid(f"cannot read the mapping {spec!r}; write COLUMN=FIELD or COLUMN=attributes.KEY:TYPE")
        mapping.append(ColumnMap(match["column"].strip(), match["target"].strip(), match["type"]))
    return mapping


def guess_mapping(header: Iterable[str]) -> list[ColumnMap]:
    """Columns named like a field ("Email", "first name") or `attributes.<key>` map to it."""
    mapping = []
    for column in header:
        name = column.strip().lower().replace(" ", "_").replace("-", "_")
        if name in FIELDS:
            mapping.append(ColumnMap(column, name))
        elif name.startswith(ATTRIBUTE_PREFIX) and KEY_RE.match(column.strip()[len(ATTRIBUTE_PREFIX) :]):
            mapping.append(ColumnMap(column, ATTRIBUTE_PREFIX + column.strip()[len(ATTRIBUTE_PREFIX) :]))
    return mapping


def read_header(data: bytes) -> list[str]:
    """The column names of a CSV file's first line; ImportInvalid when they cannot be imported."""
    _refuse_utf16(data[:4])
    text = data[:65536].decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text), delimiter=detect_separator(text.partition("\n")[0]))
    header = next(reader, [])
    check_header(header)
    return header


def check_header(header: list[str]) -> None:
    if len(header) > MAX_COLUMNS:
        raise ImportInvalid(f"the file has {len(header)} columns; at most {MAX_COLUMNS} columns can be imported")
    if any("\x00" in column for column in header):
        raise ImportInvalid("the first line holds the NUL character; save the file as CSV UTF-8 and try again")


def _refuse_utf16(start: bytes) -> None:
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportInvalid("the file is UTF-16 text; save it as CSV UTF-8 and import it again")


class _RowChecker:
    """Turns one CSV record into the values to write, listing each cell that does not fit."""

    def __init__(self, mapping: list[ColumnMap], types: dict[str, str]) -> None:
        self.mapping = mapping
        self.types = types
        self.lengths = {name: Customer._meta.get_field(name).max_length for name in TEXT_FIELDS}

    def check(self, record: dict[str, str], line: int) -> tuple[dict[str, Any], list[RowError]]:
        values: dict[str, Any] = {}
        attributes: dict[str, Any] = {}
        errors: list[RowError] = []
        for item in self.mapping:
            raw = spreadsheet.unquote((record.get(item.column) or "").strip())
            if raw == "":
                continue  # an empty cell leaves what we know alone
            if "\x00" in raw:
                errors.append(RowError(line, item.column, "a cell cannot hold the NUL character", _shown(raw)))
                continue
            key = item.attribute_key
            try:
                if key is not None:
                    type_ = self.types.get(key)
                    attributes[key] = coerce_attribute_value(type_, raw) if type_ else raw
                else:
                    values[item.target] = self._field(item.target, raw)
            except (ValueError, ValidationError) as exc:
                reason = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
                errors.append(RowError(line, item.column, reason, _shown(raw)))
        if not values.get("external_id") and not values.get("email") and not errors:
            errors.append(RowError(line, self._match_column(), "needs an external_id or an email to match a customer"))
        if attributes:
            values["attributes"] = attributes
        return values, errors

    def _field(self, name: str, raw: str) -> Any:
        if name in TEXT_FIELDS:
            if len(raw) > self.lengths[name]:
                raise ValueError(f"{name} is at most {self.lengths[name]} characters, got {len(raw)}")
            if name == "email":
                validate_email(raw)
            return raw
        if name == "birthdate":
            try:
                return dt.date.fromisoformat(raw).isoformat() if len(raw) == 10 else _bad_date(raw)
            except ValueError:
                return _bad_date(raw)
        return coerce_attribute_value("boolean", raw)

    def _match_column(self) -> str:
        for item in self.mapping:
            if item.target in ("external_id", "email"):
                return item.column
        return ""


def _bad_date(raw: str):
    raise ValueError(f"expected a date as YYYY-MM-DD, got {raw!r}")


def check_mapping(mapping: list[ColumnMap], header: list[str], types: dict[str, str]) -> dict[str, str]:
    """Problems with the mapping as a whole raise ImportInvalid; returns the new attributes to declare."""
    problems = []
    new_types: dict[str, str] = {}
    targets = [m.target for m in mapping]
    for item in mapping:
        if item.column not in header:
            problems.append(f"column {item.column!r} is not in the file (its columns: {', '.join(header)})")
        elif header.count(item.column) > 1:
            problems.append(f"column {item.column!r} appears {header.count(item.column)} times in the header; "
                            "rename the copies so that each column has its own name")  # fmt: skip
        key = item.attribute_key
        if key is None:
            if item.target not in FIELDS:
                problems.append(
                    f"{item.column!r} maps to unknown field {item.target!r}; fields: {', '.join(FIELDS)}, "
                    "or attributes.<key>"
                )
            if item.type:
                problems.append(f"{item.column!r}: only a new attribute takes a type, not the field {item.target!r}")
            continue
        if not KEY_RE.match(key):
            problems.append(f"{item.column!r}: attribute keys are 1 to 100 letters, digits, _ or -, not {key!r}")
        elif item.type:
            if item.type not in ATTRIBUTE_TYPES:
                problems.append(
                    f"{item.column!r}: unknown attribute type {item.type!r}; types: {', '.join(ATTRIBUTE_TYPES)}"
                )
            elif key in types and types[key] != item.type:
                problems.append(
                    f"{item.column!r}: attribute {key!r} is already declared as {types[key]}, not {item.type}"
                )
            elif key not in types:
                new_types[key] = item.type
    for target in set(targets):
        if targets.count(target) > 1:
            problems.append(f"more than one column maps to {target!r}")
    if "external_id" not in targets and "email" not in targets:
        problems.append("map a column to external_id or to email, so rows can be matched to customers")
    if problems:
        raise ImportInvalid("; ".join(problems))
    return new_types


class _Abandon(Exception):
    """Bad rows and no permission to skip them: roll back the staged rows."""


def import_customers(
    stream: IO[bytes] | IO[str],
    mapping: list[ColumnMap] | None = None,
    *,
    skip_bad_rows: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import a CSV file of customers (UTF-8, with or without BOM, header on the first line).

    `mapping` None maps columns named like fields. Raises ImportInvalid for a mapping that cannot
    work; bad rows are reported, not raised. `progress(rows_read)` is called every few thousand rows.
    """
    lines = iter(_text(stream))
    try:
        first = next(lines, "")
        # strict: an unterminated quote is an error, not a last cell that swallows the rest of the file.
        reader = csv.DictReader(itertools.chain([first], lines), delimiter=detect_separator(first), strict=True)
        header = [h for h in (reader.fieldnames or []) if h is not None]
    except UnicodeDecodeError as exc:
        raise ImportInvalid(f"the file is not UTF-8 text (save it as CSV UTF-8): {exc.reason}") from exc
    except csv.Error as exc:
        raise ImportInvalid(f"line 1: {_csv_problem(exc)}") from exc
    if not header:
        raise ImportInvalid("the file is empty: the first line must name the columns")
    check_header(header)
    mapping = mapping if mapping is not None else guess_mapping(header)
    types = declared_types()
    new_types = check_mapping(mapping, header, types)
    checker = _RowChecker(mapping, {**types, **new_types})
    report = ImportReport(declared_attributes=sorted(new_types))
    try:
        with transaction.atomic(), announcing_as("import"):
            _stage(reader, checker, report, progress)
            if report.bad_rows and not skip_bad_rows:
                raise _Abandon
            AttributeDefinition.objects.bulk_create(
                [AttributeDefinition(key=k, type=t, entity="customer") for k, t in new_types.items()]
            )
            ids, report.created, report.updated = _upsert()
            report.imported = True
            announce(ids, reason="import")
    except _Abandon:
        pass
    return report


def _text(stream: IO[bytes] | IO[str]) -> Iterator[str]:
    if isinstance(stream, io.TextIOBase):
        return stream
    if stream.seekable():
        _refuse_utf16(stream.read(2))
        stream.seek(0)
    # utf-8-sig drops a spreadsheet's byte order mark; a bad byte is an error, never silently replaced.
    return codecs.getreader("utf-8-sig")(stream)


STAGE_COLUMNS = ("line", *TEXT_FIELDS, "birthdate", *BOOLEAN_FIELDS, "attributes")


def _stage(reader: csv.DictReader, checker: _RowChecker, report: ImportReport, progress) -> None:
    """Check every row and COPY the good ones into a temporary table (gone at commit or rollback).

    Rows are copied in batches, so memory stays bounded and progress can be told between batches
    (the connection is busy while a COPY is open).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE TEMPORARY TABLE customer_import (
                line integer NOT NULL, {", ".join(f"{name} text" for name in TEXT_FIELDS)},
                birthdate date, email_consent boolean, sms_consent boolean, attributes jsonb,
                customer_id bigint
            ) ON COMMIT DROP
            """
        )
        batch: list[list] = []
        records = iter(reader)
        start = 0
        try:
            while True:
                start = reader.line_num + 1  # where the next record begins, for errors that end it early
                record = next(records, None)
                if record is None:
                    break
                report.rows += 1
                line = reader.line_num
                if None in record:
                    report.bad_rows += 1
                    _note(report, RowError(line, "", "more cells than the header has columns"))
                    continue
                values, errors = checker.check(record, line)
                if errors:
                    report.bad_rows += 1
                    for error in errors:
                        _note(report, error)
                    continue
                attributes = values.get("attributes")
                batch.append(
                    [
                        line,
                        *(values.get(name) for name in STAGE_COLUMNS[1:-1]),
                        json.dumps(attributes) if attributes else None,
                    ]
                )
                if len(batch) >= BATCH_ROWS:
                    _copy(cursor, batch)
                    if progress is not None:
                        progress(report.rows)
        except UnicodeDecodeError as exc:
            raise ImportInvalid(f"the file is not UTF-8 text (near line {reader.line_num + 1}): {exc.reason}") from exc
        except csv.Error as exc:
            raise ImportInvalid(f"line {start}: {_csv_problem(exc)}") from exc
        _copy(cursor, batch)
    if progress is not None:
        progress(report.rows)


def _csv_problem(exc: csv.Error) -> str:
    if "unexpected end of data" in str(exc):
        return "a quoted cell starts here and its closing quote is missing"
    return str(exc)


def _copy(cursor, batch: list[list]) -> None:
    if batch:
        with cursor.copy(f"COPY customer_import ({', '.join(STAGE_COLUMNS)}) FROM STDIN") as copy:
            for row in batch:
                copy.write_row(row)
        batch.clear()


def _note(report: ImportReport, error: RowError) -> None:
    if len(report.errors) < MAX_REPORTED_ERRORS:
        report.errors.append(error)


def _upsert() -> tuple[list[int], int, int]:
    """Match staged rows to customers, update the matched, insert the rest; the ids written and counts."""
    set_text = ", ".join(f"{name} = COALESCE(t.{name}, c.{name})" for name in TEXT_FIELDS)
    insert_text = ", ".join(f"COALESCE(t.{name}, '')" for name in TEXT_FIELDS if name != "external_id")
    text_columns = ", ".join(name for name in TEXT_FIELDS if name != "external_id")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            -- The same customer twice in one file: the last row wins.
            DELETE FROM customer_import t USING (
                SELECT line, row_number() OVER (
                    PARTITION BY COALESCE('x:' || external_id, 'e:' || lower(email)) ORDER BY line DESC) AS nth
                FROM customer_import
            ) seen
            WHERE seen.line = t.line AND seen.nth > 1;
            UPDATE customer_import t SET customer_id = c.id
            FROM customers_customer c WHERE t.external_id IS NOT NULL AND c.external_id = t.external_id;
            -- Else by email, ignoring case (served by the lower(email) index); with a new external_id,
            -- only a customer without one of its own (a web sign-up later seen at the till).
            UPDATE customer_import t SET customer_id = (
                SELECT c.id FROM customers_customer c
                WHERE lower(c.email) = lower(t.email) AND (t.external_id IS NULL OR c.external_id IS NULL)
                ORDER BY c.id LIMIT 1
            )
            WHERE t.customer_id IS NULL AND t.email IS NOT NULL;
            DELETE FROM customer_import t USING (
                SELECT line, row_number() OVER (PARTITION BY customer_id ORDER BY line DESC) AS nth
                FROM customer_import WHERE customer_id IS NOT NULL
            ) seen
            WHERE seen.line = t.line AND seen.nth > 1;
            ANALYZE customer_import;
            """
        )
        cursor.execute(
            f"""
            UPDATE customers_customer c SET {set_text},
                birthdate = COALESCE(t.birthdate, c.birthdate),
                email_consent = COALESCE(t.email_consent, c.email_consent),
                sms_consent = COALESCE(t.sms_consent, c.sms_consent),
                attributes = c.attributes || COALESCE(t.attributes, '{{}}'::jsonb),
                updated_at = statement_timestamp()
            FROM customer_import t WHERE c.id = t.customer_id
            RETURNING c.id
            """
        )
        updated = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"""
            INSERT INTO customers_customer (external_id, {text_columns}, birthdate, email_consent, sms_consent,
                                            attributes, created_at, updated_at)
            SELECT t.external_id, {insert_text}, t.birthdate, COALESCE(t.email_consent, false),
                   COALESCE(t.sms_consent, false), COALESCE(t.attributes, '{{}}'::jsonb),
                   statement_timestamp(), statement_timestamp()
            FROM customer_import t WHERE t.customer_id IS NULL ORDER BY t.line
            RETURNING id
            """
        )
        created = [row[0] for row in cursor.fetchall()]
    return updated + created, len(created), len(updated)
