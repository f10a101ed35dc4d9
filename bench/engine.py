"""Membership engine benchmark: full refresh vs the bare SELECT, vs a naive ORM loop, write latency, and
always-current groups (a day of one-minute sweeps against one full refresh of the same groups).

Run with `make bench` (or `python -m bench.engine --customers 1000000`). It uses its own database,
`<name>_bench`, on the configured server (DATABASE_URL, else the embedded one), prints a table and
writes JSON to bench/results/engine.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import zoneinfo
from datetime import timedelta
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _setup(database_suffix: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # DEBUG off: query logging would add to every measured statement.
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-key-not-for-any-deployment-0123456789")
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")  # the ingest benchmark calls the API
    import django
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    db["NAME"] = f"{db['NAME']}_{database_suffix}"
    conninfo = {"host": db["HOST"], "port": db["PORT"] or 5432, "user": db["USER"], "password": db["PASSWORD"]}
    with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _timed(fn, repeat: int = 1) -> tuple[float, object]:
    """Median wall time in milliseconds of `repeat` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(customers: int, groups: int, naive_customers: int, writes: int, repeat: int) -> dict:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from bench import data
    from customers.models import Customer
    from groups import engine
    from groups.models import CustomerGroup, Reason
    from groups.rules import Catalogue, compile_rules

    now = timezone.now()
    results: dict = {"customers": customers, "events": customers * 5, "groups": groups}
    print(f"generating {customers:,} customers and {customers * 5:,} events by COPY ...", flush=True)
    data.reset()
    started = time.perf_counter()
    data.generate(customers, now=now)
    data.settle("customers_customer", "customers_event")
    results["generate_s"] = round(time.perf_counter() - started, 1)

    target = CustomerGroup.objects.create(
        name="Bench: 3 conditions", slug="bench-target", rules=data.THREE_CONDITION_RULES
    )
    CustomerGroup.objects.bulk_create(
        CustomerGroup(name=f"Bench {i}", slug=f"bench-{i}", rules=rules)
        for i, rules in enumerate(data.group_rules(groups - 1))
    )
    catalogue = Catalogue.load()
    condition, params = compile_rules(target.rules, now=now, tz=zoneinfo.ZoneInfo("UTC"), catalogue=catalogue)

    def bare_select():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT c.id FROM customers_customer c WHERE {condition}", params)
            return len(cursor.fetchall())

    def full_refresh():
        return engine.evaluate([target], None, now, reason=Reason.MANUAL_REFRESH, catalogue=catalogue)

    print("(a) full refresh vs bare SELECT ...", flush=True)
    full_refresh()  # first fill, and warms the caches like the SELECT below
    select_times, refresh_0_times, select_churn_times, refresh_10_times = [], [], [], []
    for _ in range(repeat):
        ms, members = _timed(bare_select)
        select_times.append(ms)
        ms, outcome = _timed(full_refresh)
        refresh_0_times.append(ms)
        assert outcome.added.total() == outcome.removed.total() == 0
    for _ in range(repeat):
        changed = _churn(target, members, fraction=0.10)
        # The SELECT runs on the same changed data first, so both pay for the rows the churn rewrote.
        select_churn_times.append(_timed(bare_select)[0])
        ms, outcome = _timed(full_refresh)
        refresh_10_times.append(ms)
        assert outcome.added.total() + outcome.removed.total() == changed, (outcome.added, outcome.removed)
    select_ms = statistics.median(select_times)
    refresh_0_ms = statistics.median(refresh_0_times)
    select_churn_ms = statistics.median(select_churn_times)
    refresh_10_ms = statistics.median(refresh_10_times)
    results["full_refresh"] = {
        "members": members,
        "bare_select_ms": round(select_ms, 1),
        "refresh_0pct_churn_ms": round(refresh_0_ms, 1),
        "bare_select_after_churn_ms": round(select_churn_ms, 1),
        "refresh_10pct_churn_ms": round(refresh_10_ms, 1),
        "ratio_0pct": round(refresh_0_ms / select_ms, 2),
        "ratio_10pct": round(refresh_10_ms / select_churn_ms, 2),
    }

    print("(b) naive per-customer ORM evaluation ...", flush=True)
    naive_ids = list(Customer.objects.order_by("id").values_list("id", flat=True)[:naive_customers])
    _churn(target, members, fraction=0.10, within=naive_ids[-1])
    naive_ms, _ = _timed(lambda: _naive_refresh(target, naive_ids, now))
    _churn(target, members, fraction=0.10, within=naive_ids[-1])
    engine_ms, _ = _timed(
        lambda: engine.evaluate([target], naive_ids, now, reason=Reason.MANUAL_REFRESH, catalogue=catalogue)
    )
    results["naive"] = {
        "customers": len(naive_ids),
        "naive_orm_ms": round(naive_ms, 1),
        "engine_ms": round(engine_ms, 1),
        "speedup": round(naive_ms / engine_ms, 1),
    }

    print("(c) customer writes with every group event-driven ...", flush=True)
    rng = random.Random(5)
    sample = [rng.randint(1, customers) for _ in range(writes)]
    # Steady state for the customers written below: their memberships of all groups already stored
    # (a full refresh of 200 groups would take far longer than the measurement and change nothing).
    everyone = list(CustomerGroup.objects.all())
    engine.evaluate(everyone, sorted(set(sample) | {1}), now, reason=Reason.MANUAL_REFRESH, catalogue=catalogue)
    data.settle()
    latencies = _write_latencies(sample)
    statements = {}
    for count in (20, groups):
        ids = list(CustomerGroup.objects.order_by("id").values_list("id", flat=True)[count:])
        CustomerGroup.objects.filter(pk__in=ids).update(is_active=False)
        customer = Customer.objects.get(pk=1)
        reset_queries()
        with CaptureQueriesContext(connection) as queries:
            customer.save(update_fields=["updated_at"])
        statements[count] = len(queries)
        CustomerGroup.objects.update(is_active=True)
    results["write"] = {
        "writes": writes,
        "p50_ms": round(_percentile(latencies, 0.50), 2),
        "p95_ms": round(_percentile(latencies, 0.95), 2),
        "statements_with_20_groups": statements[20],
        "statements_with_all_groups": statements[groups],
    }

    print("(d) always-current groups: a day of one-minute sweeps against one full refresh ...", flush=True)
    results["always_current"] = always_current_day(sample, now)
    return results


