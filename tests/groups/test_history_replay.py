"""After random sequences of writes, refreshes and rule edits, history replays to the membership,
and the event path has kept every group exactly where a full refresh would put it."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from customers.models import Account, AccountMembership, Customer, Event
from groups import engine, services
from groups.models import CustomerGroup, MembershipChange

from .history import members, replay

pytestmark = pytest.mark.django_db(transaction=True)

RULE_CHOICES = [
    {"field": "role", "op": "eq", "value": "customer"},
    {"field": "email", "op": "is_empty"},
    {"event": "purchase", "window": {"last": {"days": 30}}, "count": {"op": "gte", "value": 2}},
    {"event": "check_in", "window": {"last": {"days": 60}}, "count": {"op": "eq", "value": 0}},
    {"account": {"all": [{"field": "attributes.plan", "op": "eq", "value": "pro"}]}},
    {"any": [{"field": "status", "op": "eq", "value": "active"}, {"field": "email_consent", "op": "is_true"}]},
]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_history_replays_to_membership_after_random_operations(seed):
    rng = random.Random(seed)
    now = timezone.now()
    customers = [
        Customer.objects.create(email=f"{i}@example.com" if i % 3 else "", role=rng.choice(["customer", "staff"]))
        for i in range(25)
    ]
    accounts = [
        Account.objects.create(kind="household", attributes={"plan": rng.choice(["pro", "free"])}) for _ in range(4)
    ]
    base = CustomerGroup.objects.create(name="Base", slug="base", rules=rng.choice(RULE_CHOICES))
    groups = [
        base,
        CustomerGroup.objects.create(name="Second", slug="second", rules={"all": rng.sample(RULE_CHOICES, 2)}),
        CustomerGroup.objects.create(
            name="Reader", slug="reader", rules={"any": [{"in_group": base.pk}, rng.choice(RULE_CHOICES)]}
        ),
    ]

    def customer():
        return Customer.objects.get(pk=rng.choice(customers).pk)

    operations = [
        lambda: setattr_and_save(customer(), role=rng.choice(["customer", "staff", "CUSTOMER"])),
        lambda: setattr_and_save(customer(), email=rng.choice(["", "x@example.com"])),
        lambda: setattr_and_save(
            customer(), status=rng.choice(["active", "", "lapsed"]), email_consent=rng.random() < 0.5
        ),
        lambda: Event.objects.create(
            customer=customer(),
            name=rng.choice(["purchase", "check_in"]),
            occurred_at=now - timedelta(days=rng.randint(0, 90)),
        ),
        lambda: Event.objects.filter(customer=customer()).delete(),
        lambda: AccountMembership.objects.get_or_create(customer=customer(), account=rng.choice(accounts)),
        lambda: AccountMembership.objects.filter(customer=customer()).delete(),
        lambda: setattr_and_save(rng.choice(accounts), attributes={"plan": rng.choice(["pro", "free"])}),
        lambda: services.refresh(rng.choice(groups)),
        lambda: services.change_rules(rng.choice(groups[:2]), rng.choice(RULE_CHOICES)),
        lambda: services.set_active(rng.choice(groups), rng.random() < 0.7),
    ]
    for _ in range(60):
        rng.choice(operations)()

    for group in CustomerGroup.objects.all():
        assert replay(group) == members(group), group.name
    # Nothing should be left for a full refresh to fix: the event path kept every group current.
    history_before = MembershipChange.objects.count()
    active = list(CustomerGroup.objects.filter(is_active=True))
    outcome = engine.evaluate(active, None)
    assert (outcome.added.total(), outcome.removed.total()) == (0, 0)
    assert MembershipChange.objects.count() == history_before
    for group in CustomerGroup.objects.all():
        group_count = group.member_count
        assert group_count == len(members(group))


def setattr_and_save(instance, **values):
    for name, value in values.items():
        setattr(instance, name, value)
    instance.save()


def test_history_replays_after_raw_changes_and_refresh():
    group = CustomerGroup.objects.create(
        name="Customers", slug="customers", rules={"field": "role", "op": "eq", "value": "customer"}
    )
    Customer.objects.bulk_create(Customer(email=f"{i}@example.com", role="customer") for i in range(30))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE customers_customer SET role = 'staff' WHERE id % 2 = 0")
    services.refresh(group)
    assert replay(group) == members(group) == set(Customer.objects.filter(role="customer").values_list("id", flat=True))
