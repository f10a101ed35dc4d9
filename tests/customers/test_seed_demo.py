"""`seed_demo` loads believable demo data and the example groups, and never loads them twice."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count
from django_celery_beat.models import PeriodicTask

from customers.models import Account, AccountMembership, AttributeDefinition, Customer, Event
from groups.models import CustomerGroup
from groups.rules import Catalogue, validate_rules
from groups.schedules import group_schedule_errors, task_name

pytestmark = pytest.mark.django_db

EXAMPLE_GROUPS = [
    "Customers", "Staff", "No email", "No birthdate", "Visited 3+ times", "Visited in last 30 days",
    "Lapsed 60 days", "Last month's VIPs", "Bought Chinese tea", "Household has active subscription",
]  # fmt: skip
TIME_BASED = ["Visited in last 30 days", "Lapsed 60 days", "Last month's VIPs"]
CONDITION_KEYS = {"field", "event", "account", "in_group"}


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def conditions(rule):
    """Every condition in a rules document, walking the Boolean nodes (which have exactly one key)."""
    if set(rule) & {"all", "any", "not"}:
        assert len(rule) == 1, rule
    if "all" in rule or "any" in rule:
        for child in rule.get("all", rule.get("any")):
            yield from conditions(child)
    elif "not" in rule:
        yield from conditions(rule["not"])
    else:
        yield rule


def test_seed_demo_creates_customers_accounts_events_and_attribute_definitions():
    output = seed(customers=120, seed=7)

    assert "120 customers" in output
    assert Customer.objects.count() == 120
    assert set(Customer.objects.values_list("role", flat=True)) >= {"customer", "staff"}
    assert Customer.objects.filter(email="").exists()
    assert Customer.objects.filter(birthdate__isnull=True).exists()
    assert Customer.objects.filter(birthdate__month=2, birthdate__day=29).exists()
    assert Customer.objects.filter(external_id__isnull=True).exists()
    assert Customer.objects.filter(attributes__has_key="tier").exists()

    assert Account.objects.filter(kind="household").exists()
    statuses = set(Account.objects.filter(kind="household").values_list("attributes__subscription_status", flat=True))
    assert statuses <= {"active", "paused", "cancelled"} and "active" in statuses
    assert not AccountMembership.objects.values("account").annotate(n=Count("id")).filter(n=0).exists()
    assert set(AccountMembership.objects.values_list("role", flat=True)) >= {"owner", "member"}

    assert {"check_in", "purchase"} <= set(Event.objects.values_list("name", flat=True).distinct())
    assert Event.objects.filter(name="purchase", amount__gt=0, properties__category="Chinese tea").exists()
    assert not Event.objects.filter(name="purchase", amount__isnull=True).exists()

    declared = set(AttributeDefinition.objects.values_list("entity", "key"))
    assert {("customer", "tier"), ("customer", "points"), ("customer", "vip"), ("customer", "last_survey")} <= declared
    assert {("account", "subscription_status"), ("account", "plan"), ("account", "renewal_date")} <= declared


def test_seed_demo_creates_the_example_groups_with_rules_in_the_rule_language():
    seed(customers=30)

    groups = {group.name: group for group in CustomerGroup.objects.all()}
    assert set(EXAMPLE_GROUPS) <= set(groups)
    catalogue = Catalogue.load()
    for group in CustomerGroup.objects.filter(kind="dynamic"):
        assert validate_rules(group.rules, catalogue=catalogue, group_id=group.pk) == [], group.name
    assert CustomerGroup.objects.filter(kind="manual").exists()
    for group in groups.values():
        if group.kind == "manual":
            continue
        for condition in conditions(group.rules):
            assert len(set(condition) & CONDITION_KEYS) == 1, (group.name, condition)
            if "in_group" in condition:
                assert CustomerGroup.objects.filter(pk=condition["in_group"]).exists()
    for group in groups.values():
        assert group_schedule_errors(group.refresh_mode, group.schedule, group.time_zone) == [], group.name
    for name in TIME_BASED:
        group = groups[name]
        assert group.refresh_mode == "events_and_schedule"
        assert group.schedule == {"frequency": "daily", "time": "06:00"}
        assert group.time_zone
        assert PeriodicTask.objects.filter(name=task_name(group.pk), enabled=True).exists()
    assert groups["Staff"].refresh_mode == "events"


def test_seed_demo_is_deterministic_for_a_seed():
    seed(customers=40, seed=3)
    first = list(Customer.objects.order_by("id").values_list("email", "role", "birthdate", "attributes"))
    Customer.objects.all().delete()
    Account.objects.all().delete()
    seed(customers=40, seed=3)
    assert list(Customer.objects.order_by("id").values_list("email", "role", "birthdate", "attributes")) == first


def test_seed_demo_if_empty_leaves_an_existing_database_alone():
    seed(customers=25)
    counts = (Customer.objects.count(), Event.objects.count(), CustomerGroup.objects.count())

    output = seed(customers=25, if_empty=True)

    assert "already has 25 customers" in output
    assert (Customer.objects.count(), Event.objects.count(), CustomerGroup.objects.count()) == counts


def test_seed_demo_refuses_to_add_to_existing_customers_without_if_empty():
    seed(customers=10)
    with pytest.raises(CommandError, match="already has 10 customers"):
        seed(customers=10)


def test_seed_demo_shows_progress_bars_that_reach_every_customer_and_row():
    err = StringIO()
    call_command("seed_demo", customers=50, seed=3, stdout=StringIO(), stderr=err)
    bars = err.getvalue()
    rows = Customer.objects.count() + Account.objects.count() + AccountMembership.objects.count()
    rows += Event.objects.count()
    assert "Generating customers: 100%" in bars and "50/50" in bars
    assert "Writing rows: 100%" in bars and f"{rows}/{rows}" in bars


def test_seed_demo_at_verbosity_zero_draws_no_bar():
    err = StringIO()
    call_command("seed_demo", customers=20, seed=3, stdout=StringIO(), stderr=err, verbosity=0)
    assert err.getvalue() == ""
