"""Staff try new rules and see who would enter and leave by name, then look back at every rule version."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from customers.models import Customer
from groups import services
from groups.models import CustomerGroup

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def regulars(db):
    for first, role in (("Ann", "customer"), ("Bob", "staff"), ("Cat", "customer"), ("Dan", "customer")):
        Customer.objects.create(email=f"{first.lower()}@example.com", first_name=first, role=role)
    group = CustomerGroup.objects.create(
        name="Regulars", slug="regulars", rules={"any": [{"field": "role", "op": "eq", "value": "customer"}]}
    )
    services.fill_new_group(group)
    return group


def test_the_preview_names_who_would_enter_and_leave(page, regulars):
    page.goto(f"{page.base}/admin/groups/customergroup/{regulars.pk}/change/?tab=settings")
    builder = page.locator(".rule-builder")
    expect(builder.locator(".rb-count")).to_have_text("3")

    # A new row is not a mistake before it is filled in.
    builder.locator(".rb-add-field").first.click()
    expect(builder.locator(".rb-preview")).to_have_text("Fill in the new rule to see who matches.")
    expect(builder.locator(".rb-has-error")).to_have_count(0)

    builder.locator("[data-path='/any/1'] input[aria-label=value]").fill("staff")
    expect(builder.locator(".rb-entering")).to_contain_text("Would enter: Bob")
    expect(builder.locator(".rb-leaving")).to_have_count(0)

    builder.locator("[data-path='/any/0'] input[aria-label=value]").fill("vip")
    expect(builder.locator(".rb-leaving")).to_contain_text("Would leave: Ann, Cat, Dan")
    with page.context.expect_page() as opened:
        builder.locator(".rb-all-leaving").click()
    full_list = opened.value
    expect(full_list.locator("h1")).to_have_text("Who would leave “Regulars”")
    expect(full_list.locator("#preview-changes tbody tr")).to_have_count(3)
    expect(full_list.locator("#preview-changes")).to_contain_text("dan@example.com")
    full_list.close()

    # A touched row that is emptied again is marked, in the words of the builder.
    builder.locator("[data-path='/any/1'] input[aria-label=value]").fill("")
    expect(builder.locator("[data-path='/any/1'] .rb-error")).to_contain_text("use “is empty”")


def test_rule_history_shows_each_version_what_changed_and_restores_one(page, regulars):
    change = f"{page.base}/admin/groups/customergroup/{regulars.pk}/change/"
    page.goto(change + "?tab=settings")
    builder = page.locator(".rule-builder")
    builder.locator("[data-path='/any/0'] input[aria-label=value]").fill("staff")
    expect(builder.locator(".rb-entering")).to_contain_text("Bob")
    page.click("input[name=_continue]")
    expect(page.locator("#member-count")).to_have_text("1")

    history = page.locator("#rule-history")
    expect(history.locator("#rule-version-2")).to_contain_text("boss")
    expect(history.locator("#rule-version-2")).to_contain_text("(current)")
    expect(history.locator("#difference-title")).to_have_text("What changed from v1 to v2")
    expect(history.locator(".diff-removed")).to_have_text("− whose role is 'customer'")
    expect(history.locator(".diff-added")).to_have_text("+ whose role is 'staff'")

    history.locator("#rule-version-1 .restore-version").click()
    expect(page.locator(".messagelist")).to_contain_text("Version 1 restored as version 3")
    expect(page.locator("#member-count")).to_have_text("3")
    expect(page.locator("#rule-version-3")).to_contain_text("restored from v1")
    expect(page.locator("#rule-version-3")).to_contain_text("(current)")
    # The builder shows the restored rules.
    expect(builder.locator("[data-path='/any/0'] input[aria-label=value]")).to_have_value("customer")


def test_a_text_value_is_offered_from_the_values_in_use(page, regulars):
    Customer.objects.create(email="eve@example.com", first_name="Eve", role="Staff")
    Customer.objects.create(email="fay@example.com", first_name="Fay", role="Staff")
    page.goto(f"{page.base}/admin/groups/customergroup/{regulars.pk}/change/?tab=settings")
    value = page.locator(".rule-builder [data-path='/any/0'] input[aria-label=value]")
    value.focus()
    offered = page.locator(f"datalist#{value.get_attribute('list')} option")
    expect(offered).to_have_count(2)
    assert [offered.nth(i).get_attribute("label") for i in range(2)] == [
        "customer (3 customers)",
        "Staff (2 customers)",
    ]
    # The time zone is picked from the list of names.
    assert page.locator("#id_time_zone").get_attribute("list") == "id_time_zone_names"
    expect(page.locator("#id_time_zone_names option[value='Europe/Paris']")).to_have_count(1)


def test_staff_choose_and_order_the_group_list_columns(page, regulars):
    page.goto(f"{page.base}/admin/groups/customergroup/")
    headers = page.locator("#result_list thead th")
    expect(headers.nth(2)).to_have_text("Kind")
    page.click("#choose-columns")
    page.uncheck("#show-trend")
    page.click("button[aria-label='Move Members up']")
    page.click("button[aria-label='Move Members up']")
    expect(page.locator("#column-chooser tbody tr").nth(1)).to_contain_text("Members")
    expect(page.locator("#show-trend")).not_to_be_checked()  # kept while moving, before saving
    page.click("#save-columns")
    expect(page.locator(".messagelist")).to_contain_text("in your order")
    expect(headers.nth(2)).to_have_text("Members")
    expect(page.locator("#result_list thead")).not_to_contain_text("Trend")
    page.reload()  # kept for this person
    expect(headers.nth(2)).to_have_text("Members")


def test_a_long_refresh_shows_progress_and_the_page_follows_it_to_the_end(page, regulars):
    from datetime import timedelta

    from django.utils import timezone

    from groups.models import RefreshRun

    RefreshRun.objects.filter(group=regulars).update(duration_ms=600_000)
    run = RefreshRun.objects.create(
        group=regulars, reason="manual_refresh", status="running", started_at=timezone.now() - timedelta(minutes=2)
    )
    page.goto(f"{page.base}/admin/groups/customergroup/{regulars.pk}/change/?tab=settings")
    progress = page.locator("#refresh-progress")
    expect(progress).to_contain_text("its last refreshes took about 10 min 0 s")
    expect(progress.locator("progress")).to_have_attribute("value", re.compile(r"^2\d$"))  # 2 of 10 minutes
    # The worker finishes: the page notices by itself and shows the run among the others.
    RefreshRun.objects.filter(pk=run.pk).update(status="succeeded", finished_at=timezone.now(), duration_ms=130_000)
    expect(progress).to_have_count(0)
    expect(page.locator("#runs-panel")).to_contain_text("130000 ms")
