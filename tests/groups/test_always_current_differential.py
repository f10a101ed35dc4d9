"""Differential test of always-current groups: frozen time advances to random later moments, the sweep
runs at each, and the group's members are those the independent evaluator of rules.md
(tests/groups/rules/oracle.py) selects at that moment. Before each move, every customer whose result
will differ at the next moment must be due by then (or the group refreshed whole by then).

The rules are drawn from what changes with time (rolling and calendar windows, dates and datetimes
compared with now, anniversaries), combined with all / any / not, over customers whose data lies
around the starting moment, so that results really change between the moments."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
import time_machine

from customers.models import AttributeDefinition
from groups import always_current, services
from groups.models import CustomerDue, CustomerGroup, Reason

from .history import members, replay
from .rules import oracle
from .rules.test_property import ACCOUNT_DECLARED, CUSTOMER_DECLARED, NOWS, ZONES, store
from .test_engine_differential import expected_members

CALENDARS = ["today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_year", "last_year"]


def duration(rng: random.Random, units=("days", "weeks", "hours")) -> dict:
    unit = rng.choice(units)
    return {unit: rng.randint(0, {"days": 40, "weeks": 6, "hours": 72}[unit])}


def leaf(rng: random.Random) -> dict:
    kind = rng.choice(["rolling", "rolling", "calendar", "date", "datetime", "anniversary"])
    if kind in ("rolling", "calendar"):
        rule = {"event": rng.choice(["check_in", "purchase"])}
        rule["window"] = {"last": duration(rng)} if kind == "rolling" else {"calendar": rng.choice(CALENDARS)}
        if rng.random() < 0.4:
            rule["count"] = {"op": rng.choice(["gte", "eq", "lt", "lte"]), "value": rng.randint(0, 3)}
        elif rng.random() < 0.2:
            rule["sum"] = {"property": "amount", "op": "gte", "value": rng.choice([1, 10, 50])}
        return rule
    if kind == "anniversary":
        return {
            "field": "birthdate",
            "op": "anniversary_within_next",
            "value": {"days": rng.choice([0, 1, 7, 30, 365])},
        }
    op = rng.choice(["within_last", "more_than_ago", "within_next"])
    if kind == "date":
        return {
            "field": rng.choice(["birthdate", "attributes.renewal"]),
            "op": op,
            "value": duration(rng, ("days", "weeks")),
        }
    return {"field": rng.choice(["created_at", "attributes.last_login"]), "op": op, "value": duration(rng)}


def rules(rng: random.Random, depth: int = 0) -> dict:
    if depth >= 2 or rng.random() < 0.4:
        return leaf(rng)
    shape = rng.choice(["all", "any", "not"])
    if shape == "not":
        return {"not": rules(rng, depth + 1)}
    return {shape: [rules(rng, depth + 1) for _ in range(rng.randint(1, 3))]}


def instant(rng: random.Random, now: dt.datetime, tz) -> dt.datetime:
    """Around now, often on the edges rules care about: local midnights and whole days or hours ago."""
    offset = rng.randint(-45, 45)
    wiggle = dt.timedelta(seconds=rng.choice([0, 0, -1, 1, 3600, 43200, rng.randint(0, 86400)]))
    kind = rng.choice(["midnight", "wall", "hours"])
    if kind == "midnight":
        base = dt.datetime.combine(now.astimezone(tz).date() + dt.timedelta(days=offset), dt.time.min, tzinfo=tz)
    elif kind == "wall":
        base = (now.astimezone(tz).replace(tzinfo=None) + dt.timedelta(days=offset)).replace(tzinfo=tz)
    else:
        base = now + dt.timedelta(hours=offset)
    return (base + wiggle).astimezone(dt.UTC)


def day(rng: random.Random, now: dt.datetime, tz) -> dt.date:
    if rng.random() < 0.2:
        return rng.choice([dt.date(1992, 2, 29), dt.date(1999, 3, 1), dt.date(2001, 2, 28)])
    near = now.astimezone(tz).date() + dt.timedelta(days=rng.randint(-45, 45))
    return near.replace(year=1992) if rng.random() < 0.3 else near


def person(rng: random.Random, now: dt.datetime, tz) -> oracle.CustomerData:
    attributes = {}
    if rng.random() < 0.8:
        attributes["renewal"] = day(rng, now, tz).isoformat()
    if rng.random() < 0.8:
        attributes["last_login"] = instant(rng, now, tz).isoformat()
    events = [
        oracle.EventData(
            name=rng.choice(["check_in", "purchase"]),
            occurred_at=instant(rng, now, tz),
            amount=Decimal(rng.choice(["2.50", "10", "60"])),
        )
        for _ in range(rng.randint(0, 4))
    ]
    birthdate = day(rng, now, tz) if rng.random() < 0.8 else None
    fields = {"role": "", "email": "", "external_id": None, "email_consent": False, "birthdate": birthdate,
              "created_at": instant(rng, now, tz)}  # fmt: skip
    return oracle.CustomerData(fields=fields, attributes=attributes, events=events)


def step(rng: random.Random) -> dt.timedelta:
    return rng.choice([
        dt.timedelta(minutes=rng.randint(1, 180)),
        dt.timedelta(hours=rng.randint(1, 72)),
        dt.timedelta(days=rng.randint(1, 60), minutes=rng.randint(0, 1439)),
    ])  # fmt: skip


def assert_due_in_time(group, ids, people, doc, tz, now, later) -> None:
    """Never late: a customer whose result differs at `later` is due by then, or the group is."""
    group.refresh_from_db()
    if group.next_boundary_at is not None and group.next_boundary_at <= later:
        return
    changing = expected_members(doc, ids, people, now, tz) ^ expected_members(doc, ids, people, later, tz)
    due = dict(CustomerDue.objects.filter(customer_id__in=ids).values_list("customer_id", "due_at"))
    for customer_id in changing:
        assert customer_id in due and due[customer_id] <= later, (customer_id, due.get(customer_id), now, later, doc)


@pytest.mark.django_db
@pytest.mark.parametrize("seed", range(60))
def test_always_current_groups_agree_with_the_rules_at_random_later_moments(seed):
    rng = random.Random(seed)
    for entity, declared in (("customer", CUSTOMER_DECLARED), ("account", ACCOUNT_DECLARED)):
        for key, type_ in declared.items():
            AttributeDefinition.objects.create(entity=entity, key=key, type=type_)
    now, tz = rng.choice(NOWS), rng.choice(ZONES)
    doc = rules(rng)
    people = [person(rng, now, tz) for _ in range(rng.randint(1, 6))]
    ids = store(people, now)
    group = CustomerGroup.objects.create(
        name="Timed", slug="timed", rules=doc, time_zone=tz.key, refresh_mode=CustomerGroup.RefreshMode.ALWAYS_CURRENT
    )
    with time_machine.travel(now, tick=False):
        services.refresh(group, reason=Reason.RULE_CHANGE)
    assert members(group) == expected_members(doc, ids, people, now, tz)
    moment = now
    for _ in range(5):
        later = moment + step(rng)
        assert_due_in_time(group, ids, people, doc, tz, moment, later)
        with time_machine.travel(later, tick=False):
            always_current.sweep()
        moment = later
        assert members(group) == expected_members(doc, ids, people, moment, tz), (moment, doc)
    assert replay(group) == members(group)
