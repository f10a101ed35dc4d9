"""The email story: data arrives, the customer enters the group, the email reaches a real SMTP server,
and its unsubscribe link clears the consent."""

from __future__ import annotations

import re

import pytest

from automations.models import Firing, Trigger
from customers.models import Customer

from .conftest import buy_tea, run_automations

pytestmark = pytest.mark.django_db(transaction=True)

WELCOME = {"subject": "A gift for you, {{ customer.first_name }}",
           "body": "Thanks for buying tea. Members of {{ group.name }} get 5% off with TEA5."}  # fmt: skip


def make_trigger(api, group, **fields) -> dict:
    response = api.post("/api/triggers/", {"name": "Tea thank-you", "group": group.pk, "on": "enter", "action": "email",
                                           "settings": WELCOME, **fields}, format="json")  # fmt: skip
    assert response.status_code == 201, response.content
    return response.json()


def test_a_customer_who_enters_the_group_gets_the_email(api, smtp, tea_group, ann):
    trigger = make_trigger(api, tea_group)
    buy_tea(api, "ann")
    run_automations()

    [message] = smtp.to("ann@example.com")
    assert message["Subject"] == "A gift for you, Ann"
    assert "Members of Bought tea get 5% off with TEA5." in message.get_content()
    firing = Firing.objects.get(trigger_id=trigger["id"], customer=ann)
    assert message["Message-ID"] == f"<{firing.idempotency_key}@customer-groups.local>"
    listed = api.get(f"/api/firings/?group={tea_group.pk}").json()["results"]
    assert [(f["customer"], f["status"], f["trigger_name"]) for f in listed] == [(ann.pk, "sent", "Tea thank-you")]
    assert api.get(f"/api/firings/?customer={ann.pk}").json()["count"] == 1


def test_the_unsubscribe_link_clears_the_email_consent(api, client, smtp, tea_group, ann):
    make_trigger(api, tea_group)
    buy_tea(api, "ann")
    run_automations()
    [message] = smtp.to("ann@example.com")
    link = re.search(r"Unsubscribe: (\S+)", message.get_content()).group(1)
    assert message["List-Unsubscribe"].strip() == f"<{link}>"
    path = link.removeprefix("http://127.0.0.1:8000")

    asked = client.get(path)  # opening the link only asks (mail scanners open links)
    assert asked.status_code == 200 and b"Stop getting emails" in asked.content
    assert Customer.objects.get(pk=ann.pk).email_consent

    done = client.post(path)
    assert done.status_code == 200 and b"You are unsubscribed" in done.content
    assert not Customer.objects.get(pk=ann.pk).email_consent
    assert client.post(path[:-3] + "abc").status_code == 404  # a damaged link changes nothing


def test_a_customer_without_email_consent_is_skipped(api, smtp, tea_group):
    Customer.objects.create(external_id="bo", email="bo@example.com", email_consent=False)
    make_trigger(api, tea_group)
    buy_tea(api, "bo")
    run_automations()
    assert smtp.messages == []
    assert Firing.objects.get().detail == "No email consent"
    assert Firing.objects.get().status == Firing.Status.SKIPPED


def test_a_change_fires_a_trigger_once_however_often_it_is_read(api, smtp, tea_group, ann):
    from automations import firings

    trigger = Trigger.objects.get(pk=make_trigger(api, tea_group)["id"])
    start = trigger.position
    buy_tea(api, "ann")
    run_automations()
    assert len(smtp.to("ann@example.com")) == 1
    Trigger.objects.filter(pk=trigger.pk).update(position=start)  # as if the move had been lost in a crash
    assert firings.consume(trigger.pk) == 0
    assert firings.execute_due() == 0
    assert len(smtp.to("ann@example.com")) == 1 and Firing.objects.count() == 1


def test_bad_settings_are_refused_with_what_is_wrong(api, tea_group):
    response = api.post("/api/triggers/", {"name": "Broken", "group": tea_group.pk, "action": "email",
                                           "settings": {"subject": "Hi {% if %}"}}, format="json")  # fmt: skip
    assert response.status_code == 400
    errors = response.json()["settings"]
    assert errors["body"] == "This setting is required."
    assert errors["subject"].startswith("The subject template is not valid")
