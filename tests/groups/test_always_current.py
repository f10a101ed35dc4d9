"""Always-current groups: members enter and leave by time alone within one sweep of the true moment,
across each kind of boundary, daylight-saving changes in both hemispheres, 29 February, month and
year ends. The true moment of each case is checked against the independent evaluator of rules.md."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest

from customers.models import AttributeDefinition, Customer, Event
from groups import always_current, services
from groups.models import CustomerDue, CustomerGroup, MembershipChange, Reason

from .history import members, replay
from .rules import oracle

pytestmark = pytest.mark.django_db(transaction=True)

UTC = dt.UTC
MINUTE = dt.timedelta(minutes=1)
DECLARED = {"renewal": "date", "last_login": "datetime"}


def utc(*parts) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def local(zone: str, *parts) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=zoneinfo.ZoneInfo(zone)).astimezone(UTC)


def check_in(when: dt.datetime) -> dict:
    return {"name": "check_in", "occurred_at": when}


# (case, zone, rules, customer, when staff look, the true moment of the change)
CASES = [
    (
        "a rolling window of days straddling the spring-forward in Paris",
        "Europe/Paris",
        {"event": "check_in", "window": {"last": {"days": 7}}},
        {"events": [check_in(local("Europe/Paris", 2024, 3, 28, 12))]},
        utc(2024, 3, 29, 10),
        local("Europe/Paris", 2024, 4, 4, 12) + dt.timedelta(microseconds=1),
    ),
    (
        "a rolling day ending in the hour Sydney repeats when summer time ends",
        "Australia/Sydney",
        {"event": "check_in", "window": {"last": {"days": 1}}},
        {"events": [check_in(local("Australia/Sydney", 2024, 4, 6, 2, 30))]},
        utc(2024, 4, 6, 0),
        # The first of the two 02:30s of 7 April, in summer time (UTC+11).
        utc(2024, 4, 6, 15, 30, 0, 1),
    ),
    (
        "a rolling window of hours",
        "UTC",
        {"event": "check_in", "window": {"last": {"hours": 5}}, "count": {"op": "gte", "value": 1}},
        {"events": [check_in(utc(2024, 6, 1, 10))]},
        utc(2024, 6, 1, 11),
        utc(2024, 6, 1, 15, 0, 0, 1),
    ),
    (
        "an event recorded ahead of time entering its window",
        "Europe/Paris",
        {"event": "check_in", "window": {"last": {"days": 30}}},
        {"events": [check_in(utc(2024, 6, 1, 12, 7, 30))]},
        utc(2024, 6, 1, 10),
        utc(2024, 6, 1, 12, 7, 30),
    ),
    (
        "a datetime within the last 2 days across the fall-back in New York",
        "America/New_York",
        {"field": "attributes.last_login", "op": "within_last", "value": {"days": 2}},
        {"attributes": {"last_login": "2024-11-02T12:00:00-04:00"}},
        utc(2024, 11, 3, 12),
        local("America/New_York", 2024, 11, 4, 12) + dt.timedelta(microseconds=1),
    ),
    (
        "a datetime more than 60 days ago",
        "Europe/Paris",
        {"field": "attributes.last_login", "op": "more_than_ago", "value": {"days": 60}},
        {"attributes": {"last_login": "2024-05-01T09:14:00+02:00"}},
        utc(2024, 6, 29, 12),
        local("Europe/Paris", 2024, 6, 30, 9, 14) + dt.timedelta(microseconds=1),
    ),
    (
        "a date within the next 0 days at the year end in Auckland",
        "Pacific/Auckland",
        {"field": "attributes.renewal", "op": "within_next", "value": {"days": 0}},
        {"attributes": {"renewal": "2024-12-31"}},
        utc(2024, 12, 31, 5),
        local("Pacific/Auckland", 2025, 1, 1),
    ),
    (
        "a date more than 30 days ago, across 29 February and the month end",
        "Europe/Paris",
        {"field": "attributes.renewal", "op": "more_than_ago", "value": {"days": 30}},
        {"attributes": {"renewal": "2024-01-31"}},
        utc(2024, 2, 28, 12),
        local("Europe/Paris", 2024, 3, 2),
    ),
    (
        "a birthday on 29 February coming within 7 days in a year without it",
        "America/Sao_Paulo",
        {"field": "birthdate", "op": "anniversary_within_next", "value": {"days": 7}},
        {"fields": {"birthdate": dt.date(1992, 2, 29)}},
        utc(2025, 2, 20, 12),
        local("America/Sao_Paulo", 2025, 2, 22),
    ),
    (
        "a birthday on 29 February passing on 1 March in a year without it",
        "America/Sao_Paulo",
        {"field": "birthdate", "op": "anniversary_within_next", "value": {"days": 7}},
        {"fields": {"birthdate": dt.date(1992, 2, 29)}},
        utc(2025, 2, 28, 12),
        local("America/Sao_Paulo", 2025, 3, 2),
    ),
    (
        "this month's purchases at the month end in Auckland",
        "Pacific/Auckland",
        {"event": "purchase", "window": {"calendar": "this_month"}},
        {"events": [{"name": "purchase", "occurred_at": local("Pacific/Auckland", 2024, 1, 31, 10)}]},
        utc(2024, 1, 31, 0),
        local("Pacific/Auckland", 2024, 2, 1),
    ),
    (
        "last year's purchases at the year end",
        "UTC",
        {
            "event": "purchase",
            "window": {"calendar": "last_year"},
            "sum": {"property": "amount", "op": "gte", "value": 9},
        },
        {"events": [{"name": "purchase", "occurred_at": utc(2023, 6, 1), "amount": Decimal("9.50")}]},
        utc(2024, 12, 31, 20),
        utc(2025, 1, 1),
    ),
]


def declare_attributes() -> None:
    for key, type_ in DECLARED.items():
        AttributeDefinition.objects.get_or_create(entity="customer", key=key, defaults={"type": type_})


def always_current_group(rules: dict, zone: str) -> CustomerGroup:
    group = CustomerGroup.objects.create(
        name="Timed", slug="timed", rules=rules, time_zone=zone, refresh_mode=CustomerGroup.RefreshMode.ALWAYS_CURRENT
    )
    services.fill_new_group(group)
    return group


def holds(rules: dict, spec: dict, zone: str, now: dt.datetime) -> bool:
    person = oracle.CustomerData(
        fields={"role": "", "email": "", **spec.get("fields", {})},
        attributes=spec.get("attributes", {}),
        events=[oracle.EventData(e["name"], e["occurred_at"], e.get("amount")) for e in spec.get("events", [])],
    )
    world = oracle.World(now=now, tz=zoneinfo.ZoneInfo(zone), customer_attributes=DECLARED, account_attributes={})
    return oracle.holds(rules, person, world)


def sweep_at(time_machine, moment: dt.datetime) -> always_current.Sweep:
    time_machine.move_to(moment, tick=False)
    return always_current.sweep()


def next_sweep(moment: dt.datetime) -> dt.datetime:
    """The first minute-sweep at or after a moment."""
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + MINUTE


@pytest.mark.parametrize(("zone", "rules", "spec", "start", "true_moment"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])  # fmt: skip
def test_a_member_enters_or_leaves_within_one_sweep_of_the_true_moment(
    time_machine, zone, rules, spec, start, true_moment
):
    before = holds(rules, spec, zone, true_moment - dt.timedelta(microseconds=1))
    assert holds(rules, spec, zone, true_moment) is not before, "the case's true moment is not a change"
    assert holds(rules, spec, zone, start) is before
    declare_attributes()
    time_machine.move_to(start, tick=False)
    group = always_current_group(rules, zone)
    customer = Customer.objects.create(attributes=spec.get("attributes", {}), **spec.get("fields", {}))
    for event in spec.get("events", []):
        Event.objects.create(customer=customer, **event)
    assert (customer.pk in members(group)) is before

    sweep_at(time_machine, next_sweep(true_moment) - MINUTE)
    assert (customer.pk in members(group)) is before
    due = CustomerDue.objects.filter(customer=customer).values_list("due_at", flat=True).first()
    group.refresh_from_db()
    # Never late: the customer is due, or the group refreshed whole, no later than the true moment.
    assert (due is not None and due <= true_moment) or group.next_boundary_at == true_moment

    sweep_at(time_machine, next_sweep(true_moment))
    assert (customer.pk in members(group)) is not before
    change = MembershipChange.objects.filter(group=group, customer=customer).latest("changed_at", "id")
    assert (change.change, change.reason) == ("removed" if before else "added", Reason.TIME)
    assert replay(group) == members(group)


def test_an_event_brings_the_due_time_forward_and_the_sweep_sets_it_exactly(time_machine):
    time_machine.move_to(utc(2024, 6, 10, 12), tick=False)
    group = always_current_group({"event": "check_in", "window": {"last": {"days": 30}}}, "UTC")
    customer = Customer.objects.create(email="ana@example.com")
    assert not CustomerDue.objects.filter(customer=customer).exists()  # time alone changes nothing for her
    Event.objects.create(customer=customer, name="check_in", occurred_at=utc(2024, 6, 1, 9))
    Event.objects.create(customer=customer, name="check_in", occurred_at=utc(2024, 6, 5, 9))
    assert CustomerDue.objects.get(customer=customer).due_at == utc(2024, 7, 1, 9, 0, 0, 1)

    sweep_at(time_machine, utc(2024, 7, 1, 9, 1))
    # Still a member through the second check-in, due when that one leaves the window.
    assert customer.pk in members(group)
    assert CustomerDue.objects.get(customer=customer).due_at == utc(2024, 7, 5, 9, 0, 0, 1)

    sweep_at(time_machine, utc(2024, 7, 5, 9, 1))
    assert customer.pk not in members(group)
    assert not CustomerDue.objects.filter(customer=customer).exists()


def test_customers_of_groups_that_are_not_always_current_are_never_due(time_machine):
    time_machine.move_to(utc(2024, 6, 10, 12), tick=False)
    group = CustomerGroup.objects.create(
        name="Visited", slug="visited", rules={"event": "check_in", "window": {"last": {"days": 30}}}
    )
    customer = Customer.objects.create(email="ana@example.com")
    Event.objects.create(customer=customer, name="check_in", occurred_at=utc(2024, 6, 1, 9))
    assert customer.pk in members(group)
    assert not CustomerDue.objects.exists()


def test_a_group_made_always_current_is_refreshed_whole_by_the_next_sweep(time_machine):
    time_machine.move_to(utc(2024, 6, 10, 12), tick=False)
    group = CustomerGroup.objects.create(
        name="Visited", slug="visited", rules={"event": "check_in", "window": {"last": {"days": 30}}}
    )
    customer = Customer.objects.create(email="ana@example.com")
    Event.objects.create(customer=customer, name="check_in", occurred_at=utc(2024, 6, 1, 9))
    group.refresh_from_db()
    group.refresh_mode = CustomerGroup.RefreshMode.ALWAYS_CURRENT
    group.save(update_fields=["refresh_mode"])

    assert sweep_at(time_machine, utc(2024, 6, 10, 12, 1)).refreshed == 1
    assert CustomerDue.objects.get(customer=customer).due_at == utc(2024, 7, 1, 9, 0, 0, 1)
    assert sweep_at(time_machine, utc(2024, 6, 10, 12, 2)).refreshed == 0
    sweep_at(time_machine, utc(2024, 7, 1, 9, 1))
    assert customer.pk not in members(group)


def test_a_large_batch_writes_due_times_in_its_staged_statement(time_machine):
    from groups import engine

    time_machine.move_to(utc(2024, 6, 10, 12), tick=False)
    always_current_group({"event": "check_in", "window": {"last": {"days": 30}}}, "UTC")
    people = Customer.objects.bulk_create(Customer(email=f"c{i}@example.com") for i in range(engine.PREPARED_BATCH + 5))
    # One batch of check-ins for all of them: more customers than the prepared statement takes.
    Event.objects.bulk_create(Event(customer=c, name="check_in", occurred_at=utc(2024, 6, 1, 9)) for c in people)
    services.evaluate_customers([c.pk for c in people])
    assert set(CustomerDue.objects.values_list("due_at", flat=True)) == {utc(2024, 7, 1, 9, 0, 0, 1)}
    assert CustomerDue.objects.count() == len(people)


def test_the_sweep_runs_every_minute_on_beat():
    from config.celery import app
    from groups.tasks import sweep_always_current

    entry = app.conf.beat_schedule["groups.sweep_always_current"]
    assert entry == {"task": sweep_always_current.name, "schedule": 60.0}
