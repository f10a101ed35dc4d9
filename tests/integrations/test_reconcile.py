"""Reconcile against a fake Klaviyo: a tampered list is repaired and reported; hand-added members stay unless chosen."""

from __future__ import annotations

import pytest

from customers.models import Customer
from groups import services as groups
from integrations import drain, services
from integrations.models import Connection
from tests.fakes.klaviyo import FakeKlaviyo

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def klaviyo():
    with FakeKlaviyo() as fake:
        yield fake


@pytest.fixture
def connection(klaviyo):
    return Connection.objects.create(kind="klaviyo", name="Klaviyo", settings={"base_url": klaviyo.url},
                                     credentials={"api_key": "pk_test_fake"})  # fmt: skip


def test_reconcile_repairs_a_tampered_list_and_reports_what_it_did(klaviyo, connection, group, people):
    groups.add_members(group, [p.pk for p in people[:6]])
    sync = services.turn_on(group, connection)
    while drain.drain(sync.pk) is drain.Outcome.MORE:
        pass
    sync.refresh_from_db()
    emails = {p.email for p in people[:6]}
    assert klaviyo.members(sync.remote_id) == emails

    # Someone edits the list in Klaviyo: takes two members off, adds a stranger and a customer who was
    # never in the group; meanwhile a member left the group while its removal never reached Klaviyo.
    members = klaviyo.lists[sync.remote_id]["members"]
    by_email = {klaviyo.profiles[pid]["email"]: pid for pid in members}
    for email in (people[0].email, people[1].email):
        members.pop(by_email[email])
    members[klaviyo.add_profile("stranger@example.com")] = "2026-01-01T00:00:00Z"
    outsider = Customer.objects.create(email="outsider@example.com")
    members[klaviyo.add_profile(outsider.email)] = "2026-01-01T00:00:00Z"
    groups.remove_members(group, [people[5].pk])
    services.pause(sync)  # so the removal is still waiting when reconcile runs...
    services.resume(sync)  # ...and reconcile first sends what waits, then compares

    report = drain.reconcile(sync.pk)
    assert report["added"] == 2 and report["removed"] == 0 and report["left_alone"] == 3
    assert report["remote_only"] == 2 and not report["remote_only_removed"]
    assert set(report["remote_only_examples"]) == {"stranger@example.com", "outsider@example.com"}
    assert klaviyo.members(sync.remote_id) == {p.email for p in people[:5]} | {
        "stranger@example.com", "outsider@example.com"}  # fmt: skip
    sync.refresh_from_db()
    assert sync.last_reconcile == report and sync.last_reconcile_at

    report = drain.reconcile(sync.pk, remove_remote_only=True)
    assert report["added"] == 0 and report["removed"] == 2 and report["left_alone"] == 5
    assert klaviyo.members(sync.remote_id) == {p.email for p in people[:5]}
