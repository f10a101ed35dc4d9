"""Marsello: a group as a "tag CSV" for Marsello's customer import.

Marsello publishes no public API, so nothing can sync to it directly. Two routes remain: sync the
group to Lightspeed Retail as a customer tag (Marsello reads its customers and their tags from the
connected POS), or download this file and import it in Marsello (Customers → Import customers).
The columns are those of Marsello's customer import (help.marsello.com: First Name and Email
Address required, Last Name and Mobile optional) plus Tags, holding the group's name. Marsello
keys customers by email, so members without an email, or without the first name the import
requires, are left out.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.http import StreamingHttpResponse
from django.utils.text import slugify

from groups.exports import copy_csv, export_sql, header_line
from groups.models import CustomerGroup

COLUMNS = ("First Name", "Last Name", "Email Address", "Mobile", "Tags")


def tag_csv(group: CustomerGroup) -> Iterator[bytes]:
    """The group's members in Marsello's customer import format, each tagged with the group's name."""
    # Names and emails come from the group export's own SELECT, with its quoting of cells that a
    # spreadsheet would run as formulas. A mobile number is kept as it is (it starts with +, which
    # that quoting would spoil for the import) unless it holds anything but a phone number's signs.
    members, params = export_sql(group, ["first_name", "last_name", "email", "id"])
    sql = (
        "SELECT m.first_name, m.last_name, m.email, "
        "CASE WHEN c.phone ~ '^[+]?[0-9 ().-]*$' THEN c.phone ELSE '''' || c.phone END, %s "
        f"FROM ({members}) AS m(first_name, last_name, email, id) JOIN customers_customer c ON c.id = m.id "
        "WHERE m.email <> '' AND m.first_name <> '' ORDER BY m.id"
    )
    yield header_line(COLUMNS)
    yield from copy_csv(sql, [group.name, *params])


def tag_csv_response(group: CustomerGroup) -> StreamingHttpResponse:
    response = StreamingHttpResponse(tag_csv(group), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{slugify(group.slug or group.name)}-marsello.csv"'
    return response
