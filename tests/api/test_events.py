"""Events: one at a time or in batches of up to 1,000, all or nothing, groups current when the call returns."""

from __future__ import annotations

import pytest

from customers.models import Account, Customer, Event
from customers.signals import customers_touched
from groups.models import CustomerGroup, Membership

pytestmark = pytest.mark.django_db(transaction=True)

BOUGHT_TEA = {"event": "purchase", "where": [{"property": "category", "op": "eq", "value": "Chinese tea"}]}
WHEN = "2024-05-01T09:30:00Z"


def members(group) -> set[int]:
    return set(Membership.objects.filter(group=group).values_list("customer_id", flat=True))


@pytest.fixture
def tea_group():
    return CustomerGroup.objects.create(name="Bought tea", slug="tea", rules=BOUGHT_TEA)


def test_one_event_by_external_id_puts_the_customer_in_the_group(api, tea_group):
    ann = Customer.objects.create(external_id="ann")
    Account.objects.create(external_id="h1")
    response = api.post(
        "/api/events/",
        {
            "customer": "ann",
            "name": "purchase",
            "occurred_at": WHEN,
            "amount": "4.50",
            "properties": {"category": "Chinese tea"},
            "account": "h1",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["customer_id"] == ann.pk and body["amount"] == 4.5 and body["account_id"] is not None
    assert members(tea_group) == {ann.pk}


def test_one_event_for_an_unknown_customer_or_account_is_400_and_records_nothing(api):
    Customer.objects.create(external_id="ann")
    response = api.post("/api/events/", {"customer": "ghost", "name": "purchase", "occurred_at": WHEN}, format="json")
    assert response.status_code == 400 and response.json() == {"customer": ["no customer with external_id 'ghost'"]}
    response = api.post(
        "/api/events/", {"customer": "ann", "name": "x", "occurred_at": WHEN, "account": "nope"}, format="json"
    )
    assert response.status_code == 400 and "account" in response.json()
    assert not Event.objects.exists()


def test_one_event_needs_exactly_one_way_to_name_the_customer(api):
    ann = Customer.objects.create(external_id="ann")
    both = api.post(
        "/api/events/", {"customer": "ann", "customer_id": ann.pk, "name": "x", "occurred_at": WHEN}, format="json"
    )
    neither = api.post("/api/events/", {"name": "x", "occurred_at": WHEN}, format="json")
    assert both.status_code == neither.status_code == 400
    assert "customer" in both.json() and "customer" in neither.json()


def test_a_batch_is_recorded_and_evaluated_once(api, tea_group):
    customers = Customer.objects.bulk_create([Customer(external_id=f"c{i}") for i in range(30)])
    sent = []

    def listen(sender, customer_ids, reason, **kwargs):
        sent.append(customer_ids)

    customers_touched.connect(listen)
    try:
        events = [
            {
                "customer": f"c{i}",
                "name": "purchase",
                "occurred_at": WHEN,
                "properties": {"category": "Chinese tea" if i % 2 else "Coffee"},
            }
            for i in range(30)
        ]
        response = api.post("/api/events/batch/", {"events": events}, format="json")
    finally:
        customers_touched.disconnect(listen)
    assert response.status_code == 201 and response.json()["created"] == 30 and len(response.json()["ids"]) == 30
    assert len(sent) == 1 and len(sent[0]) == 30
    assert members(tea_group) == {c.pk for i, c in enumerate(customers) if i % 2}


def test_a_batch_with_bad_items_records_nothing_and_names_each_bad_item(api):
    Customer.objects.create(external_id="ann")
    events = [
        {"customer": "ann", "name": "purchase", "occurred_at": WHEN},
        {"customer": "ann", "name": "purchase", "occurred_at": "yesterday"},
        {"customer": "ann", "name": "", "occurred_at": WHEN, "properties": []},
    ]
    response = api.post("/api/events/batch/", {"events": events}, format="json")
    assert response.status_code == 400
    errors = response.json()["events"]
    assert set(errors) == {"1", "2"}
    assert "occurred_at" in errors["1"] and {"name", "properties"} <= set(errors["2"])
    unknown = api.post("/api/events/batch/", {"events": [events[0], {**events[0], "customer": "ghost"}]}, format="json")
    assert unknown.status_code == 400 and set(unknown.json()["events"]) == {"1"}
    assert not Event.objects.exists()


def test_a_batch_holds_at_most_1000_events_and_at_least_one(api):
    Customer.objects.create(external_id="ann")
    event = {"customer": "ann", "name": "x", "occurred_at": WHEN}
    too_many = api.post("/api/events/batch/", {"events": [event] * 1001}, format="json")
    assert too_many.status_code == 400 and "events" in too_many.json()
    empty = api.post("/api/events/batch/", {"events": []}, format="json")
    assert empty.status_code == 400 and "events" in empty.json()
    assert api.post("/api/events/batch/", {"events": [event] * 1000}, format="json").status_code == 201
    assert Event.objects.count() == 1000


def test_a_batch_stores_every_item_as_sent_and_returns_their_ids_in_order(api):
    ann, bob = Customer.objects.bulk_create([Customer(external_id="ann"), Customer(external_id="bob")])
    household = Account.objects.create(external_id="h1")
    events = [
        {"customer": "ann", "name": "purchase", "occurred_at": "2024-05-01T09:30:00+02:00", "amount": "12.34",
         "properties": {"category": "Chinese tea", "items": [1, 2]}, "account": "h1"},
        {"customer_id": bob.pk, "name": "check_in", "occurred_at": WHEN},
        {"customer": "bob", "name": "purchase", "occurred_at": WHEN, "amount": 3, "account": ""},
    ]  # fmt: skip
    response = api.post("/api/events/batch/", {"events": events}, format="json")
    assert response.status_code == 201, response.content
    stored = [Event.objects.get(pk=pk) for pk in response.json()["ids"]]
    assert [(e.customer_id, e.name, e.account_id) for e in stored] == [
        (ann.pk, "purchase", household.pk), (bob.pk, "check_in", None), (bob.pk, "purchase", None)
    ]  # fmt: skip
    assert [str(e.amount) if e.amount is not None else None for e in stored] == ["12.34", None, "3.00"]
    assert [e.properties for e in stored] == [{"category": "Chinese tea", "items": [1, 2]}, {}, {}]
    assert stored[0].occurred_at.isoformat() == "2024-05-01T07:30:00+00:00"
    assert all(e.created_at is not None for e in stored)


def test_json_text_with_a_nul_character_is_a_400_that_names_the_field(api):
    Customer.objects.create(external_id="ann")
    event = {"customer": "ann", "name": "purchase", "occurred_at": WHEN, "properties": {"note": "a\u0000b"}}
    one = api.post("/api/events/", event, format="json")
    assert one.status_code == 400 and "NUL" in one.json()["properties"][0]
    batch = api.post("/api/events/batch/", {"events": [{**event, "properties": {}}, event]}, format="json")
    assert batch.status_code == 400 and set(batch.json()["events"]) == {"1"}
    assert "properties" in batch.json()["events"]["1"]
    customer = api.post("/api/customers/identify/", {"external_id": "bob", "attributes": {"k\u0000": 1}}, format="json")
    assert customer.status_code == 400 and "attributes" in customer.json()
    assert not Event.objects.exists() and not Customer.objects.filter(external_id="bob").exists()
