"""Staff set up an email for customers who enter a group, in the browser; a purchase arrives through the
API, the customer enters the group, a real Celery worker sends the email to a real SMTP server, and the
firing shows as sent on the group's Automations tab and on the customer's page."""

from __future__ import annotations

import time

import httpx
import pytest
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

from customers.models import Customer
from groups.models import CustomerGroup

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BOUGHT_TEA = {"event": "purchase", "where": [{"property": "category", "op": "eq", "value": "Chinese tea"}]}


def wait_for(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen"
        time.sleep(0.2)


def test_staff_add_an_on_enter_email_and_the_customer_who_enters_receives_it(page, smtp, superuser,
                                                                              celery_worker_thread):  # fmt: skip
    group = CustomerGroup.objects.create(name="Bought Chinese tea", slug="bought-chinese-tea", rules=BOUGHT_TEA)
    ann = Customer.objects.create(external_id="C-41", first_name="Ann", last_name="Lee", email="ann@example.com",
                                  email_consent=True)  # fmt: skip

    page.goto(f"{page.base}/admin/groups/customergroup/{group.pk}/change/?tab=automations")
    expect(page.locator("#tab-automations")).to_be_visible()
    page.click("text=Add a trigger")
    page.fill("#id_name", "Thank tea buyers")
    page.select_option("#id_action", "email")
    # Only the email's settings are on show; the other actions' stay out of the way.
    expect(page.locator("#id_email_subject")).to_be_visible()
    expect(page.locator("#id_sms_body")).to_be_hidden()
    expect(page.locator("#id_task_title")).to_be_hidden()
    page.fill("#id_email_subject", "A gift for you, {{ customer.first_name }}")
    page.fill("#id_email_body", "Thank you for buying tea. Members of {{ group.name }} get 5% off with TEA5.")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    expect(page.locator("#message-preview")).to_contain_text("has no members yet")

    # Data arrives through the API: Ann buys Chinese tea, and enters the group.
    token = Token.objects.create(user=superuser).key
    response = httpx.post(f"{page.base}/api/events/", headers={"Authorization": f"Token {token}"}, json={
        "customer": "C-41", "name": "purchase", "occurred_at": "2026-05-01T09:30:00Z",
        "properties": {"category": "Chinese tea"}})  # fmt: skip
    assert response.status_code == 201, response.text
    wait_for(lambda: smtp.to("ann@example.com"), "the email reaching the SMTP server")
    [message] = smtp.to("ann@example.com")
    assert message["Subject"] == "A gift for you, Ann"
    assert "Members of Bought Chinese tea get 5% off with TEA5." in message.get_content()

    page.goto(f"{page.base}/admin/groups/customergroup/{group.pk}/change/?tab=automations")
    firings = page.locator("#group-firings tbody tr")
    expect(firings).to_have_count(1)
    expect(firings).to_contain_text("Thank tea buyers")
    expect(firings).to_contain_text("Sent")
    expect(firings).to_contain_text("Email “A gift for you, Ann” to ann@example.com")
    expect(page.locator("#firing-counts")).to_contain_text("Sent: 1")

    page.goto(f"{page.base}/admin/customers/customer/{ann.pk}/change/")
    expect(page.locator("body")).to_contain_text("Email “A gift for you, Ann” to ann@example.com")

    # Now that the group has a member, the trigger previews its email with her.
    page.goto(f"{page.base}/admin/groups/customergroup/{group.pk}/change/?tab=automations")
    page.click("#group-triggers >> text=Thank tea buyers")
    expect(page.locator("#message-preview .preview-subject")).to_have_text("A gift for you, Ann")
    # A change to the subject is previewed before it is saved.
    page.fill("#id_email_subject", "Still thinking of you, {{ customer.first_name }}")
    page.fill("#id_preview_query", "ann@example.com")
    page.click("#preview-button")
    expect(page.locator("#message-preview .preview-subject")).to_have_text("Still thinking of you, Ann")
