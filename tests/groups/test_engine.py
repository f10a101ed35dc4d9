"""The membership engine: full refresh, the event path, manual groups, dependants and history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import Account, AccountMembership, Customer, Event
from groups import engine, services
from groups.models import CustomerGroup, Membership, MembershipChange, Reason, RefreshRun, SizeSnapshot
from groups.rules import Catalogue

from .history import members, replay

pytestmark = pytest.mark.django_db(transaction=True)

CUSTOMERS = {"field": "role", "op": "eq", "value": "customer"}
NO_EMAIL = {"field": "email", "op": "is_empty"}


def make_group(name, rules, **kwargs):
    return CustomerGroup.objects.create(name=name, slug=name.lower().replace(" ", "-"), rules=rules, **kwargs)


def test_refresh_adds_matching_customers_and_records_why():
    alice = Customer.objects.create(email="alice@example.com", role="customer")
    Customer.objects.create(email="bob@example.com", role="staff")
    group = make_group("Customers", CUSTOMERS)
    MembershipChange.objects.all().delete()
    Membership.objects.all().delete()
    CustomerGroup.objects.filter(pk=group.pk).update(member_count=0)

    run = services.refresh(group, reason=Reason.MANUAL_REFRESH)

    assert members(group) == {alice.pk}
    assert run.status == RefreshRun.Status.SUCCEEDED and (run.added, run.removed) == (1, 0)
    change = MembershipChange.objects.get(group=group)
    assert (change.customer_id, change.change, change.reason, change.run_id) == (
        alice.pk,
        "added",
        "manual_refresh",
        run.pk,
    )
    group.refresh_from_db()
    assert group.member_count == 1 and group.last_run_status == "succeeded"
    assert SizeSnapshot.objects.filter(group=group, kind="run", member_count=1, run=run).exists()
    assert SizeSnapshot.objects.filter(group=group, kind="daily").count() == 1


def test_refresh_removes_customers_who_no_longer_match():
    group = make_group("Customers", CUSTOMERS)
    alice = Customer.objects.create(email="alice@example.com", role="customer")
    assert members(group) == {alice.pk}
    # Behind the engine's back (a raw update announces nothing), so only a refresh can notice.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE customers_customer SET role = 'staff' WHERE id = %s", [alice.pk])
    assert members(group) == {alice.pk}

    run = services.refresh(group, reason=Reason.SCHEDULE)

    assert members(group) == set() and run.removed == 1
    assert MembershipChange.objects.filter(group=group, change="removed", reason="schedule").count() == 1
    assert replay(group) == members(group)


def test_a_run_that_changes_nothing_writes_nothing():
    group = make_group("Customers", CUSTOMERS)
    Customer.objects.create(email="a@example.com", role="customer")
    history_before = MembershipChange.objects.count()
    with CaptureQueriesContext(connection) as queries:
        outcome = engine.evaluate([group], None, reason=Reason.MANUAL_REFRESH)
    assert outcome.added.total() == outcome.removed.total() == 0
    assert MembershipChange.objects.count() == history_before
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert writes == []


def test_customer_write_updates_membership_before_the_call_returns():
    group = make_group("No email", NO_EMAIL)
    customer = Customer.objects.create(role="customer")
    assert members(group) == {customer.pk}

    customer.email = "now@example.com"
    customer.save()
    assert members(group) == set()

    change = MembershipChange.objects.filter(group=group).order_by("-id").first()
    assert (change.change, change.reason, change.rule_version) == ("removed", "event", group.rule_version)


def test_event_and_account_writes_reach_groups():
    buyers = make_group(
        "Bought tea", {"event": "purchase", "where": [{"property": "category", "op": "eq", "value": "Chinese tea"}]}
    )
    subscribers = make_group(
        "Household active",
        {
            "account": {
                "all": [
                    {"field": "kind", "op": "eq", "value": "household"},
                    {"field": "attributes.subscription_status", "op": "eq", "value": "active"},
                ]
            }
        },
    )
    customer = Customer.objects.create(email="t@example.com")
    Event.objects.create(
        customer=customer, name="purchase", occurred_at=timezone.now(), properties={"category": "chinese TEA"}
    )
    assert members(buyers) == {customer.pk}

    household = Account.objects.create(kind="household", attributes={"subscription_status": "paused"})
    AccountMembership.objects.create(customer=customer, account=household, role="member")
    assert members(subscribers) == set()
    household.attributes = {"subscription_status": "active"}
    household.save()
    assert members(subscribers) == {customer.pk}
    Account.objects.filter(pk=household.pk).update(attributes={"subscription_status": "cancelled"})
    assert members(subscribers) == set()


def test_new_events_reevaluate_the_groups_that_count_them_and_their_dependants():
    buyers = make_group("Buyers", {"event": "purchase"})
    buyers_with_email = make_group("Buyers with email", {"all": [{"in_group": buyers.pk}, {"not": NO_EMAIL}]})
    no_email = make_group("No email", NO_EMAIL)
    customer = Customer.objects.create(email="")
    # Behind the engine's back, so only an evaluation of "No email" would notice.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE customers_customer SET email = 'late@example.com' WHERE id = %s", [customer.pk])

    with CaptureQueriesContext(connection) as queries:
        Event.objects.create(customer=customer, name="sign_up", occurred_at=timezone.now())
    assert not any("groups_membership" in q["sql"] for q in queries), "no group counts sign-ups"

    Event.objects.bulk_create([Event(customer=customer, name="purchase", occurred_at=timezone.now())])
    assert members(buyers) == {customer.pk}
    assert members(buyers_with_email) == {customer.pk}  # a dependant, evaluated with today's email
    assert members(no_email) == {customer.pk}  # reads no event: not evaluated, so still stale

    # Editing an event may change what it counts for: every group is evaluated.
    event = Event.objects.get(customer=customer, name="purchase")
    event.name = "refund"
    event.save()
    assert members(buyers) == set() and members(no_email) == set()
    assert all(replay(group) == members(group) for group in (buyers, buyers_with_email, no_email))


def test_in_a_batch_each_customer_is_evaluated_in_the_groups_its_own_new_events_count():
    names = ["purchase", "check_in", "sign_up", "review", "refund"]
    groups = {name: make_group(f"Did {name}", {"event": name}) for name in names}
    customers = Customer.objects.bulk_create(Customer(email=f"{i}@example.com") for i in range(5))
    ann, bob = customers[:2]

    def stale(customer, name):
        # Behind the engine's back: a membership only an evaluation of that group would remove.
        Membership.objects.create(group=groups[name], customer=customer, added_at=timezone.now())

    stale(ann, "check_in")
    stale(bob, "purchase")
    now = timezone.now()
    Event.objects.bulk_create(
        [Event(customer=ann, name="purchase", occurred_at=now), Event(customer=bob, name="check_in", occurred_at=now)]
    )
    assert members(groups["purchase"]) == {ann.pk, bob.pk}  # bob: not evaluated there, still stale
    assert members(groups["check_in"]) == {ann.pk, bob.pk}  # ann: likewise

    # Beyond four kinds of customers in one write, every customer is evaluated in every group any
    # of them can change, so the write stays a few statements.
    pairs = list(zip(customers, names, strict=True))
    Event.objects.bulk_create(Event(customer=customer, name=name, occurred_at=now) for customer, name in pairs)
    assert {name: members(group) for name, group in groups.items()} == {name: {c.pk} for c, name in pairs}


def test_customer_writes_use_the_groups_as_they_are_now():
    group = make_group("Customers", CUSTOMERS)
    alice = Customer.objects.create(role="customer", email="")
    assert members(group) == {alice.pk}  # the active groups are now compiled and kept

    # Changed by hand, without a new rule version, and a group added: the next write sees both.
    CustomerGroup.objects.filter(pk=group.pk).update(rules={"field": "role", "op": "eq", "value": "staff"})
    no_email = make_group("No email", NO_EMAIL)
    alice.role = "staff"
    alice.save()
    assert members(group) == {alice.pk} and members(no_email) == {alice.pk}


def test_bulk_writes_announce_their_customers_once_per_transaction():
    group = make_group("Customers", CUSTOMERS)
    created = Customer.objects.bulk_create([Customer(email=f"{i}@example.com", role="customer") for i in range(50)])
    assert members(group) == {c.pk for c in created}
    Customer.objects.filter(pk__in=[c.pk for c in created[:10]]).update(role="staff")
    assert members(group) == {c.pk for c in created[10:]}
    assert replay(group) == members(group)


def test_a_large_scope_is_evaluated_in_parallel_chunks_with_one_change_each(settings):
    # Chunks of 250, 250 and 100 customers: the two larger take the staged path for large scopes,
    # the last the prepared statement of customer writes.
    settings.GROUPS_EVALUATION_CHUNK = 250
    settings.GROUPS_EVALUATION_WORKERS = 2
    customers_group = make_group("Customers", CUSTOMERS)
    no_email = make_group("Customers without email", {"all": [{"in_group": customers_group.pk}, NO_EMAIL]})
    created = Customer.objects.bulk_create(
        [Customer(role="customer" if i % 3 else "staff", email="" if i % 2 else f"{i}@example.com") for i in range(600)]
    )
    expected = {c.pk for c in created if c.role == "customer"}
    assert members(customers_group) == expected
    assert members(no_email) == {c.pk for c in created if c.pk in expected and not c.email}
    for group in (customers_group, no_email):
        assert replay(group) == members(group)
        assert MembershipChange.objects.filter(group=group).count() == len(members(group))

    leaving = [c.pk for c in created[:450]]
    Customer.objects.filter(pk__in=leaving).update(role="staff")
    assert members(customers_group) == expected - set(leaving)
    assert members(no_email) == {c.pk for c in created[450:] if c.pk in expected and not c.email}
    for group in (customers_group, no_email):
        assert replay(group) == members(group)
        group.refresh_from_db()
        assert group.member_count == len(members(group))


def test_groups_that_derive_the_same_values_share_them_and_each_decides_its_own_members(settings):
    # Both lower-case the role and type the tier; the event path computes each once per customer.
    staff = make_group("Staff", {"field": "role", "op": "eq", "value": "STAFF"})
    gold = {"field": "attributes.tier", "op": "eq", "value": "gold"}
    gold_staff = make_group("Gold staff", {"all": [{"field": "role", "op": "in", "value": ["staff", "vip"]}, gold]})
    not_gold = make_group("Not gold", {"field": "attributes.tier", "op": "neq", "value": "Gold"})
    catalogue = Catalogue.load()
    templates = [engine.template_of(g, catalogue, shared=True) for g in (staff, gold_staff, not_gold)]
    assert set(templates[0].values) < set(templates[1].values) and set(templates[2].values) < set(templates[1].values)

    people = [("Staff", {"tier": "GOLD"}), ("vip", {"tier": "gold"}), ("staff", {"tier": 1}), ("customer", {})] * 60
    # In chunks of 4, each a write's prepared statement; then 240 at once, the staged path of larger scopes.
    for chunk in (4, 250):
        settings.GROUPS_EVALUATION_CHUNK = chunk
        Customer.objects.all().delete()
        created = [c.pk for c in Customer.objects.bulk_create([Customer(role=r, attributes=a) for r, a in people])]
        engine.evaluate_active(created)
        assert members(staff) == set(created[0::4] + created[2::4])
        assert members(gold_staff) == set(created[0::4] + created[1::4])
        assert members(not_gold) == set(created[2::4] + created[3::4])


def test_inactive_group_holds_nobody_and_activation_refreshes_at_once():
    group = make_group("Customers", CUSTOMERS)
    alice = Customer.objects.create(email="alice@example.com", role="customer")
    assert members(group) == {alice.pk}

    services.set_active(group, False)
    assert members(group) == set()
    assert MembershipChange.objects.filter(group=group, change="removed", reason="deactivation").exists()
    Customer.objects.create(email="bob@example.com", role="customer")
    assert members(group) == set()  # inactive groups are skipped on the event path

    run = services.set_active(group, True)
    assert run.reason == "activation" and run.added == 2
    assert len(members(group)) == 2
    assert replay(group) == members(group)


def test_dependants_follow_the_groups_they_read():
    customers = make_group("Customers", CUSTOMERS)
    no_email_customers = make_group("Customers without email", {"all": [{"in_group": customers.pk}, NO_EMAIL]})
    not_customers = make_group("Not customers", {"not": {"in_group": customers.pk}})
    alice = Customer.objects.create(role="customer")
    assert members(no_email_customers) == {alice.pk} and members(not_customers) == set()

    alice.role = "staff"
    alice.save()
    assert members(customers) == set() and members(no_email_customers) == set()
    assert members(not_customers) == {alice.pk}

    # A refresh of the group read by others carries its changes to them ("dependency").
    with connection.cursor() as cursor:
        cursor.execute("UPDATE customers_customer SET role = 'customer' WHERE id = %s", [alice.pk])
    services.refresh(customers)
    assert members(no_email_customers) == {alice.pk} and members(not_customers) == set()
    assert MembershipChange.objects.filter(group=not_customers, reason="dependency", change="removed").exists()


def test_manual_groups_change_only_by_hand_with_history():
    group = CustomerGroup.objects.create(name="Hand picked", slug="hand-picked", kind="manual")
    reader = make_group("Reads hand picked", {"in_group": group.pk})
    a, b = Customer.objects.create(email="a@example.com"), Customer.objects.create(email="b@example.com")

    assert services.add_members(group, [a.pk, b.pk, a.pk]) == 2
    assert services.add_members(group, [a.pk]) == 0
    assert services.remove_members(group, [b.pk]) == 1
    assert members(group) == {a.pk} and members(reader) == {a.pk}
    assert list(MembershipChange.objects.filter(group=group).order_by("id").values_list("change", "reason")) == [
        ("added", "manual"),
        ("added", "manual"),
        ("removed", "manual"),
    ]
    group.refresh_from_db()
    assert group.member_count == 1
    assert services.refresh(group).status == "skipped"
    with pytest.raises(ValueError, match="dynamic group"):
        services.add_members(reader, [b.pk])


def test_history_of_a_manual_edit_says_who_made_it_and_of_a_rule_change_says_no_one(staff_user):
    group = CustomerGroup.objects.create(name="Hand picked", slug="hand-picked", kind="manual")
    reader = make_group("Reads hand picked", {"in_group": group.pk})
    a, b = Customer.objects.create(email="a@example.com"), Customer.objects.create(email="b@example.com")

    services.add_members(group, [a.pk, b.pk], initiated_by=staff_user)
    services.remove_members(group, [b.pk], initiated_by=staff_user)
    services.add_members(group, [b.pk])  # by the system: no one to record

    rows = MembershipChange.objects.filter(group=group).order_by("id")
    assert [(r.customer_id, r.change, r.initiated_by_id) for r in rows] == [
        (a.pk, "added", staff_user.pk),
        (b.pk, "added", staff_user.pk),
        (b.pk, "removed", staff_user.pk),
        (b.pk, "added", None),
    ]
    # The dependant's changes were made by its rules, whoever edited the group it reads.
    assert set(MembershipChange.objects.filter(group=reader).values_list("initiated_by", flat=True)) == {None}
    assert all(r.xact_id is not None for r in rows)


def test_members_at_a_past_moment_come_from_history():
    group = make_group("Customers", CUSTOMERS)
    alice = Customer.objects.create(email="alice@example.com", role="customer")
    after_alice_joined = timezone.now()
    bob = Customer.objects.create(email="bob@example.com", role="customer")
    alice.role = "staff"
    alice.save()

    assert services.members_at(group, after_alice_joined) == [alice.pk]
    assert services.members_at(group, timezone.now()) == [bob.pk]
    assert services.members_at(group, after_alice_joined - timedelta(days=1)) == []


def test_event_path_statement_count_does_not_grow_with_groups():
    customer = Customer.objects.create(email="a@example.com", role="customer")
    counts = []
    for total in (5, 40):
        while CustomerGroup.objects.count() < total:
            n = CustomerGroup.objects.count()
            make_group(f"G{n}", {"any": [CUSTOMERS, {"event": "purchase", "window": {"last": {"days": 30}}}]})
        with CaptureQueriesContext(connection) as queries:
            customer.save()
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_a_group_whose_stored_rules_do_not_compile_does_not_stop_customer_writes():
    good = make_group("Customers", CUSTOMERS)
    broken = make_group("Broken", NO_EMAIL)
    # A hand edit in the database that skipped validation.
    CustomerGroup.objects.filter(pk=broken.pk).update(rules={"field": "no_such_field", "op": "is_empty"})

    customer = Customer.objects.create(email="a@example.com", role="customer")

    assert members(good) == {customer.pk}
    broken.refresh_from_db()
    assert broken.last_run_status == "failed" and "no_such_field" in broken.last_error
