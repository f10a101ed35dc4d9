"""`manage.py seed_demo_groups`: the example groups of the product docs, written in the rule language."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from customers.models import Customer
from groups import schedules, services
from groups.models import CustomerGroup, Reason, Tag

EVENTS = CustomerGroup.RefreshMode.EVENTS
SCHEDULED = CustomerGroup.RefreshMode.EVENTS_AND_SCHEDULE
# Groups whose membership also changes with time alone refresh every morning, in the shop's time zone.
DAILY = {"frequency": "daily", "time": "06:00"}
DEMO_TIME_ZONE = "Europe/Paris"

NEVER_VISITED_IN_60_DAYS = {"event": "check_in", "window": {"last": {"days": 60}}, "count": {"op": "eq", "value": 0}}


def example_groups() -> list[dict]:
    """Each entry: name, slug, description, tags, rules, refresh mode. Order matters for in_group."""
    return [
        {"name": "Customers", "slug": "customers", "tags": ["Team"],
         "description": "Everyone whose role is customer.",
         "rules": {"field": "role", "op": "eq", "value": "customer"}},
        {"name": "Staff", "slug": "staff", "tags": ["Team"],
         "description": "Everyone whose role is staff (any capitalisation, as imported).",
         "rules": {"field": "role", "op": "eq", "value": "staff"}},
        {"name": "No email", "slug": "no-email", "tags": ["Data quality"],
         "description": "Customers we cannot email: ask for an address at the till.",
         "rules": {"all": [{"field": "role", "op": "eq", "value": "customer"},
                           {"field": "email", "op": "is_empty"}]}},
        {"name": "No birthdate", "slug": "no-birthdate", "tags": ["Data quality"],
         "description": "People who leave the group as soon as their birthday is recorded.",
         "rules": {"field": "birthdate", "op": "is_empty"}},
        {"name": "Visited 3+ times", "slug": "visited-3-times", "tags": ["Behaviour"],
         "description": "Checked in at least three times, ever.",
         "rules": {"event": "check_in", "count": {"op": "gte", "value": 3}}},
        {"name": "Visited in last 30 days", "slug": "visited-last-30-days", "tags": ["Behaviour"],
         "description": "At least one check-in in the last 30 days.",
         "rules": {"event": "check_in", "window": {"last": {"days": 30}}},
         "refresh_mode": SCHEDULED},
        {"name": "Lapsed 60 days", "slug": "lapsed-60-days", "tags": ["Behaviour", "Win-back"],
         "description": "Came before, but not in the last 60 days.",
         "rules": {"all": [{"event": "check_in", "count": {"op": "gte", "value": 1}}, NEVER_VISITED_IN_60_DAYS]},
         "refresh_mode": SCHEDULED},
        {"name": "Last month's VIPs", "slug": "last-month-vips", "tags": ["Behaviour"],
         "description": "Spent 150 or more last calendar month.",
         "rules": {"event": "purchase", "window": {"calendar": "last_month"},
                   "sum": {"property": "amount", "op": "gte", "value": 150}},
         "refresh_mode": SCHEDULED},
        {"name": "Bought Chinese tea", "slug": "bought-chinese-tea", "tags": ["Behaviour"],
         "description": "At least one Chinese tea purchase, ever.",
         "rules": {"event": "purchase", "where": [{"property": "category", "op": "eq", "value": "Chinese tea"}]}},
        {"name": "Birthday this week", "slug": "birthday-this-week", "tags": ["Behaviour"],
         "description": "Birthday within the next 7 days (29 February counts on 1 March).",
         "rules": {"field": "birthdate", "op": "anniversary_within_next", "value": {"days": 7}},
         "refresh_mode": SCHEDULED},
        {"name": "Household has active subscription", "slug": "household-active-subscription",
         "tags": ["Households"],
         "description": "In a household whose subscription is active: not a win-back target.",
         "rules": {"account": {"all": [{"field": "kind", "op": "eq", "value": "household"},
                                       {"field": "attributes.subscription_status", "op": "eq",
                                        "value": "active"}]}}},
        {"name": "Lapsed VIPs", "slug": "lapsed-vips", "tags": ["Win-back"],
         "description": "VIP customers in the Lapsed 60 days group: a manager calls them.",
         "rules": {"all": [{"field": "attributes.vip", "op": "is_true"}, {"in_group": "lapsed-60-days"}]},
         "refresh_mode": SCHEDULED},
        {"name": "Tasting panel", "slug": "tasting-panel", "tags": ["Team"], "kind": CustomerGroup.Kind.MANUAL,
         "description": "A standard group: members are added and removed by hand.", "rules": {}},
    ]  # fmt: skip


def _resolve_group_references(rule, slugs: dict[str, int]):
    """The definitions name other groups by slug; the rule language wants their ids."""
    if isinstance(rule, dict):
        if isinstance(rule.get("in_group"), str):
            return {"in_group": slugs[rule["in_group"]]}
        return {key: _resolve_group_references(value, slugs) for key, value in rule.items()}
    if isinstance(rule, list):
        return [_resolve_group_references(item, slugs) for item in rule]
    return rule


class Command(BaseCommand):
    help = "Create or update the example groups (matched by slug) and refresh them."

    @transaction.atomic
    def handle(self, *args, **options):
        slugs: dict[str, int] = {}
        for definition in example_groups():
            refresh_mode = definition.get("refresh_mode", EVENTS)
            scheduled = refresh_mode == SCHEDULED
            group, _ = CustomerGroup.objects.update_or_create(
                slug=definition["slug"],
                defaults={
                    "name": definition["name"],
                    "description": definition["description"],
                    "kind": definition.get("kind", CustomerGroup.Kind.DYNAMIC),
                    "rules": _resolve_group_references(definition["rules"], slugs),
                    "refresh_mode": refresh_mode,
                    "schedule": dict(DAILY) if scheduled else {},
                    "time_zone": DEMO_TIME_ZONE if scheduled else "",
                },
            )
            group.tags.set([Tag.objects.get_or_create(name=name)[0] for name in definition["tags"]])
            if group.is_dynamic and not group.rule_versions.filter(version=group.rule_version).exists():
                services.record_rule_version(group)  # the rule history starts with the example's rules
            schedules.sync_schedule(group)  # beat's task for the scheduled ones
            slugs[group.slug] = group.pk
        # A few hand-picked members for the manual group, then every dynamic group computes its own.
        panel = CustomerGroup.objects.get(slug="tasting-panel")
        services.add_members(panel, Customer.objects.order_by("id").values_list("id", flat=True)[:12])
        runs = services.refresh_all(reason=Reason.MANUAL_REFRESH)
        members = sum(run.added for run in runs)
        self.stdout.write(f"{len(slugs)} example groups ready, {members} memberships computed.")
