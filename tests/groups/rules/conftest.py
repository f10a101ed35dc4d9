"""Shared cast for rule tests: a catalogue, a clock, and a way to run a compiled rule against customers."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.db import connection

from customers.models import Account, AccountMembership, Customer, Event
from groups.models import CustomerGroup, Membership
from groups.rules import Catalogue, compile_rules, validate_rules

UTC = dt.UTC
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
# Sunday 31 March 2024, noon in Paris: clocks went forward at 02:00 this morning.
NOW = dt.datetime(2024, 3, 31, 10, 0, tzinfo=UTC)

CATALOGUE = Catalogue(
    customer={"tier": "text", "score": "number", "vip": "boolean", "renewal": "date", "last_login": "datetime"},
    account={"plan": "text", "seats": "number", "renews_on": "date"},
)


def at(text: str) -> dt.datetime:
    """An aware instant from ISO 8601 text."""
    return dt.datetime.fromisoformat(text)


def assert_valid(rule: dict, catalogue: Catalogue = CATALOGUE) -> None:
    errors = validate_rules(
        rule, catalogue=catalogue, group_exists=lambda gid: True, group_dependencies=lambda gid: set()
    )
    assert errors == [], errors


def matching_ids(
    rule: dict, *, now: dt.datetime = NOW, tz: zoneinfo.ZoneInfo = PARIS, catalogue: Catalogue = CATALOGUE
) -> set[int]:
    sql, params = compile_rules(rule, now=now, tz=tz, catalogue=catalogue)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT c.id FROM customers_customer c WHERE {sql}", params)
        return {row[0] for row in cursor.fetchall()}


def event(name: str, when: str, amount: str | int | None = None, **properties) -> dict:
    return {
        "name": name,
        "occurred_at": at(when),
        "amount": None if amount is None else Decimal(str(amount)),
        "properties": properties,
    }


def make_customer(
    fields: dict | None = None, attributes: dict | None = None, events=(), accounts=(), groups=()
) -> Customer:
    fields = dict(fields or {})
    created_at = fields.pop("created_at", None)
    customer = Customer.objects.create(attributes=attributes or {}, **fields)
    if created_at is not None:
        # created_at is set on insert by the model; rules read it, so the tests set it afterwards.
        Customer.objects.filter(pk=customer.pk).update(created_at=created_at)
    Event.objects.bulk_create(Event(customer=customer, **spec) for spec in events)
    for spec in accounts:
        spec = dict(spec)
        account_created = spec.pop("created_at", None)
        account = Account.objects.create(**spec)
        if account_created is not None:
            Account.objects.filter(pk=account.pk).update(created_at=account_created)
        AccountMembership.objects.create(customer=customer, account=account)
    for group in groups:
        Membership.objects.create(group=group, customer=customer, added_at=NOW)
    return customer


def make_group(name: str = "VIP") -> CustomerGroup:
    return CustomerGroup.objects.create(name=name, slug=name.lower().replace(" ", "-"))


@pytest.fixture
def matches(db):
    """matches(rule, customer_spec, now=..., tz=...) -> does the compiled rule select that customer?"""

    def check(rule: dict, spec: dict | None = None, *, now: dt.datetime = NOW, tz=PARIS) -> bool:
        assert_valid(rule)
        customer = make_customer(**(spec or {}))
        return customer.pk in matching_ids(rule, now=now, tz=tz)

    return check
