"""Staff export the customer list as they filtered it, then import the same file back, in the browser."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import expect

from customers.models import Customer
from groups import services
from groups.models import CustomerGroup

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_filter_export_and_import_the_file_back(page, tmp_path):
    Customer.objects.create(email="ann@example.com", first_name="Ann", role="customer", external_id="C-1",
                            phone="+44 20 7946 0000", sms_consent=True)  # fmt: skip
    Customer.objects.create(email="bob@example.com", first_name="Bob", role="staff", external_id="C-2")
    Customer.objects.create(email="cat@example.com", first_name="=Cat", role="customer", external_id="C-3")
    panel = CustomerGroup.objects.create(name="Tasting panel", slug="tasting-panel", kind=CustomerGroup.Kind.MANUAL)
    services.add_members(panel, [Customer.objects.get(external_id="C-2").pk])

    page.goto(f"{page.base}/admin/customers/customer/")
    # Not in the tasting panel, and whose role is customer: Ann and Cat.
    page.locator("#changelist-filter details[data-filter-title='not in group']").get_by_role(
        "link", name="Tasting panel"
    ).click()
    page.locator("#changelist-filter details[data-filter-title='role']").get_by_role("link", name="customer").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    with page.expect_download() as download:
        page.click("#export-customers")
    path = tmp_path / "customers.csv"
    download.value.save_as(path)
    assert download.value.suggested_filename == "customers.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert [row["email"] for row in rows] == ["ann@example.com", "cat@example.com"]
    assert rows[0]["phone"] == "'+44 20 7946 0000" and rows[0]["sms_consent"] == "true"  # formula-safe
    assert rows[1]["first_name"] == "'=Cat"

    # The same file, edited in a spreadsheet and imported again: the quotes come off.
    Customer.objects.filter(external_id="C-1").update(phone="", first_name="Changed")
    page.click("#import-customers")  # beside Export CSV on the same list
    page.set_input_files("#id_file", str(path))
    page.click("input[type=submit].default")
    page.click("input[type=submit].default")  # the columns are named like the fields: mapped already
    expect(page.locator("#import-summary")).to_have_text("Imported 2 rows: 0 created, 2 updated.")
    ann = Customer.objects.get(external_id="C-1")
    assert (ann.phone, ann.first_name) == ("+44 20 7946 0000", "Ann")
    assert Customer.objects.get(external_id="C-3").first_name == "=Cat"
