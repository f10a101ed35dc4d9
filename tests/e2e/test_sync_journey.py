"""Staff connect a webhook endpoint, send a group to it and watch each change reach it, in the browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from customers.models import Customer
from groups import services as groups
from groups.models import CustomerGroup
from integrations.providers.webhook import new_secret
from tests.fakes.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def reload_until(page, condition, attempts: int = 100) -> None:
    """The pages do not refresh themselves: reload until the worker's progress shows."""
    for _ in range(attempts):
        if condition():
            return
        page.wait_for_timeout(100)
        page.reload()


def test_connect_an_endpoint_sync_a_group_and_see_each_change_arrive(page, celery_worker_thread):
    secret = new_secret()
    ann = Customer.objects.create(email="ann@example.com", first_name="Ann")
    bob = Customer.objects.create(email="bob@example.com", first_name="Bob")
    group = CustomerGroup.objects.create(name="Tasting panel", slug="tasting-panel", kind=CustomerGroup.Kind.MANUAL)
    groups.add_members(group, [ann.pk])

    with WebhookReceiver(secret) as receiver:
        page.goto(f"{page.base}/admin/integrations/connection/add/")
        page.click("text=Webhook (Standard Webhooks)")
        page.fill("#id_name", "Our endpoint")
        page.fill("#id_setting_url", receiver.url)
        page.fill("#id_secret_secret", secret)
        page.click("input[name=_continue]")
        expect(page.locator("#id_secret_secret")).to_have_value("")  # never rendered back
        page.click("#test-connection input[type=submit]")
        expect(page.locator(".messagelist")).to_contain_text("works")

        page.goto(f"{page.base}/admin/groups/customergroup/{group.pk}/change/?tab=settings")
        page.click("#sync-on input[type=submit]")
        expect(page.locator(".messagelist")).to_contain_text("is being sent to Our endpoint")
        reload_until(page, lambda: "In sync" in page.locator("#sync-panel").inner_text())
        expect(page.locator("#sync-panel")).to_contain_text("In sync")

        groups.add_members(group, [bob.pk])
        page.goto(f"{page.base}/admin/groups/customergroup/{group.pk}/change/?tab=history")
        expect(page.locator("#history-list thead")).to_contain_text("Our endpoint")
        reload_until(page, lambda: page.locator("#history-list .delivery-synced").count() == 2)
        expect(page.locator("#history-list .delivery-synced")).to_have_count(2)
        list_id = next(iter(receiver.lists))
        assert receiver.members(list_id) == {ann.pk, bob.pk}
