"""One-off sends through the API: preview with a real member, the count before sending, the send with a
record per recipient and a final report, and a send scheduled for later that can be cancelled."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from automations.models import Send
from automations.tasks import sweep
from customers.models import Customer
from groups import services
from groups.models import CustomerGroup

pytestmark = pytest.mark.django_db(transaction=True)

ASK_BIRTHDATE = {"subject": "When is your birthday, {{ customer.first_name }}?",
                 "body": "Tell us and get a treat on the day."}  # fmt: skip


@pytest.fixture
def no_birthdate(ann):
    group = CustomerGroup.objects.create(name="No birthdate", slug="no-birthdate", kind=CustomerGroup.Kind.MANUAL)
    subscribed = CustomerGroup.objects.create(name="Subscribers", slug="subs", kind=CustomerGroup.Kind.MANUAL)
    bo = Customer.objects.create(first_name="Bo", email="bo@example.com", email_consent=False)
    cy = Customer.objects.create(first_name="Cy", email="cy@example.com", email_consent=True)
    services.add_members(group, [ann.pk, bo.pk, cy.pk])
    services.add_members(subscribed, [cy.pk])
    return group, subscribed, {"ann": ann, "bo": bo, "cy": cy}


def create_send(api, group, suppressed) -> dict:
    fields = {"name": "Ask for birthdates", "group": group.pk, "channel": "email", "settings": ASK_BIRTHDATE,
              "suppressed_by": [suppressed.pk]}  # fmt: skip
    response = api.post("/api/sends/", fields, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_send_previews_counts_and_reaches_every_reachable_member_once(api, smtp, no_birthdate):
    group, subscribed, people = no_birthdate
    send = create_send(api, group, subscribed)
    preview = api.get(f"/api/sends/{send['id']}/preview/?customer={people['ann'].pk}").json()
    assert preview["subject"] == "When is your birthday, Ann?" and preview["will_receive"] == 1

    started = api.post(f"/api/sends/{send['id']}/schedule/", {}, format="json")
    assert started.status_code == 202
    done = api.get(f"/api/sends/{send['id']}/").json()
    assert done["status"] == "finished"
    assert done["report"]["sent"] == 1 and done["report"]["skipped"] == 2 and done["report"]["failed"] == 0
    assert [m["To"] for m in smtp.messages] == ["ann@example.com"]
    assert smtp.messages[0]["Message-ID"] == f"<send-{send['id']}-{people['ann'].pk}@customer-groups.local>"
    recipients = api.get(f"/api/sends/{send['id']}/recipients/").json()["results"]
    by_customer = {r["customer"]: (r["status"], r["detail"]) for r in recipients}
    assert by_customer == {
        people["ann"].pk: ("sent", "Email “When is your birthday, Ann?” to ann@example.com"),
        people["bo"].pk: ("skipped", "No Email consent or address"),
        people["cy"].pk: ("skipped", "Suppressed by another group"),
    }
    again = api.post(f"/api/sends/{send['id']}/schedule/", {}, format="json")
    assert again.status_code == 400 and smtp.messages[1:] == []


def test_a_send_scheduled_for_later_starts_on_time_and_can_be_cancelled_before(api, smtp, no_birthdate):
    group, subscribed, _ = no_birthdate
    later = create_send(api, group, subscribed)
    cancelled = create_send(api, group, subscribed)
    at = timezone.now() + timedelta(hours=2)
    for send in (later, cancelled):
        response = api.post(f"/api/sends/{send['id']}/schedule/", {"at": at.isoformat()}, format="json")
        assert response.status_code == 202 and response.json()["status"] == "scheduled"
    assert api.post(f"/api/sends/{cancelled['id']}/cancel/").json()["status"] == "cancelled"

    sweep()
    assert smtp.messages == []
    with time_machine.travel(at + timedelta(minutes=1)):
        sweep()
    assert Send.objects.get(pk=later["id"]).status == "finished"
    assert Send.objects.get(pk=cancelled["id"]).status == "cancelled"
    assert [m["To"] for m in smtp.messages] == ["ann@example.com"]
    assert api.post(f"/api/sends/{later['id']}/cancel/").status_code == 400  # too late: it has run


def test_a_send_with_a_broken_template_is_refused(api, no_birthdate):
    group, _, _ = no_birthdate
    response = api.post("/api/sends/", {"name": "x", "group": group.pk, "channel": "email",
                                        "settings": {"subject": "{% if %}", "body": "x"}}, format="json")  # fmt: skip
    assert response.status_code == 400 and "subject" in response.json()["settings"]


def test_workers_delivering_one_send_at_once_send_each_message_once_with_accounts_in_the_body(smtp):
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from automations import sends
    from customers.models import Account, AccountMembership

    household = Account.objects.create(external_id="h1", name="The Lees", kind="household")
    people = Customer.objects.bulk_create(
        [Customer(first_name=f"P{i}", email=f"p{i}@example.com", email_consent=True) for i in range(250)]
    )
    AccountMembership.objects.bulk_create([AccountMembership(account=household, customer=c) for c in people[:10]])
    group = CustomerGroup.objects.create(name="Everyone", slug="everyone", kind=CustomerGroup.Kind.MANUAL)
    services.add_members(group, [c.pk for c in people])
    settings = {"subject": "Hi {{ customer.first_name }}", "body": "{% for a in accounts %}{{ a.name }}{% endfor %}"}
    send = Send.objects.create(name="News", group=group, settings=settings, status=Send.Status.SCHEDULED,
                               scheduled_for=timezone.now())  # fmt: skip
    assert sends.start(send.pk)

    def worker(_) -> int:
        try:
            return sends.deliver(send.pk)
        finally:
            connection.close()

    with ThreadPoolExecutor(3) as pool:
        handled = sum(pool.map(worker, range(3)))
    assert handled == 250
    assert Counter(m["To"] for m in smtp.messages) == Counter(c.email for c in people)  # each once
    with_household = {m["To"] for m in smtp.messages if "The Lees" in m.get_payload()}
    assert with_household == {c.email for c in people[:10]}
    send.refresh_from_db()
    assert send.status == Send.Status.FINISHED and send.report["sent"] == 250
