"""The database enforces the models' invariants, whatever path writes the rows."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.models import Account, AccountMembership, AttributeDefinition, Customer, Event
from groups.models import CustomerGroup, Membership, SizeSnapshot

pytestmark = pytest.mark.django_db


def refused(**kwargs):
    """Expect the statement to fail on a constraint, and keep the test's transaction usable."""
    return pytest.raises(IntegrityError, **kwargs)


def create_refused(model, **fields):
    with refused(), transaction.atomic():
        model.objects.create(**fields)


@pytest.fixture
def customer():
    return Customer.objects.create(external_id="C1", email="ada@example.com")


@pytest.fixture
def group():
    return CustomerGroup.objects.create(
        name="Staff", slug="staff", rules={"field": "role", "op": "eq", "value": "staff"}
    )


def test_external_id_is_unique():
    Customer.objects.create(external_id="C42")
    create_refused(Customer, external_id="C42")


def test_many_customers_may_have_no_external_id():
    Customer.objects.bulk_create([Customer(external_id=None) for _ in range(3)])
    assert Customer.objects.filter(external_id__isnull=True).count() == 3


@pytest.mark.parametrize("attributes", [[], ["gold"], "gold", 3, True])
def test_customer_attributes_must_be_a_json_object(attributes):
    create_refused(Customer, attributes=attributes)


def test_customer_attributes_accept_an_object():
    customer = Customer.objects.create(attributes={"tier": "gold", "points": 10, "vip": True})
    customer.refresh_from_db()
    assert customer.attributes == {"tier": "gold", "points": 10, "vip": True}


def test_account_attributes_must_be_a_json_object():
    create_refused(Account, name="Silva household", attributes=["active"])


def test_account_external_id_is_unique_but_may_be_missing_many_times():
    Account.objects.create(external_id="H1")
    Account.objects.create()
    Account.objects.create()
    create_refused(Account, external_id="H1")


def test_event_name_must_not_be_empty(customer):
    create_refused(Event, customer=customer, name="", occurred_at=timezone.now())


def test_event_properties_must_be_a_json_object(customer):
    create_refused(Event, customer=customer, name="purchase", occurred_at=timezone.now(), properties=["tea"])


def test_a_customer_is_in_an_account_once(customer):
    account = Account.objects.create(name="Silva household", kind="household")
    AccountMembership.objects.create(customer=customer, account=account, role="owner")
    create_refused(AccountMembership, customer=customer, account=account, role="member")


def test_attribute_definition_is_unique_per_entity_and_key():
    AttributeDefinition.objects.create(entity="customer", key="tier", type="text")
    # The same key on the other entity is a different attribute.
    AttributeDefinition.objects.create(entity="account", key="tier", type="text")
    create_refused(AttributeDefinition, entity="customer", key="tier", type="number")


def test_attribute_definition_type_must_be_a_known_type():
    create_refused(AttributeDefinition, entity="customer", key="balance", type="money")


def test_attribute_definition_entity_must_be_customer_or_account():
    create_refused(AttributeDefinition, entity="store", key="region", type="text")


def test_a_customer_is_a_member_of_a_group_once(customer, group):
    Membership.objects.create(group=group, customer=customer, added_at=timezone.now())
    create_refused(Membership, group=group, customer=customer, added_at=timezone.now())


def test_one_daily_size_snapshot_per_group_and_day(group):
    today = date(2026, 3, 1)
    SizeSnapshot.objects.create(group=group, kind="daily", day=today, taken_at=timezone.now(), member_count=5)
    SizeSnapshot.objects.create(
        group=group, kind="daily", day=today + timedelta(days=1), taken_at=timezone.now(), member_count=6
    )
    create_refused(SizeSnapshot, group=group, kind="daily", day=today, taken_at=timezone.now(), member_count=7)


def test_snapshots_after_runs_may_be_many_on_one_day(group):
    for count in (1, 2, 3):
        SizeSnapshot.objects.create(group=group, kind="run", taken_at=timezone.now(), member_count=count)
    assert group.size_snapshots.count() == 3


def test_a_daily_snapshot_needs_its_day(group):
    create_refused(SizeSnapshot, group=group, kind="daily", day=None, taken_at=timezone.now(), member_count=1)


@pytest.mark.parametrize("kind", ["smart", "", "DYNAMIC"])
def test_group_kind_must_be_dynamic_or_manual(kind):
    create_refused(CustomerGroup, name="Odd", slug="odd", kind=kind)


def test_group_refresh_mode_must_be_known():
    create_refused(CustomerGroup, name="Odd", slug="odd", refresh_mode="hourly")


def test_group_slug_is_unique(group):
    create_refused(CustomerGroup, name="Staff again", slug="staff")
