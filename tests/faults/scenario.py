"""The data and the checks of the fault tests, run inside the stack's own processes.

`python -m tests.faults.scenario setup N` loads N demo customers and groups whose rules do not
depend on the time (so a check minutes later must agree exactly), refreshes them and prints a
superuser's API key. `python -m tests.faults.scenario check` prints, as JSON, how far membership is
from the rules and from its history, and what the runs and events are.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime

import django

# Events of the demo data are dated up to this moment; the rules below read them in all time.
DATA_NOW = datetime(2025, 6, 1, tzinfo=UTC)

GROUPS = {
    "regulars": {"event": "check_in", "count": {"op": "gte", "value": 5}},
    "big-spenders": {"event": "purchase", "sum": {"property": "amount", "op": "gte", "value": 150}},
    "bought-once": {"event": "purchase", "count": {"op": "eq", "value": 1}},
    "no-email": {"field": "email", "op": "is_empty"},
    "regular-big-spenders": "regulars & big-spenders",
}


def setup(customers: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from customers import demo
    from groups import services
    from groups.models import CustomerGroup

    with transaction.atomic():
        demo.load(size=customers, seed=7, now=DATA_NOW)
    made = {}
    for slug, rules in GROUPS.items():
        if isinstance(rules, str):
            first, second = rules.split(" & ")
            rules = {"all": [{"in_group": made[first].pk}, {"in_group": made[second].pk}]}
        made[slug] = CustomerGroup.objects.create(name=slug.replace("-", " ").capitalize(), slug=slug, rules=rules)
        services.refresh(made[slug])
    user = get_user_model().objects.create_superuser("faults", "faults@example.com", "a-long-fault-password")
    print(Token.objects.create(user=user).key)


def check() -> dict:
    from django.db import connection
    from django.utils import timezone

    from customers.models import Event
    from groups.engine import condition_of
    from groups.models import CustomerGroup, Membership, RefreshRun
    from groups.rules import Catalogue
    from tests.groups.history import replay

    catalogue, now = Catalogue.load(), timezone.now()
    report = {"groups": {}, "runs": dict(Counter(RefreshRun.objects.values_list("status", flat=True))),
              "events": Event.objects.count()}  # fmt: skip
    for group in CustomerGroup.objects.filter(kind=CustomerGroup.Kind.DYNAMIC).order_by("pk"):
        text, params = condition_of(group, now, catalogue)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT c.id FROM customers_customer c WHERE {text}", params)
            expected = {row[0] for row in cursor.fetchall()}
        members = set(Membership.objects.filter(group=group).values_list("customer_id", flat=True))
        group.refresh_from_db()
        report["groups"][group.slug] = {
            "members": len(members),
            "missing": len(expected - members),
            "extra": len(members - expected),
            "history_differs": len(replay(group) ^ members),
            "count_differs": group.member_count != len(members),
        }
    return report


def main(argv: list[str]) -> None:
    django.setup()
    if argv[:1] == ["setup"]:
        setup(int(argv[1]))
    elif argv == ["check"]:
        print(json.dumps(check()))
    else:
        sys.exit("usage: python -m tests.faults.scenario setup N | check")


if __name__ == "__main__":
    main(sys.argv[1:])
