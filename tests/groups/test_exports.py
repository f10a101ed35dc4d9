"""CSV export: chosen columns, formula escaping, BOM, and streaming in bounded memory on a large group."""

from __future__ import annotations

import csv
import io
import tracemalloc

import pytest
from django.utils import timezone

from bench import data
from customers.models import Customer
from groups import services
from groups.exports import ColumnsInvalid, export_response, parse_columns
from groups.models import CustomerGroup

pytestmark = pytest.mark.django_db(transaction=True)


def manual_group(*customers) -> CustomerGroup:
    group = CustomerGroup.objects.create(name="Mailing list", slug="mailing-list", kind="manual")
    services.add_members(group, [c.pk for c in customers])
    return group


def rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize(
    ("stored", "exported"),
    [
        ("=1+2", "'=1+2"),
        ("+33 6 12", "'+33 6 12"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tindent", "'\tindent"),
        ("\rreturn", "'\rreturn"),
        ("  =1+2", "'  =1+2"),
        ("\n=HYPERLINK(1)", "'\n=HYPERLINK(1)"),
        (" \r\n @cmd", "' \r\n @cmd"),
        (" plain", " plain"),
        ("plain = text", "plain = text"),
        ("", ""),
    ],
)
def test_cells_that_spreadsheets_would_run_as_formulas_are_prefixed_with_a_quote(stored, exported):
    customer = Customer.objects.create(first_name=stored, attributes={"note": stored, "score": -5})
    response = export_response(manual_group(customer), ["first_name", "attributes.note", "attributes.score"])
    assert rows(response)[1] == [exported, exported, "-5"]


def test_chosen_columns_in_their_order_with_builtins_attributes_and_added_at():
    customer = Customer.objects.create(
        external_id="x1",
        email="ann@example.com",
        email_consent=True,
        birthdate="1990-02-01",
        attributes={"tier": "gold", "vip": True},
    )
    columns = [
        "email",
        "external_id",
        "attributes.tier",
        "attributes.vip",
        "attributes.missing",
        "email_consent",
        "birthdate",
        "added_at",
        "id",
    ]
    header, row = rows(export_response(manual_group(customer), columns))
    assert header == columns
    assert row[:7] == ["ann@example.com", "x1", "gold", "true", "", "true", "1990-02-01"]
    assert row[7].endswith("Z") and row[8] == str(customer.pk)


def test_default_columns_and_a_customer_queryset():
    Customer.objects.create(email="b@example.com", role="staff")
    ann = Customer.objects.create(
        email="a@example.com", first_name="Ann", role="customer", phone="+44 20", sms_consent=True
    )
    response = export_response(Customer.objects.filter(role="customer"))
    assert rows(response) == [
        ["id", "external_id", "email", "phone", "first_name", "last_name", "email_consent", "sms_consent"],
        # A phone number starting with + is a formula to a spreadsheet: it is quoted like any other.
        [str(ann.pk), "", "a@example.com", "'+44 20", "Ann", "", "false", "true"],
    ]
    assert response["Content-Disposition"] == 'attachment; filename="customers.csv"'


def test_bom_is_optional_and_text_is_utf8():
    customer = Customer.objects.create(first_name="Zoë", last_name='Łukasz, "Jr"')
    group = manual_group(customer)
    with_bom = b"".join(export_response(group, ["first_name", "last_name"], bom=True).streaming_content)
    without = b"".join(export_response(group, ["first_name", "last_name"]).streaming_content)
    assert with_bom == b"\xef\xbb\xbf" + without
    assert without.decode("utf-8") == 'first_name,last_name\nZoë,"Łukasz, ""Jr"""\n'


def test_unknown_columns_are_refused_by_name():
    with pytest.raises(ColumnsInvalid, match="'password'"):
        parse_columns("email,password", for_group=True)
    with pytest.raises(ColumnsInvalid, match="added_at"):
        parse_columns(["added_at"], for_group=False)
    with pytest.raises(ColumnsInvalid):
        parse_columns("attributes.bad key", for_group=True)
    assert parse_columns(None, for_group=True) == [
        "id", "external_id", "email", "phone", "first_name", "last_name", "email_consent", "sms_consent"
    ]  # fmt: skip


@pytest.mark.slow
def test_a_large_group_streams_in_chunks_with_bounded_memory():
    data.generate(50_000, events_per_customer=0, now=timezone.now())
    group = CustomerGroup.objects.create(name="Everyone", slug="everyone", rules={"all": []})
    services.refresh(group)
    response = export_response(group, ["id", "external_id", "email", "first_name", "attributes.tier", "added_at"])
    tracemalloc.start()
    try:
        chunks = 0
        lines = 0
        size = 0
        for chunk in response.streaming_content:
            chunks += 1
            lines += chunk.count(b"\n")
            size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == 50_001
    assert chunks > 5
    # The whole file is several MB; what the export holds at once is a chunk or two.
    assert size > 3_000_000
    assert peak < 2_000_000, f"peak {peak:,} bytes while streaming {size:,} bytes"
