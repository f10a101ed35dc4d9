"""Concurrency on a real database: refresh vs refresh, refresh vs customer writes."""

from __future__ import annotations

import random
import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from customers.models import Customer
from groups import services
from groups.models import CustomerGroup, Membership

from .history import members, replay

pytestmark = pytest.mark.django_db(transaction=True)

CUSTOMERS = {"field": "role", "op": "eq", "value": "customer"}


def run_in_threads(*targets):
    errors = []

    def wrap(fn):
        def body():
            try:
                fn()
            except Exception as exc:  # reported below: a thread's failure must fail the test
                errors.append(exc)
            finally:
                connections.close_all()

        return body

    threads = [threading.Thread(target=wrap(fn)) for fn in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


def expected_customers() -> set[int]:
    return set(Customer.objects.filter(role="customer").values_list("id", flat=True))


@pytest.fixture
def population():
    rng = random.Random(1)
    Customer.objects.bulk_create(
        Customer(email=f"{i}@example.com", role=rng.choice(["customer", "staff"])) for i in range(400)
    )
    return list(Customer.objects.values_list("id", flat=True))


def test_two_refreshes_of_one_group_never_interleave(population):
    group = CustomerGroup.objects.create(name="Customers", slug="customers", rules=CUSTOMERS)
    rng = random.Random(2)

    def shuffle_roles_and_refresh():
        for _ in range(5):
            ids = rng.sample(population, 60)
            with connection.cursor() as cursor:  # behind the engine's back: only refreshes notice
                cursor.execute(
                    "UPDATE customers_customer SET role = CASE role WHEN 'customer' THEN 'staff' ELSE 'customer' END"
                    " WHERE id = ANY(%s)",
                    [ids],
                )
            services.refresh(group)

    run_in_threads(shuffle_roles_and_refresh, shuffle_roles_and_refresh, shuffle_roles_and_refresh)
    services.refresh(group)

    assert members(group) == expected_customers()
    assert replay(group) == members(group)
    group.refresh_from_db()
    assert group.member_count == Membership.objects.filter(group=group).count()


def test_refresh_racing_customer_writes_ends_in_the_right_membership(population):
    group = CustomerGroup.objects.create(name="Customers", slug="customers", rules=CUSTOMERS)
    rng = random.Random(3)

    def refresh_repeatedly():
        for _ in range(8):
            services.refresh(group)

    def write_customers():
        for customer_id in rng.sample(population, 120):
            customer = Customer.objects.get(pk=customer_id)
            customer.role = "staff" if customer.role == "customer" else "customer"
            customer.save()

    run_in_threads(refresh_repeatedly, write_customers, write_customers)

    # No refresh afterwards: the event path alone must have left it right.
    assert members(group) == expected_customers()
    assert replay(group) == members(group)
    group.refresh_from_db()
    assert group.member_count == len(members(group))


def test_a_batch_evaluates_its_free_customers_while_another_write_holds_one():
    group = CustomerGroup.objects.create(name="Customers", slug="customers", rules=CUSTOMERS)
    held, *free = Customer.objects.bulk_create(Customer(email=f"{i}@example.com", role="staff") for i in range(4))
    free_ids = {c.pk for c in free}
    # Behind the engine's back (raw SQL announces nothing): only the evaluation below sees these.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE customers_customer SET role = 'customer' WHERE id = ANY(%s)", [list(free_ids)])
    holding, release = threading.Event(), threading.Event()

    def another_write_to_the_held_customer():
        with transaction.atomic():
            Customer.objects.select_for_update(no_key=True).get(pk=held.pk)
            with connection.cursor() as cursor:
                cursor.execute("UPDATE customers_customer SET role = 'customer' WHERE id = %s", [held.pk])
            holding.set()
            assert release.wait(timeout=30)

    def evaluate_all_four():
        assert holding.wait(timeout=30)
        services.evaluate_customers([held.pk, *free_ids])

    both = threading.Thread(target=run_in_threads, args=(another_write_to_the_held_customer, evaluate_all_four))
    both.start()
    try:
        # The free customers are evaluated and committed while the held one is still locked...
        deadline = time.monotonic() + 30
        while members(group) != free_ids and time.monotonic() < deadline:
            time.sleep(0.05)
        assert members(group) == free_ids
    finally:
        release.set()
        both.join(timeout=60)
    # ...and the held one once the other write has committed, so its evaluation saw that write.
    assert members(group) == free_ids | {held.pk}
    assert replay(group) == members(group)


def test_concurrent_event_batches_that_change_the_same_groups_keep_their_counts_and_never_deadlock():
    # Each batch has check-ins and purchases, so it is evaluated in two scopes in one transaction,
    # and both scopes change the "visited or bought" groups: two such batches at once lock the same
    # group rows, and must do so in one order.
    from customers.models import Event

    recent = {"last": {"days": 30}}
    for i in range(4):
        CustomerGroup.objects.create(
            name=f"Active {i}",
            slug=f"active-{i}",
            rules={"any": [{"event": "check_in", "window": recent}, {"event": "purchase", "window": recent}]},
        )
        CustomerGroup.objects.create(
            name=f"Bought {i}", slug=f"bought-{i}", rules={"event": "purchase", "window": recent}
        )
    customers = Customer.objects.bulk_create(Customer(email=f"{i}@example.com") for i in range(240))

    def writer(share):
        def write():
            rng = random.Random(share[0].pk)
            for start in range(0, len(share), 12):
                batch = share[start : start + 12]
                with transaction.atomic():
                    Event.objects.bulk_create(
                        Event(customer=c, name=rng.choice(["check_in", "purchase"]), occurred_at=timezone.now())
                        for c in batch
                    )

        return write

    run_in_threads(*(writer(customers[i::3]) for i in range(3)))
    for group in CustomerGroup.objects.all():
        assert group.member_count == Membership.objects.filter(group=group).count() > 0
        assert members(group) == replay(group)


def test_a_full_refresh_of_an_always_current_group_runs_beside_batches_and_sweeps_without_deadlock(population):
    """Batches write due times customer by customer, a full refresh writes everyone's: both at once
    must neither deadlock nor leave anyone due later than their first check-in or purchase leaves."""
    from datetime import timedelta

    from customers.models import Event
    from groups import always_current
    from groups.models import CustomerDue

    windows = {"check_in": 30, "purchase": 7}
    groups = [
        CustomerGroup.objects.create(
            name=name,
            slug=name,
            refresh_mode="always_current",
            rules={"event": name, "window": {"last": {"days": days}}},
        )
        for name, days in windows.items()
    ]
    rng = random.Random(3)
    now = timezone.now()

    def batches():
        for _ in range(6):
            Event.objects.bulk_create(
                Event(
                    customer_id=pk,
                    name=rng.choice(list(windows)),
                    occurred_at=now - timedelta(hours=rng.randint(1, 600)),
                )
                for pk in rng.sample(population, 80)
            )

    def refreshes():
        for _ in range(3):
            for group in groups:
                services.refresh(group)

    def sweeps():
        for _ in range(10):
            always_current.sweep()

    run_in_threads(batches, batches, refreshes, sweeps)

    due = dict(CustomerDue.objects.values_list("customer_id", "due_at"))
    for customer_id, name, occurred_at in Event.objects.values_list("customer_id", "name", "occurred_at"):
        # Counted up to N days later, to the microsecond; gone the microsecond after.
        leaves = occurred_at + timedelta(days=windows[name], microseconds=1)
        if leaves > timezone.now():
            assert customer_id in due and due[customer_id] <= leaves
