"""Writes announce the customers they touched once per committed transaction, and never otherwise."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone

from customers.models import Customer, Event
from customers.signals import customers_touched

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def announcements():
    sent = []

    def listen(sender, customer_ids, reason, events, **kwargs):
        sent.append((customer_ids, reason, events))

    customers_touched.connect(listen)
    yield sent
    customers_touched.disconnect(listen)


def test_a_transaction_announces_once_after_commit(announcements):
    with transaction.atomic():
        ann = Customer.objects.create(email="ann@example.com")
        bob = Customer.objects.create(email="bob@example.com")
        assert announcements == []
    assert announcements == [(sorted([ann.pk, bob.pk]), "event", {ann.pk: None, bob.pk: None})]


def test_a_transaction_that_rolls_back_announces_nothing(announcements):
    ann = Customer.objects.create(email="ann@example.com")
    announcements.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        Customer.objects.filter(pk=ann.pk).update(role="staff")
        raise RuntimeError("the write fails")
    assert announcements == []

    with transaction.atomic():
        bob = Customer.objects.create(email="bob@example.com")
    assert announcements == [([bob.pk], "event", {bob.pk: None})]


def test_new_events_announce_each_customers_own_event_names_and_other_writes_anything(announcements):
    ann = Customer.objects.create(email="ann@example.com")
    bob = Customer.objects.create(email="bob@example.com")
    announcements.clear()
    now = timezone.now()
    Event.objects.bulk_create(
        [Event(customer=ann, name="purchase", occurred_at=now), Event(customer=bob, name="check_in", occurred_at=now)]
    )
    with transaction.atomic():
        Event.objects.create(customer=ann, name="check_in", occurred_at=now)
        Event.objects.create(customer=ann, name="purchase", occurred_at=now)
    with transaction.atomic():
        Event.objects.create(customer=ann, name="check_in", occurred_at=now)
        Event.objects.create(customer=bob, name="check_in", occurred_at=now)
        ann.save()
    assert announcements == [
        ([ann.pk, bob.pk], "event", {ann.pk: frozenset({"purchase"}), bob.pk: frozenset({"check_in"})}),
        ([ann.pk], "event", {ann.pk: frozenset({"check_in", "purchase"})}),
        ([ann.pk, bob.pk], "event", {ann.pk: None, bob.pk: frozenset({"check_in"})}),
    ]
