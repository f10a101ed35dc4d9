"""CSV export of a group's members or of any customer list, streamed in constant memory.

The rows never pass through the ORM: PostgreSQL writes the CSV itself (`COPY (SELECT ...) TO STDOUT`)
and we pass its output on in chunks, so a million members cost the same memory as ten. Cells that a
spreadsheet would run as a formula are prefixed with a single quote in the same SQL, by the rule of
`customers.spreadsheet` (which the import reads them back with). The admin's pages (a group's
members, the customer list) and the API all call `export_response`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence

from django.db import connection
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils.text import slugify

from customers import fields, spreadsheet

from .models import CustomerGroup

BOM = "\ufeff".encode()
TEXT_FIELDS = fields.of_type(fields.CUSTOMER_FIELDS, fields.TEXT)
BOOLEAN_FIELDS = fields.of_type(fields.CUSTOMER_FIELDS, fields.BOOLEAN)
DATETIME_FIELDS = tuple(fields.CUSTOMER_TIMESTAMPS)
CUSTOMER_COLUMNS = ("id", *fields.CUSTOMER_FIELDS, *DATETIME_FIELDS)
# Only a group's export knows when each member joined.
GROUP_COLUMNS = (*CUSTOMER_COLUMNS, "added_at")
DEFAULT_COLUMNS = ("id", "external_id", "email", "phone", "first_name", "last_name", "email_consent", "sms_consent")
ATTRIBUTE_RE = re.compile(r"^attributes\.([A-Za-z0-9_-]{1,100})$")
CHUNK_BYTES = 256 * 1024


def _sql_text(text: str) -> str:
    """A literal for characters of customers.spreadsheet's rule (COPY cannot take parameters)."""
    return " || ".join(f"chr({ord(character)})" for character in text)


FORMULA_STARTS_SQL = ", ".join(_sql_text(start) for start in spreadsheet.FORMULA_STARTS)
CONTROL_STARTS_SQL = ", ".join(_sql_text(start) for start in spreadsheet.CONTROL_STARTS)
LEADING_SPACE_SQL = _sql_text(spreadsheet.LEADING_SPACE)
QUOTE_SQL = _sql_text(spreadsheet.QUOTE)


# Viewing customers is not downloading them all (emails, phones): exports take a permission of their own.
EXPORT_PERMISSION = "customers.export_customer"
EXPORT_NEEDED = "Exporting needs the permission “Can export customers and group members as CSV”."


def may_export(user) -> bool:
    """Whether this user may download customers as CSV: a group's members or a customer list."""
    return user.has_perm("customers.view_customer") and user.has_perm(EXPORT_PERMISSION)


class ColumnsInvalid(ValueError):
    """Columns that cannot be exported; the message names them and lists what can be."""


def parse_columns(text: str | Sequence[str] | None, *, for_group: bool) -> list[str]:
    """The chosen columns ("id,email,attributes.tier" or a list); the defaults when none are given."""
    if text is None or text == "" or text == []:
        return list(DEFAULT_COLUMNS)
    names = [c.strip() for c in text.split(",")] if isinstance(text, str) else [str(c).strip() for c in text]
    allowed = GROUP_COLUMNS if for_group else CUSTOMER_COLUMNS
    unknown = [n for n in names if n not in allowed and not ATTRIBUTE_RE.match(n)]
    if unknown:
        raise ColumnsInvalid(
            f"unknown column(s): {', '.join(repr(n) for n in unknown)}; choose from {', '.join(allowed)} "
            "or attributes.<key>"
        )
    if not names or "" in names:
        raise ColumnsInvalid("empty column name; separate column names with single commas")
    return names


def _safe_text(expression: str) -> str:
    # A leading quote makes spreadsheets show the text instead of evaluating it (OWASP CSV injection).
    return (
        f"CASE WHEN left(ltrim({expression}, {LEADING_SPACE_SQL}), 1) IN ({FORMULA_STARTS_SQL}) "
        f"OR left({expression}, 1) IN ({CONTROL_STARTS_SQL}) THEN '''' || {expression} ELSE {expression} END"
    )


