"""An event sent again under its unique_id (a retry after a lost answer) is recorded once."""

from __future__ import annotations

import threading

import psycopg
import pytest
from django.db import connection

from customers.models import Customer, Event
from groups.models import CustomerGroup, Membership, MembershipChange

pytestmark = pytest.mark.django_db(transaction=True)

WHEN = "2024-05-01T09:30:00Z"
TWO_VISITS = {"event": "check_in", "count": {"op": "gte", "value": 2}}


def visit(customer: str, unique_id: str | None, name: str = "check_in") -> dict:
    event = {"customer": customer, "name": name, "occurred_at": WHEN}
    return event | ({"unique_id": unique_id} if unique_id is not None else {})


def test_a_batch_sent_again_records_nothing_and_answers_with_the_same_ids(api):
    ann = Customer.objects.create(external_id="ann")
    regulars = CustomerGroup.objects.create(name="Two visits", slug="two-visits", rules=TWO_VISITS)
    batch = {"events": [visit("ann", "till-1:receipt-77")]}
    first = api.post("/api/events/batch/", batch, format="json")
    assert first.status_code == 201 and first.json()["created"] == 1 and first.json()["repeated"] == 0
    history = MembershipChange.objects.count()

    again = api.post("/api/events/batch/", batch, format="json")  # the answer to the first was lost
    assert again.status_code == 201
    assert again.json() == {"created": 0, "repeated": 1, "ids": first.json()["ids"]}
    assert Event.objects.filter(customer=ann).count() == 1
    # Counted once: one visit does not make a regular, however often it is sent.
    assert not Membership.objects.filter(group=regulars).exists()
    assert MembershipChange.objects.count() == history

    api.post("/api/events/batch/", {"events": [visit("ann", "till-1:receipt-78")]}, format="json")
    assert set(Membership.objects.filter(group=regulars).values_list("customer_id", flat=True)) == {ann.pk}


def test_each_item_of_a_mixed_batch_gets_its_own_outcome_in_order(api):
    Customer.objects.bulk_create([Customer(external_id="ann"), Customer(external_id="bob")])
    earlier = api.post("/api/events/batch/", {"events": [visit("ann", "r1")]}, format="json").json()["ids"][0]
    batch = [
        visit("ann", "r1"),  # recorded before
        visit("ann", "r2"),  # new
        visit("ann", None),  # no unique_id: always recorded
        visit("ann", "r2"),  # twice in this batch: recorded once
        visit("bob", "r1"),  # the same unique_id for another customer
        visit("ann", "r1", name="purchase"),  # and under another name
        visit("ann", None),
    ]
    body = api.post("/api/events/batch/", {"events": batch}, format="json").json()
    ids = body["ids"]
    assert body["created"] == 5 and body["repeated"] == 2
    assert ids[0] == earlier and ids[3] == ids[1]
    assert len({earlier, ids[1], ids[2], ids[4], ids[5], ids[6]}) == 6
    stored = {e.pk: (e.customer.external_id, e.name, e.unique_id) for e in Event.objects.select_related("customer")}
    assert [stored[i] for i in ids] == [
        ("ann", "check_in", "r1"), ("ann", "check_in", "r2"), ("ann", "check_in", None), ("ann", "check_in", "r2"),
        ("bob", "check_in", "r1"), ("ann", "purchase", "r1"), ("ann", "check_in", None),
    ]  # fmt: skip
    assert Event.objects.count() == 6


def test_one_event_sent_again_is_200_with_the_event_recorded_first(api):
    Customer.objects.create(external_id="ann")
    first = api.post("/api/events/", visit("ann", "m-1") | {"amount": "4.50"}, format="json")
    again = api.post("/api/events/", visit("ann", "m-1") | {"amount": "9.99"}, format="json")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()  # the stored event, not the repeat's values
    assert first.json()["unique_id"] == "m-1" and Event.objects.count() == 1


def test_a_unique_id_longer_than_255_characters_is_refused_with_where(api):
    Customer.objects.create(external_id="ann")
    response = api.post("/api/events/batch/", {"events": [visit("ann", "x" * 256)]}, format="json")
    assert response.status_code == 400 and "unique_id" in response.json()["events"]["0"]
    assert not Event.objects.exists()


def test_the_same_batch_from_two_senders_at_once_is_recorded_once(api):
    """One sender's transaction holds the event uncommitted; the other's insert waits for it, then
    answers with that event instead of recording a second."""
    ann = Customer.objects.create(external_id="ann")
    settings = connection.settings_dict
    with psycopg.connect(host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"],
                         password=settings["PASSWORD"], dbname=settings["NAME"]) as other:  # fmt: skip
        (held,) = other.execute(
            "INSERT INTO customers_event (customer_id, name, occurred_at, properties, unique_id, created_at) "
            "VALUES (%s, 'check_in', %s, '{}', 'r-9', now()) RETURNING id",
            [ann.pk, WHEN],
        ).fetchone()
        answers = []
        sender = threading.Thread(
            target=lambda: answers.append(
                api.post("/api/events/batch/", {"events": [visit("ann", "r-9")]}, format="json")
            )  # fmt: skip
        )
        sender.start()
        sender.join(timeout=1)
        assert sender.is_alive()  # waiting for the other sender's transaction to end
        other.commit()
        sender.join(timeout=30)
    assert answers[0].json() == {"created": 0, "repeated": 1, "ids": [held]}
    assert Event.objects.filter(customer=ann).count() == 1
