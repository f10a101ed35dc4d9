"""CSV import: mapping, validation report, all-or-nothing or skip, upsert, and groups current after it."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from customers import import_jobs
from customers.imports import ColumnMap, ImportInvalid, import_customers, parse_mapping
from customers.models import AttributeDefinition, Customer, CustomerImport
from customers.signals import customers_touched
from groups.models import CustomerGroup, Membership, MembershipChange

pytestmark = pytest.mark.django_db(transaction=True)


def csv_bytes(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode("utf-8"))


def test_columns_named_like_fields_import_without_a_mapping_and_a_bom_is_fine():
    report = import_customers(io.BytesIO(b"\xef\xbb\xbfEmail,First name,role\nann@example.com,Ann,customer\n"))
    assert report.imported and (report.created, report.updated) == (1, 0)
    ann = Customer.objects.get()
    assert (ann.email, ann.first_name, ann.role) == ("ann@example.com", "Ann", "customer")


def test_mapping_to_fields_and_attributes_declares_new_attributes_with_their_type():
    AttributeDefinition.objects.create(key="tier", type="text")
    mapping = parse_mapping(
        [
            "Mail=email",
            "Id=external_id",
            "Tier=attributes.tier",
            "Pts=attributes.points:number",
            "Joined=attributes.joined:date",
            "Note=attributes.note",
            "Opt-in=email_consent",
        ]
    )
    report = import_customers(
        csv_bytes("Id,Mail,Tier,Pts,Joined,Note,Opt-in,Ignored\nx1,a@example.com,gold,12,2024-01-31,hi,yes,zzz\n"),
        mapping,
    )
    assert report.imported and report.declared_attributes == ["joined", "points"]
    customer = Customer.objects.get(external_id="x1")
    assert customer.attributes == {"tier": "gold", "points": 12, "joined": "2024-01-31", "note": "hi"}
    assert customer.email_consent is True
    assert dict(AttributeDefinition.objects.values_list("key", "type")) == {
        "tier": "text",
        "points": "number",
        "joined": "date",
    }


def test_bad_rows_are_reported_by_line_and_column_and_nothing_is_imported():
    AttributeDefinition.objects.create(key="points", type="number")
    Customer.objects.create(external_id="x0", first_name="Kept")
    report = import_customers(
        csv_bytes(
            "external_id,email,birthdate,attributes.points,first_name\n"
            "x0,,,,Changed\n"
            "x1,not-an-email,1990-13-01,,\n"
            ",,,5,Nobody\n"
            "x3,c@example.com,,lots,\n"
        )
    )
    assert not report.imported and report.rows == 4 and report.bad_rows == 3
    assert {(e.line, e.column) for e in report.errors} == {
        (3, "email"),
        (3, "birthdate"),
        (4, "external_id"),
        (5, "attributes.points"),
    }
    points = next(e for e in report.errors if e.column == "attributes.points")
    assert "number" in points.reason
    assert list(Customer.objects.values_list("external_id", "first_name")) == [("x0", "Kept")]
    assert "Nothing imported" in report.summary()


def test_skipping_bad_rows_imports_the_good_ones():
    report = import_customers(csv_bytes("external_id,email\nx1,a@example.com\nx2,broken\nx3,\n"), skip_bad_rows=True)
    assert report.imported and report.bad_rows == 1 and report.created == 2
    assert set(Customer.objects.values_list("external_id", flat=True)) == {"x1", "x3"}


def test_upsert_by_external_id_else_email_ignoring_case_and_empty_cells_keep_values():
    by_id = Customer.objects.create(external_id="x1", email="old@example.com", role="staff", attributes={"a": 1})
    by_email = Customer.objects.create(email="Bob@Example.com", first_name="Bob")
    report = import_customers(
        csv_bytes(
            "external_id,email,first_name,role,attributes.b\n"
            "x1,,Ann,customer,2\n"
            "x2,bob@example.COM,,customer,\n"
            ",new@example.com,Cy,,\n"
            ",NEW@example.com,Cyril,,\n"
        )
    )
    assert report.imported and (report.created, report.updated) == (1, 2)
    by_id.refresh_from_db()
    assert (by_id.email, by_id.first_name, by_id.role, by_id.attributes) == (
        "old@example.com",
        "Ann",
        "customer",
        {"a": 1, "b": "2"},
    )
    by_email.refresh_from_db()
    assert (by_email.external_id, by_email.first_name, by_email.role) == ("x2", "Bob", "customer")
    assert Customer.objects.get(email__iexact="new@example.com").first_name == "Cyril"  # the last row wins
    assert Customer.objects.count() == 3


def test_groups_are_current_after_an_import_evaluated_once_with_reason_import():
    customers = CustomerGroup.objects.create(
        name="Customers", slug="customers", rules={"field": "role", "op": "eq", "value": "customer"}
    )
    staff = CustomerGroup.objects.create(
        name="Staff", slug="staff", rules={"field": "role", "op": "eq", "value": "staff"}
    )
    sent = []

    def listen(sender, customer_ids, reason, **kwargs):
        sent.append((len(customer_ids), reason))

    customers_touched.connect(listen)
    try:
        rows = "".join(f"c{i},{'Staff' if i % 3 == 0 else 'customer'}\n" for i in range(300))
        import_customers(csv_bytes("external_id,role\n" + rows))
    finally:
        customers_touched.disconnect(listen)
    assert sent == [(300, "import")]
    assert Membership.objects.filter(group=staff).count() == 100
    assert Membership.objects.filter(group=customers).count() == 200
    assert set(MembershipChange.objects.values_list("reason", flat=True)) == {"import"}


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ([ColumnMap("Nope", "email")], "not in the file"),
        ([ColumnMap("Mail", "emial")], "unknown field"),
        ([ColumnMap("Mail", "email"), ColumnMap("Tier", "attributes.tier", "colour")], "unknown attribute type"),
        ([ColumnMap("Tier", "attributes.tier")], "external_id or to email"),
        ([ColumnMap("Mail", "email"), ColumnMap("Tier", "email")], "more than one column"),
    ],
)
def test_a_mapping_that_cannot_work_is_refused_before_any_row(mapping, message):
    with pytest.raises(ImportInvalid, match=message):
        import_customers(csv_bytes("Mail,Tier\na@example.com,gold\n"), mapping)
    assert not Customer.objects.exists()


def test_a_declared_attribute_cannot_be_redeclared_with_another_type():
    AttributeDefinition.objects.create(key="tier", type="text")
    with pytest.raises(ImportInvalid, match="already declared as text"):
        import_customers(
            csv_bytes("email,Tier\na@example.com,1\n"), parse_mapping(["email=email", "Tier=attributes.tier:number"])
        )


def test_a_file_that_is_not_utf8_is_refused_clearly():
    with pytest.raises(ImportInvalid, match="UTF-8"):
        import_customers(io.BytesIO("email\nzoë@example.com\n".encode("latin-1")))
    assert not Customer.objects.exists()


def test_the_command_imports_and_reports(tmp_path, capsys):
    path = tmp_path / "people.csv"
    path.write_text("Mail,Role\na@example.com,customer\nbad,customer\n", encoding="utf-8")
    with pytest.raises(CommandError, match="Nothing imported"):
        call_command("import_customers", str(path), "--map", "Mail=email", "--map", "Role=role", verbosity=0)
    assert "line 3, column Mail" in capsys.readouterr().err
    call_command(
        "import_customers", str(path), "--map", "Mail=email", "--map", "Role=role", "--skip-bad-rows", verbosity=0
    )
    assert "Imported 1 row: 1 created" in capsys.readouterr().out
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_customers", str(tmp_path / "missing.csv"), verbosity=0)


def test_a_background_job_records_progress_and_the_report_and_drops_the_file():
    data = "external_id,email\n" + "".join(f"x{i},c{i}@example.com\n" for i in range(12_000))
    job = CustomerImport.objects.create(
        data=data.encode(),
        status="queued",
        rows_total=12_000,
        mapping=[{"column": "external_id", "target": "external_id"}, {"column": "email", "target": "email"}],
    )
    import_jobs.run(job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.rows_read == 12_000 and bytes(job.data) == b""
    assert job.report["created"] == 12_000 and "Imported 12000 rows" in job.report["summary"]
    assert import_jobs.run(job.pk) is None  # a task delivered twice runs once


@pytest.mark.parametrize("separator", [",", ";", "\t"])
def test_the_separator_is_found_from_the_header_line(separator):
    lines = ["email", "first_name", "attributes.note"], ["ann@example.com", "Ann", "one, two; three"]
    text = "\n".join(separator.join(f'"{cell}"' if "," in cell else cell for cell in line) for line in lines)
    report = import_customers(csv_bytes(text + "\n"))
    assert report.imported and report.created == 1
    ann = Customer.objects.get()
    assert (ann.first_name, ann.attributes) == ("Ann", {"note": "one, two; three"})


def test_a_shopify_export_imports_its_ids_without_their_quote():
    shopify = "Customer ID,First Name,Email,Phone\n'7210448301122,Ann,ann@example.com,'+14155550100\n"
    report = import_customers(csv_bytes(shopify), parse_mapping(["Customer ID=external_id", "First Name=first_name",
                                                                  "Email=email", "Phone=phone"]))  # fmt: skip
    assert report.imported
    ann = Customer.objects.get()
    assert (ann.external_id, ann.phone) == ("7210448301122", "+14155550100")


def test_an_apostrophe_that_is_part_of_the_text_stays():
    import_customers(csv_bytes("email,first_name,last_name\nann@example.com,'Tis,O'Brien\n"))
    assert Customer.objects.values_list("first_name", "last_name").get() == ("'Tis", "O'Brien")


def test_export_then_import_gives_back_the_same_customers(staff_user):
    from rest_framework.test import APIClient

    AttributeDefinition.objects.create(key="balance", type="number")
    written = [
        dict(external_id="C-1", email="ann@example.com", phone="+44 20 7946 0000", first_name="=HYPERLINK(1)",
             last_name="-dash", email_consent=True, attributes={"note": "@home", "balance": -5}),
        dict(external_id="C-2", email="bob@example.com", phone="0044 20", first_name="Bob", last_name="'Tis",
             sms_consent=True, attributes={"note": "\tindented", "balance": 12}),
    ]  # fmt: skip
    for values in written:
        Customer.objects.create(**values)
    api = APIClient()
    api.force_authenticate(staff_user)
    columns = (
        "external_id,email,phone,first_name,last_name,email_consent,sms_consent,attributes.note,attributes.balance"
    )
    exported = b"".join(api.get("/api/customers/export.csv", {"columns": columns}).streaming_content)
    assert b"'+44 20" in exported and b"'=HYPERLINK(1)" in exported and b"'@home" in exported
    Customer.objects.all().delete()

    report = import_customers(io.BytesIO(exported))
    assert report.imported and report.created == 2
    fields = ["external_id", "email", "phone", "first_name", "last_name", "email_consent", "sms_consent"]
    for values in written:
        customer = Customer.objects.get(external_id=values["external_id"])
        assert {name: getattr(customer, name) for name in fields} == {
            name: values.get(name, False if name.endswith("consent") else "") for name in fields
        }
        assert customer.attributes == values["attributes"]


def test_the_command_shows_each_bad_value(tmp_path, capsys):
    path = tmp_path / "people.csv"
    path.write_text("email\nnot-an-email\n", encoding="utf-8")
    with pytest.raises(CommandError, match="Nothing imported: 1 of 1 row has problems"):
        call_command("import_customers", str(path), verbosity=0)
    assert (
        "line 2, column email: Enter a valid email address. (the cell holds 'not-an-email')" in capsys.readouterr().err
    )