def _column_sql(name: str) -> str:
    if name == "id":
        return "c.id"
    if name in TEXT_FIELDS:
        return _safe_text(f"c.{name}")
    if name == "birthdate":
        return "to_char(c.birthdate, 'YYYY-MM-DD')"
    if name in BOOLEAN_FIELDS:
        return f"CASE WHEN c.{name} THEN 'true' ELSE 'false' END"
    if name in DATETIME_FIELDS or name == "added_at":
        table = "m" if name == "added_at" else "c"
        return f"""to_char({table}.{name} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
    match = ATTRIBUTE_RE.match(name)
    if match is None:  # parse_columns keeps this from happening
        raise ColumnsInvalid(f"unknown column {name!r}")
    # The key matched [A-Za-z0-9_-] only, so it is safe as a literal (COPY cannot take parameters).
    value = f"(c.attributes ->> '{match.group(1)}')"
    # Only JSON strings can hold a formula; numbers such as -5 are left as they are.
    is_string = f"jsonb_typeof(c.attributes -> '{match.group(1)}') = 'string'"
    return f"CASE WHEN {is_string} THEN {_safe_text(value)} ELSE {value} END"


def export_sql(source: CustomerGroup | QuerySet, columns: Sequence[str]) -> tuple[str, list]:
    """The SELECT whose rows are the CSV rows, ordered by customer id, and its parameters."""
    select = ", ".join(_column_sql(name) for name in columns)
    if isinstance(source, CustomerGroup):
        return (
            f"SELECT {select} FROM groups_membership m JOIN customers_customer c ON c.id = m.customer_id "
            "WHERE m.group_id = %s ORDER BY m.customer_id",
            [source.pk],
        )
    if "added_at" in columns:
        raise ColumnsInvalid("'added_at' exists only in a group's export")
    inner, params = source.order_by().values("pk").query.sql_with_params()
    return f"SELECT {select} FROM customers_customer c WHERE c.id IN ({inner}) ORDER BY c.id", list(params)


def header_line(columns: Iterable[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(columns)
    return buffer.getvalue().encode()


def stream_csv(source: CustomerGroup | QuerySet, columns: Sequence[str], *, bom: bool = False) -> Iterator[bytes]:
    """The CSV as chunks of about CHUNK_BYTES: header first, then the rows as PostgreSQL writes them."""
    sql, params = export_sql(source, columns)
    yield (BOM if bom else b"") + header_line(columns)
    yield from copy_csv(sql, params)


def copy_csv(sql: str, params: Sequence) -> Iterator[bytes]:
    """The rows of a SELECT as CSV, written by PostgreSQL, in chunks of about CHUNK_BYTES."""
    with connection.cursor() as cursor:
        # Parameters are merged client-side by psycopg: COPY does not accept bound parameters.
        statement = cursor.mogrify(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params)
        pending = bytearray()
        with cursor.copy(statement) as copy:
            for data in copy:
                pending += data
                if len(pending) >= CHUNK_BYTES:
                    yield bytes(pending)
                    pending.clear()
        if pending:
            yield bytes(pending)


def export_response(
    queryset_or_group: CustomerGroup | QuerySet,
    columns: Sequence[str] | str | None = None,
    bom: bool = False,
    *,
    filename: str | None = None,
) -> StreamingHttpResponse:
    """A streaming CSV download of a group's members or of a customer queryset.

    `columns` are built-in field names and `attributes.<key>` (a list or "a,b,c"); None gives the
    defaults. Raises ColumnsInvalid naming the unknown columns.
    """
    is_group = isinstance(queryset_or_group, CustomerGroup)
    names = parse_columns(columns, for_group=is_group)
    if filename is None:
        filename = f"{slugify(queryset_or_group.slug or queryset_or_group.name)}.csv" if is_group else "customers.csv"
    response = StreamingHttpResponse(
        stream_csv(queryset_or_group, names, bom=bom), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