def _write_latencies(sample: list[int], statuses=("active", "inactive")) -> list[float]:
    """Milliseconds of each customer write (a status change) and its evaluation in every active group."""
    from customers.models import Customer

    latencies = []
    for i, customer_id in enumerate(sample):
        customer = Customer.objects.get(pk=customer_id)
        customer.status = statuses[i % 2]
        started = time.perf_counter()
        customer.save(update_fields=["status", "updated_at"])
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def always_current_day(sample: list[int], now) -> dict:
    """The groups whose rules change with time made always current: one full refresh of them (as a
    schedule would run it), then 24 hours of the minute sweep from `now`, and the write latency."""
    from django.db import connection

    from groups import always_current, engine
    from groups.models import CustomerDue, CustomerGroup, Reason
    from groups.rules import Catalogue
    from groups.rules.moments import depends_on_time

    catalogue = Catalogue.load()
    timed = [g for g in CustomerGroup.objects.order_by("pk") if depends_on_time(g.rules)]
    started = time.perf_counter()
    for group in timed:
        engine.evaluate([group], None, now, reason=Reason.SCHEDULE, catalogue=catalogue)
    full_refresh_ms = (time.perf_counter() - started) * 1000

    CustomerGroup.objects.filter(pk__in=[g.pk for g in timed]).update(refresh_mode="always_current")
    started = time.perf_counter()
    for group in CustomerGroup.objects.filter(pk__in=[g.pk for g in timed]).order_by("pk"):
        # The first refresh of each, as the sweep runs it: every customer's next moment written.
        engine.evaluate([group], None, now, reason=Reason.TIME, catalogue=catalogue)
        always_current.record_refresh(group, now)
    seed_ms = (time.perf_counter() - started) * 1000
    due = CustomerDue.objects.count()
    data_settle()

    latencies = _write_latencies(sample, statuses=("inactive", "active"))

    sweeps, busiest = [], (0.0, 0, None)
    changes_before = _count(connection, "SELECT count(*) FROM groups_membershipchange WHERE reason = 'time'")
    for minute in range(1, 24 * 60 + 1):
        moment = now + timedelta(minutes=minute)
        started = time.perf_counter()
        done = always_current.sweep(moment)
        ms = (time.perf_counter() - started) * 1000
        sweeps.append(ms)
        if ms > busiest[0]:
            busiest = (ms, done.evaluated, moment.isoformat())
    changes = _count(connection, "SELECT count(*) FROM groups_membershipchange WHERE reason = 'time'") - changes_before
    day_ms = sum(sweeps)
    return {
        "groups": len(timed),
        "full_refresh_ms": round(full_refresh_ms, 1),
        "first_refresh_with_moments_ms": round(seed_ms, 1),
        "customers_due": due,
        "day_of_sweeps_ms": round(day_ms, 1),
        "ratio": round(day_ms / full_refresh_ms, 3),
        "largest_sweep_ms": round(busiest[0], 1),
        "largest_sweep_customers": busiest[1],
        "largest_sweep_at": busiest[2],
        "changes_by_time": changes,
        "write_p50_ms": round(_percentile(latencies, 0.50), 2),
        "write_p95_ms": round(_percentile(latencies, 0.95), 2),
    }


def data_settle() -> None:
    from bench import data

    data.settle("groups_customerdue", "groups_membership")


