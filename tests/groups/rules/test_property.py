"""Random valid documents over random customers: the compiled SQL selects exactly whom the oracle selects."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.models import Account, AccountMembership, Customer, Event
from groups.models import Membership
from groups.rules import Catalogue, compile_rules, describe_rules, explain_rules, validate_rules

from . import oracle
from .conftest import make_group

CUSTOMER_DECLARED = {"tier": "text", "score": "number", "vip": "boolean", "renewal": "date", "last_login": "datetime"}
ACCOUNT_DECLARED = {"plan": "text", "seats": "number"}
CATALOGUE = Catalogue(customer=CUSTOMER_DECLARED, account=ACCOUNT_DECLARED)

# The rule language's operator table, restated here rather than imported so the test stays independent.
OPS = {
    "text": [
        "is_empty",
        "is_not_empty",
        "eq",
        "neq",
        "in",
        "not_in",
        "contains",
        "not_contains",
        "starts_with",
        "ends_with",
    ],
    "number": ["is_empty", "is_not_empty", "eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "between"],
    "boolean": ["is_empty", "is_not_empty", "eq", "neq", "is_true", "is_false"],
    "date": [
        "is_empty",
        "is_not_empty",
        "before",
        "after",
        "on",
        "between",
        "within_last",
        "more_than_ago",
        "within_next",
        "anniversary_within_next",
    ],
    "datetime": [
        "is_empty",
        "is_not_empty",
        "before",
        "after",
        "on",
        "between",
        "within_last",
        "more_than_ago",
        "within_next",
    ],
    "json": [
        "is_empty",
        "is_not_empty",
        "eq",
        "neq",
        "in",
        "not_in",
        "contains",
        "not_contains",
        "starts_with",
        "ends_with",
        "gt",
        "gte",
        "lt",
        "lte",
        "between",
        "is_true",
        "is_false",
    ],
}
CUSTOMER_FIELDS = {
    "role": "text",
    "email": "text",
    "external_id": "text",
    "birthdate": "date",
    "created_at": "datetime",
    "email_consent": "boolean",
    "attributes.tier": "text",
    "attributes.score": "number",
    "attributes.vip": "boolean",
    "attributes.renewal": "date",
    "attributes.last_login": "datetime",
    "attributes.color": "json",
    "attributes.size": "json",
}
ACCOUNT_FIELDS = {
    "name": "text",
    "kind": "text",
    "created_at": "datetime",
    "attributes.plan": "text",
    "attributes.seats": "number",
    "attributes.region": "json",
}

NOWS = [
    dt.datetime(2024, 3, 31, 10, 0, tzinfo=dt.UTC),  # Paris springs forward that morning
    dt.datetime(2024, 10, 27, 0, 30, tzinfo=dt.UTC),  # Paris falls back in half an hour
    dt.datetime(2024, 2, 29, 23, 30, tzinfo=dt.UTC),  # already 1 March in Paris and Sydney
    dt.datetime(2024, 12, 31, 23, 30, tzinfo=dt.UTC),  # already next year east of UTC
    dt.datetime(2023, 3, 1, 8, 0, tzinfo=dt.UTC),  # 1 March in a year without 29 February
    dt.datetime(2024, 11, 3, 6, 30, tzinfo=dt.UTC),  # New York falls back
]
ZONES = [zoneinfo.ZoneInfo(name) for name in ("UTC", "Europe/Paris", "America/New_York", "Australia/Sydney")]

TEXT_OPERANDS = ["gold", "GOLD", "silver", "tea", "Chinese tea", "a", "x"]
TEXT_DATA = ["", "gold", "Gold", "silver", "Chinese Tea", "green tea", "a", "xa", "GOLDEN"]
NUMBERS = [0, 1, 2.5, 10, -3, 100, 9.99]
EVENT_NAMES = ["purchase", "check_in"]


def local_day(now: dt.datetime, tz: zoneinfo.ZoneInfo, offset: int) -> dt.date:
    return now.astimezone(tz).date() + dt.timedelta(days=offset)


@st.composite
def instants(draw, now, tz):
    """Instants around now, biased to the edges rules care about: local midnights and exact durations ago."""
    kind = draw(st.sampled_from(["midnight", "wall", "hours"]))
    wiggle = dt.timedelta(seconds=draw(st.sampled_from([0, 0, -1, 1, 3600, 43200])))
    offset = draw(st.integers(-45, 45))
    if kind == "midnight":
        base = dt.datetime.combine(local_day(now, tz, offset), dt.time.min, tzinfo=tz)
    elif kind == "wall":
        local = now.astimezone(tz).replace(tzinfo=None) + dt.timedelta(days=offset)
        base = local.replace(tzinfo=tz)
    else:
        base = now + dt.timedelta(hours=offset * 3)
    return (base + wiggle).astimezone(dt.UTC)


@st.composite
def days(draw, now, tz):
    kind = draw(st.sampled_from(["near", "anniversary", "leap"]))
    if kind == "leap":
        return draw(st.sampled_from([dt.date(2000, 2, 29), dt.date(1999, 3, 1), dt.date(2001, 2, 28)]))
    day = local_day(now, tz, draw(st.integers(-40, 40)))
    if kind == "anniversary":
        return day.replace(year=1992)  # a leap year, so 29 February survives
    return day


def day_text(now, tz):
    return days(now, tz).map(dt.date.isoformat)


def durations(units):
    return st.builds(lambda unit, n: {unit: n}, st.sampled_from(units), st.integers(0, 40))


def operands(type_, op, now, tz):
    text = st.sampled_from(TEXT_OPERANDS)
    number = st.sampled_from(NUMBERS)
    if op in ("eq", "neq"):
        return {
            "text": text,
            "number": number,
            "boolean": st.booleans(),
            "json": st.one_of(text, number, st.booleans()),
        }[type_]
    if op in ("in", "not_in"):
        item = {"text": text, "number": number, "json": st.one_of(text, number)}[type_]
        return st.lists(item, min_size=1, max_size=3)
    if op in ("contains", "not_contains", "starts_with", "ends_with"):
        return text
    if op in ("gt", "gte", "lt", "lte"):
        return number
    if op == "between" and type_ in ("number", "json"):
        return st.lists(number, min_size=2, max_size=2).map(sorted)
    if op in ("before", "after", "on"):
        return day_text(now, tz)
    if op == "between":
        return st.lists(days(now, tz), min_size=2, max_size=2).map(lambda pair: [d.isoformat() for d in sorted(pair)])
    if op in ("within_last", "more_than_ago", "within_next"):
        return durations(["days", "weeks"] if type_ == "date" else ["days", "weeks", "hours"])
    if op == "anniversary_within_next":
        return st.sampled_from([0, 1, 7, 30, 365, 366]).map(lambda n: {"days": n})
    return st.none()


@st.composite
def field_conditions(draw, fields, now, tz):
    name = draw(st.sampled_from(sorted(fields)))
    type_ = fields[name]
    op = draw(st.sampled_from(OPS[type_]))
    rule = {"field": name, "op": op}
    if op not in ("is_empty", "is_not_empty", "is_true", "is_false"):
        rule["value"] = draw(operands(type_, op, now, tz))
    return rule


@st.composite
def where_items(draw, now, tz):
    prop = draw(st.sampled_from(["amount", "category", "qty"]))
    type_ = "number" if prop == "amount" else "json"
    op = draw(st.sampled_from(OPS[type_]))
    item = {"property": prop, "op": op}
    if op not in ("is_empty", "is_not_empty", "is_true", "is_false"):
        item["value"] = draw(operands(type_, op, now, tz))
    return item


@st.composite
def event_conditions(draw, now, tz):
    rule = {"event": draw(st.sampled_from(EVENT_NAMES))}
    where = draw(st.lists(where_items(now, tz), max_size=2))
    if where:
        rule["where"] = where
    window = draw(
        st.one_of(
            st.none(),
            durations(["days", "weeks", "hours"]).map(lambda d: {"last": d}),
            st.sampled_from(
                ["today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_year", "last_year"]
            ).map(lambda name: {"calendar": name}),
            st.lists(days(now, tz), min_size=2, max_size=2).map(
                lambda pair: {"between": [d.isoformat() for d in sorted(pair)]}
            ),
        )
    )
    if window:
        rule["window"] = window
    aggregate_ops = ["eq", "neq", "gt", "gte", "lt", "lte", "between"]
    aggregate = draw(st.sampled_from(["none", "count", "sum"]))
    if aggregate != "none":
        op = draw(st.sampled_from(aggregate_ops))
        bound = st.integers(0, 3) if aggregate == "count" else st.sampled_from([0, 1, 10, 50.5, 100])
        value = draw(st.lists(bound, min_size=2, max_size=2).map(sorted) if op == "between" else bound)
        rule[aggregate] = {"op": op, "value": value}
        if aggregate == "sum":
            rule["sum"] = {"property": draw(st.sampled_from(["amount", "qty"])), **rule["sum"]}
    return rule


def booleans_of(children):
    # Empty all/any are leaves (see EMPTY_BOOLEANS), so every node built here really nests its children.
    return st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda rules: {"all": rules}),
        st.lists(children, min_size=1, max_size=3).map(lambda rules: {"any": rules}),
        children.map(lambda rule: {"not": rule}),
    )


EMPTY_BOOLEANS = st.sampled_from([{"all": []}, {"any": []}])


def documents(now, tz, group_ids):
    account_rules = st.recursive(
        st.one_of(field_conditions(ACCOUNT_FIELDS, now, tz), EMPTY_BOOLEANS), booleans_of, max_leaves=3
    )
    leaves = st.one_of(
        EMPTY_BOOLEANS,
        field_conditions(CUSTOMER_FIELDS, now, tz),
        event_conditions(now, tz),
        account_rules.map(lambda rule: {"account": rule}),
        st.just({"account": {"all": []}}),
        st.sampled_from(group_ids).map(lambda gid: {"in_group": gid}),
    )
    return st.recursive(leaves, booleans_of, max_leaves=6)


def json_values():
    return st.one_of(
        st.sampled_from(TEXT_DATA), st.sampled_from(NUMBERS), st.booleans(), st.none(), st.just([1]), st.just({"a": 1})
    )


def maybe_missing(strategy):
    return st.one_of(st.just(oracle.MISSING), strategy)


@st.composite
def customers(draw, now, tz, group_ids, index):
    instant = instants(now, tz)
    fields = {
        "role": draw(st.sampled_from(TEXT_DATA)),
        "email": draw(st.sampled_from(TEXT_DATA)),
        "external_id": draw(st.one_of(st.none(), st.sampled_from(TEXT_DATA[1:]).map(lambda t: f"{t}{index}"))),
        "birthdate": draw(st.one_of(st.none(), days(now, tz))),
        "created_at": draw(instant),
        "email_consent": draw(st.booleans()),
    }
    attribute_values = {
        "tier": st.one_of(st.sampled_from(TEXT_DATA), st.none(), st.just(5)),
        "score": st.one_of(st.sampled_from(NUMBERS), st.none(), st.just("10"), st.just("")),
        "vip": st.one_of(st.booleans(), st.none(), st.just("true")),
        "renewal": st.one_of(day_text(now, tz), st.none(), st.just(""), st.just("soon")),
        "last_login": st.one_of(instant.map(dt.datetime.isoformat), st.none(), st.just("later")),
        "color": json_values(),
        "size": json_values(),
    }
    attributes = {}
    for key, values in attribute_values.items():
        value = draw(maybe_missing(values))
        if value is not oracle.MISSING:
            attributes[key] = value
    events = [
        oracle.EventData(
            name=draw(st.sampled_from(EVENT_NAMES)),
            occurred_at=draw(instant),
            amount=draw(st.one_of(st.none(), st.sampled_from(NUMBERS).map(lambda n: Decimal(str(n))))),
            properties={
                key: value
                for key, value in (
                    ("category", draw(maybe_missing(st.one_of(st.sampled_from(TEXT_DATA), st.just(1), st.none())))),
                    ("qty", draw(maybe_missing(st.sampled_from([1, 2, "3", None, 2.5, True])))),
                )
                if value is not oracle.MISSING
            },
        )
        for _ in range(draw(st.integers(0, 4)))
    ]
    accounts = [
        oracle.AccountData(
            fields={
                "name": draw(st.sampled_from(TEXT_DATA)),
                "kind": draw(st.sampled_from(TEXT_DATA)),
                "external_id": None,
                "created_at": draw(instant),
            },
            attributes={
                key: value
                for key, value in (
                    ("plan", draw(maybe_missing(st.one_of(st.sampled_from(TEXT_DATA), st.none())))),
                    ("seats", draw(maybe_missing(st.one_of(st.sampled_from(NUMBERS), st.just("3"))))),
                    ("region", draw(maybe_missing(json_values()))),
                )
                if value is not oracle.MISSING
            },
        )
        for _ in range(draw(st.integers(0, 2)))
    ]
    groups = set(draw(st.lists(st.sampled_from(group_ids), max_size=2)))
    return oracle.CustomerData(fields=fields, attributes=attributes, events=events, accounts=accounts, groups=groups)


@st.composite
def examples(draw, group_ids):
    now = draw(st.sampled_from(NOWS))
    tz = draw(st.sampled_from(ZONES))
    doc = draw(documents(now, tz, group_ids))
    people = [draw(customers(now, tz, group_ids, index)) for index in range(draw(st.integers(1, 5)))]
    return now, tz, doc, people


def store(people: list[oracle.CustomerData], now: dt.datetime) -> list[int]:
    """Write the customers with bulk inserts and return their ids in order."""
    rows = Customer.objects.bulk_create(
        Customer(attributes=person.attributes, **{k: v for k, v in person.fields.items() if k != "created_at"})
        for person in people
    )
    for row, person in zip(rows, people, strict=True):
        row.created_at = person.fields["created_at"]
    Customer.objects.bulk_update(rows, ["created_at"])  # bulk_update leaves auto_now_add alone
    Event.objects.bulk_create(
        Event(customer=row, name=e.name, occurred_at=e.occurred_at, amount=e.amount, properties=e.properties)
        for row, person in zip(rows, people, strict=True)
        for e in person.events
    )
    pairs = [(row, account) for row, person in zip(rows, people, strict=True) for account in person.accounts]
    accounts = Account.objects.bulk_create(
        Account(name=a.fields["name"], kind=a.fields["kind"], attributes=a.attributes) for _, a in pairs
    )
    for stored, (_, account) in zip(accounts, pairs, strict=True):
        stored.created_at = account.fields["created_at"]
    Account.objects.bulk_update(accounts, ["created_at"])
    AccountMembership.objects.bulk_create(
        AccountMembership(customer=row, account=stored) for stored, (row, _) in zip(accounts, pairs, strict=True)
    )
    Membership.objects.bulk_create(
        Membership(group_id=gid, customer=row, added_at=now)
        for row, person in zip(rows, people, strict=True)
        for gid in person.groups
    )
    return [row.pk for row in rows]


@pytest.mark.django_db
def test_compiled_sql_selects_exactly_the_customers_the_oracle_selects():
    group_ids = [make_group("First").pk, make_group("Second").pk]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(examples(group_ids))
    def check(example):
        now, tz, doc, people = example
        assert validate_rules(doc, catalogue=CATALOGUE) == []
        assert describe_rules(doc, catalogue=CATALOGUE).startswith(("Customers ", "All customers", "No customers"))
        savepoint = transaction.savepoint()
        try:
            ids = store(people, now)
            sql, params = compile_rules(doc, now=now, tz=tz, catalogue=CATALOGUE)
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT c.id FROM customers_customer c WHERE {sql}", params)
                selected = {row[0] for row in cursor.fetchall()}
            world = oracle.World(
                now=now, tz=tz, customer_attributes=CUSTOMER_DECLARED, account_attributes=ACCOUNT_DECLARED
            )
            expected = {pk for pk, person in zip(ids, people, strict=True) if oracle.holds(doc, person, world)}
            assert selected == expected
            explained = explain_rules(doc, ids[0], now=now, tz=tz, catalogue=CATALOGUE)
            assert explained["holds"] is (ids[0] in expected)
        finally:
            transaction.savepoint_rollback(savepoint)

    check()
