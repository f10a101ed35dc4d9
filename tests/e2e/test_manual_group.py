"""Staff fill a manual group from the customer list and from a pasted list, in the browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from customers.models import Customer
from groups.models import CustomerGroup

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_add_from_the_customer_list_and_from_a_pasted_list(page):
    ann = Customer.objects.create(email="ann@example.com", first_name="Ann", external_id="C-1")
    Customer.objects.create(email="bob@example.com", first_name="Bob", external_id="C-2")
    group = CustomerGroup.objects.create(name="Tasting panel", slug="tasting-panel", kind=CustomerGroup.Kind.MANUAL)

    page.goto(f"{page.base}/admin/customers/customer/")
    page.check(f"input[name=_selected_action][value='{ann.pk}']")
    page.select_option("select[name=action]", "add_to_group")
    page.click("button[name=index]")
    page.select_option("#id_group", str(group.pk))
    page.click("input[type=submit].default")
    expect(page.locator(".messagelist")).to_contain_text("1 customers added to “Tasting panel”")

    page.goto(f"{page.base}/admin/groups/customergroup/{group.pk}/change/?tab=members")
    expect(page.locator("#member-list")).to_contain_text("ann@example.com")
    page.click("text=Add or remove members from a list")
    page.fill("#id_identifiers", "C-2\nnobody@example.com")
    page.click("input[type=submit].default")
    expect(page.locator("#unmatched")).to_contain_text("nobody@example.com")
    assert group.memberships.count() == 2