def _count(connection, sql: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def _churn(group, members: int, *, fraction: float, within: int | None = None) -> int:
    """Change the data of `fraction` x members customers behind the engine's back: half leave, half enter."""
    from django.db import connection

    half = max(1, int(members * fraction / 2))
    limit = "AND c.id <= %s" if within else ""
    extra = [within] if within else []
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE customers_customer SET role = 'staff' WHERE id IN (
                    SELECT m.customer_id FROM groups_membership m JOIN customers_customer c ON c.id = m.customer_id
                    WHERE m.group_id = %s {limit} ORDER BY random() LIMIT %s)""",
            [group.pk, *extra, half],
        )
        left = cursor.rowcount
        cursor.execute(
            f"""UPDATE customers_customer SET role = 'customer' WHERE id IN (
                    SELECT c.id FROM customers_customer c
                    WHERE c.role = 'staff' AND c.attributes->>'tier' IN ('gold', 'silver') {limit}
                      AND EXISTS (SELECT 1 FROM customers_event e WHERE e.customer_id = c.id
                                  AND e.name = 'purchase' AND e.occurred_at >= now() - interval '90 days')
                      AND NOT EXISTS (SELECT 1 FROM groups_membership m WHERE m.group_id = %s AND m.customer_id = c.id)
                    ORDER BY random() LIMIT %s)""",
            [*extra, group.pk, half],
        )
        return left + cursor.rowcount


def _naive_refresh(group, customer_ids: list[int], now) -> None:
    """What the engine replaces: load each customer, decide in Python, write one row at a time."""
    from customers.models import Customer, Event
    from groups.models import Membership, MembershipChange, Reason

    since = now - timedelta(days=90)
    for customer_id in customer_ids:
        customer = Customer.objects.get(pk=customer_id)
        matches = (
            customer.role.lower() == "customer"
            and str(customer.attributes.get("tier", "")).lower() in {"gold", "silver"}
            and Event.objects.filter(
                customer_id=customer_id, name="purchase", occurred_at__gte=since, occurred_at__lte=now
            ).exists()
        )
        member = Membership.objects.filter(group=group, customer_id=customer_id).first()
        if matches and member is None:
            Membership.objects.create(group=group, customer_id=customer_id, added_at=now)
            MembershipChange.objects.create(
                group=group,
                customer_id=customer_id,
                change="added",
                changed_at=now,
                reason=Reason.MANUAL_REFRESH,
                rule_version=group.rule_version,
            )
        elif not matches and member is not None:
            member.delete()
            MembershipChange.objects.create(
                group=group,
                customer_id=customer_id,
                change="removed",
                changed_at=now,
                reason=Reason.MANUAL_REFRESH,
                rule_version=group.rule_version,
            )


def _print(results: dict) -> None:
    a, b, c = results["full_refresh"], results["naive"], results["write"]
    rows = [
        (
            "data",
            f"{results['customers']:,} customers, {results['events']:,} events, {results['groups']} groups",
            f"generated in {results['generate_s']} s",
        ),
        ("(a) bare SELECT of the set", f"{a['bare_select_ms']} ms", f"{a['members']:,} members"),
        (
            "(a) full refresh, 0% churn",
            f"{a['refresh_0pct_churn_ms']} ms",
            f"{a['ratio_0pct']}x the SELECT (target <= 1.2x)",
        ),
        (
            "(a) full refresh, 10% churn",
            f"{a['refresh_10pct_churn_ms']} ms",
            f"{a['ratio_10pct']}x the SELECT (target <= 1.5x)",
        ),
        (f"(b) naive ORM loop, {b['customers']:,} customers", f"{b['naive_orm_ms']} ms", ""),
        (
            f"(b) engine, same {b['customers']:,} customers",
            f"{b['engine_ms']} ms",
            f"{b['speedup']}x faster (target >= 50x)",
        ),
        (
            f"(c) one customer write, {results['groups']} groups",
            f"p50 {c['p50_ms']} ms, p95 {c['p95_ms']} ms",
            "target p95 <= 20 ms",
        ),
        (
            "(c) SQL statements per write",
            f"{c['statements_with_20_groups']} with 20 groups",
            f"{c['statements_with_all_groups']} with {results['groups']} groups",
        ),
    ]
    d = results.get("always_current")
    if d:
        rows += [
            (
                f"(d) full refresh of the {d['groups']} time-based groups",
                f"{d['full_refresh_ms']} ms",
                f"first refresh with next moments {d['first_refresh_with_moments_ms']} ms, {d['customers_due']:,} due",
            ),
            (
                "(d) 24 hours of one-minute sweeps",
                f"{d['day_of_sweeps_ms']} ms",
                f"ratio {d['ratio']} of the full refresh (target < 1); {d['changes_by_time']:,} changes by time",
            ),
            (
                "(d) largest single sweep",
                f"{d['largest_sweep_ms']} ms",
                f"{d['largest_sweep_customers']:,} customers at {d['largest_sweep_at']}",
            ),
            (
                "(d) one customer write, groups always current",
                f"p50 {d['write_p50_ms']} ms, p95 {d['write_p95_ms']} ms",
                "target p95 <= 20 ms",
            ),
        ]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:<28}  {note}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--naive-customers", type=int, default=100_000)
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-suffix", default="bench")
    parser.add_argument("--json", default=str(RESULTS / "engine.json"))
    args = parser.parse_args(argv)
    _setup(args.database_suffix)
    results = run(args.customers, args.groups, min(args.naive_customers, args.customers), args.writes, args.repeat)
    _print(results)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.json}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
