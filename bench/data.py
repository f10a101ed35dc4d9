"""Synthetic data for the benchmarks, written with COPY: customers, their events and 200 groups."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

from django.db import connection

ROLES = ["customer"] * 8 + ["staff", "vip"]
TIERS = ["gold", "silver", "bronze", "none"]
STATUSES = ["active", "inactive", "prospect"]
EVENT_NAMES = ["purchase", "purchase", "check_in", "check_in", "sign_up"]
CATEGORIES = ["Coffee", "Chinese tea", "Pastry", "Beans", "Merch"]


def reset(customers_only: bool = False) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE customers_event, customers_accountmembership, customers_account, "
            "groups_membershipchange, groups_membership, groups_sizesnapshot, groups_refreshrun, "
            "groups_customergroup_tags, groups_customergroup, customers_customer RESTART IDENTITY CASCADE"
        )


def generate(customers: int, events_per_customer: int = 5, *, now: datetime, seed: int = 7) -> None:
    """Insert `customers` customers and `events_per_customer` events each, spread over a year."""
    rng = random.Random(seed)
    with connection.cursor() as cursor:
        with cursor.copy(
            "COPY customers_customer (id, external_id, member_id, email, phone, first_name, last_name, status,"
            " role, signup_source, birthdate, email_consent, sms_consent, attributes, created_at, updated_at)"
            " FROM STDIN"
        ) as copy:
            for i in range(1, customers + 1):
                created = now - timedelta(days=rng.randint(0, 1500))
                attributes = {"tier": rng.choice(TIERS), "points": rng.randint(0, 5000)}
                copy.write_row(
                    (
                        i,
                        f"c{i}",
                        "",
                        "" if i % 17 == 0 else f"c{i}@example.com",
                        "",
                        f"First{i % 500}",
                        f"Last{i % 900}",
                        rng.choice(STATUSES),
                        rng.choice(ROLES),
                        rng.choice(["web", "store", ""]),
                        None
                        if i % 11 == 0
                        else f"{rng.randint(1950, 2008)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                        i % 3 == 0,
                        i % 5 == 0,
                        json.dumps(attributes),
                        created,
                        created,
                    )
                )
        with cursor.copy(
            "COPY customers_event (customer_id, name, occurred_at, amount, properties, created_at) FROM STDIN"
        ) as copy:
            for i in range(1, customers + 1):
                for _ in range(events_per_customer):
                    name = rng.choice(EVENT_NAMES)
                    occurred = now - timedelta(minutes=rng.randint(0, 365 * 24 * 60))
                    amount = round(rng.uniform(2, 120), 2) if name == "purchase" else None
                    props = {"category": rng.choice(CATEGORIES)} if name == "purchase" else {}
                    copy.write_row((i, name, occurred, amount, json.dumps(props), occurred))
        cursor.execute("SELECT setval('customers_customer_id_seq', %s)", [customers])
        cursor.execute("ANALYZE customers_customer; ANALYZE customers_event")


def settle(*tables: str) -> None:
    """Before measuring, what the server would do soon after bulk writes, so that it does not compete
    with the measurement: vacuum (statistics, hint bits, the visibility map of index-only scans) and
    a checkpoint (the dirty pages written out). Outside a transaction only."""
    with connection.cursor() as cursor:
        if tables:
            cursor.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")
        cursor.execute("CHECKPOINT")


THREE_CONDITION_RULES = {
    "all": [
        {"field": "role", "op": "eq", "value": "customer"},
        {"field": "attributes.tier", "op": "in", "value": ["gold", "silver"]},
        {"event": "purchase", "window": {"last": {"days": 90}}, "count": {"op": "gte", "value": 1}},
    ]
}


def group_rules(n: int, seed: int = 11) -> list[dict]:
    """`n` varied rule documents of the kinds staff write: fields, attributes, events, windows."""
    rng = random.Random(seed)
    makers = [
        lambda: {"field": "role", "op": "eq", "value": rng.choice(ROLES)},
        lambda: {"field": "email", "op": "is_empty"},
        lambda: {"field": "status", "op": "in", "value": rng.sample(STATUSES, 2)},
        lambda: {"field": "attributes.tier", "op": "eq", "value": rng.choice(TIERS)},
        lambda: {"field": "attributes.points", "op": "gte", "value": rng.randint(100, 4000)},
        lambda: {"field": "email_consent", "op": "is_true"},
        lambda: {"field": "birthdate", "op": "anniversary_within_next", "value": {"days": rng.choice([7, 30])}},
        lambda: {
            "event": "check_in",
            "window": {"last": {"days": rng.choice([30, 60, 90])}},
            "count": {"op": "gte", "value": rng.randint(1, 3)},
        },
        lambda: {
            "event": "purchase",
            "window": {"calendar": "last_month"},
            "sum": {"property": "amount", "op": "gte", "value": rng.choice([50, 100, 200])},
        },
        lambda: {
            "event": "purchase",
            "where": [{"property": "category", "op": "eq", "value": rng.choice(CATEGORIES)}],
            "window": {"last": {"days": 90}},
        },
        lambda: {"event": "check_in", "window": {"last": {"days": 60}}, "count": {"op": "eq", "value": 0}},
    ]
    documents = []
    for _ in range(n):
        parts = [rng.choice(makers)() for _ in range(rng.randint(1, 3))]
        documents.append({"all": parts} if rng.random() < 0.7 else {"any": parts})
    return documents
