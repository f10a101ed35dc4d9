"""A member of staff builds a group in the browser and takes it through its whole life."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from customers.models import Customer, Event
from groups.models import CustomerGroup, RefreshRun

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shop(db):
    ann = Customer.objects.create(email="ann@example.com", first_name="Ann", role="customer", external_id="C-1")
    Customer.objects.create(email="bob@example.com", first_name="Bob", role="staff", external_id="C-2")
    Customer.objects.create(email="cat@example.com", first_name="Cat", role="customer", external_id="C-3")
    Customer.objects.create(email="dan@example.com", first_name="Dan", role="customer", external_id="C-4")
    Event.objects.create(customer=ann, name="purchase", occurred_at="2026-01-05T10:00:00Z", amount=30)


def test_build_preview_save_refresh_export_schedule_deactivate_delete(page, shop, celery_worker_thread):
    base = page.base
    page.goto(f"{base}/admin/groups/customergroup/add/")
    page.fill("#id_name", "Regular customers")
    builder = page.locator(".rule-builder")

    # Customers whose role is customer, and (who purchased, or whose email contains "cat").
    builder.locator(".rb-add-field").first.click()
    builder.locator("[data-path='/all/0'] input[aria-label=value]").fill("customer")
    builder.locator(".rb-add-group").first.click()
    nested = builder.locator(".rb-group[data-path='/all/1']")
    nested.locator(".rb-add-event").click()
    nested.locator(".rb-add-field").click()
    row = builder.locator("[data-path='/all/1/any/1']")
    row.locator("select.rb-field").select_option("email")
    row.locator("select.rb-op").select_option("contains")
    row.locator("input[aria-label=value]").fill("cat")

    # The live preview counts Ann (purchased) and Cat (email), before anything is saved.
    expect(builder.locator(".rb-count")).to_have_text("2")
    assert '"any"' in page.locator("#id_rules").input_value()  # the JSON follows the builder

    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    group = CustomerGroup.objects.get(name="Regular customers")
    assert group.rules["all"][1]["any"][0]["event"] == "purchase"

    page.click("#tab-members")
    expect(page.locator("#member-list")).to_contain_text("ann@example.com")
    expect(page.locator("#member-list")).to_contain_text("cat@example.com")
    expect(page.locator("#member-list")).not_to_contain_text("dan@example.com")
    page.click("#tab-history")
    expect(page.locator("#history-list tbody tr")).to_have_count(2)
    expect(page.locator("#history-list")).to_contain_text("Added")

    # Refresh now goes through Celery: the worker runs the queued run.
    page.click("#tab-settings")
    page.click("#refresh-now")
    expect(page.locator(".messagelist")).to_contain_text("queued")
    for _ in range(50):
        run = RefreshRun.objects.filter(group=group, reason="manual_refresh").first()
        if run and run.status == RefreshRun.Status.SUCCEEDED:
            break
        page.wait_for_timeout(200)
    assert run is not None and run.status == RefreshRun.Status.SUCCEEDED
    page.reload()
    expect(page.locator("#runs-panel")).to_contain_text("Refresh by hand")

    # Export the members as CSV.
    with page.expect_download() as download:
        page.click("text=Export CSV")
    content = open(download.value.path(), encoding="utf-8").read()
    assert "ann@example.com" in content and "cat@example.com" in content and "dan@" not in content

    # Change the schedule: every day at 07:30 in Paris.
    page.select_option("#id_refresh_mode", "events_and_schedule")
    page.select_option("#id_schedule_frequency", "daily")
    page.fill("#id_schedule_time", "07:30")
    page.fill("#id_time_zone", "Europe/Paris")
    page.click("input[name=_continue]")
    expect(page.locator("#refresh-panel")).to_contain_text("Every day at 07:30, Europe/Paris")
    expect(page.locator("#refresh-panel")).to_contain_text("Next runs")

    # Deactivate: the group lets go of every member.
    page.click("#deactivate")
    expect(page.locator(".group-status")).to_contain_text("Inactive")
    expect(page.locator("#member-count")).to_have_text("0")

    # Delete, after a confirmation that says what goes.
    page.click("#delete-group")
    expect(page.locator("#deletion-summary")).to_contain_text("no synced lists or tags")
    page.click("#confirm-delete")
    expect(page.locator(".messagelist")).to_contain_text(re.compile("Deleted 1 group"))
    assert not CustomerGroup.objects.filter(pk=group.pk).exists()


def test_validation_errors_appear_next_to_the_offending_row(page, shop):
    page.goto(f"{page.base}/admin/groups/customergroup/add/")
    builder = page.locator(".rule-builder")
    builder.locator(".rb-add-field").first.click()
    row = builder.locator("[data-path='/all/0']")
    row.locator("select.rb-field").select_option("birthdate")
    row.locator("select.rb-op").select_option("before")
    row.locator("input[aria-label=day]").fill("")
    expect(row.locator(".rb-error")).to_be_visible()
    expect(builder.locator(".rb-preview")).to_contain_text("problem")


def test_experts_edit_the_json_and_the_builder_follows(page, shop):
    page.goto(f"{page.base}/admin/groups/customergroup/add/")
    page.click("text=Rules as JSON")
    page.fill("#id_rules", '{"any": [{"field": "role", "op": "eq", "value": "staff"}, {"in_group": 999}]}')
    builder = page.locator(".rule-builder")
    expect(builder.locator("select.rb-bool").first).to_have_value("any")
    expect(builder.locator("[data-path='/any/0'] input[aria-label=value]")).to_have_value("staff")
    # Group 999 does not exist: the problem shows on its row.
    expect(builder.locator("[data-path='/any/1'] .rb-error")).to_contain_text("does not exist")


def test_a_refused_save_marks_each_problem_on_its_row(page, shop):
    page.goto(f"{page.base}/admin/groups/customergroup/add/")
    page.fill("#id_name", "Broken")
    page.click("text=Rules as JSON")
    page.fill(
        "#id_rules",
        '{"all": [{"field": "emial", "op": "eq", "value": "x"}, {"field": "email", "op": "gt", "value": 1}]}',
    )
    page.click("input[name=_save]")
    expect(page.locator(".errornote")).to_be_visible()
    builder = page.locator(".rule-builder")
    expect(builder.locator("[data-path='/all/0'] .rb-error")).to_contain_text("did you mean 'email'")
    expect(builder.locator("[data-path='/all/1'] .rb-error")).to_contain_text("does not apply")
    assert not CustomerGroup.objects.filter(name="Broken").exists()
