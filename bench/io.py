"""Data in and out benchmark: CSV export of a large group, batch event ingest through the API with
200 groups kept current (also with the time-based groups always current, and with 50 groups synced
to a fake Klaviyo, each compared with plain ingest in the same run), and a CSV import of 100,000
customers with the groups current at the end.

Run with `make bench-io` (or `python -m bench.io --members 1000000`). It uses its own database,
`<name>_bench`, on the configured server (DATABASE_URL, else the embedded one), prints a table and
writes JSON to bench/results/io.json. It measures; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import queue
import random
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

from bench import data as bench_data
from bench.engine import _setup

RESULTS = Path(__file__).resolve().parent / "results"
EXPORT_COLUMNS = ["id", "external_id", "email", "first_name", "last_name", "attributes.tier", "added_at"]


def _reset_peak_rss() -> bool:
    """Let VmHWM measure from now on (Linux); False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def export(members: int) -> dict:
    """Stream a group of `members` members to nowhere, as the API would to a client."""
    from django.db import connection

    from groups.exports import export_response
    from groups.models import CustomerGroup

    group = CustomerGroup.objects.create(name="Bench: everyone", slug="bench-everyone", kind="manual")
    with connection.cursor() as cursor:
        # Setup, not measured: the members of a manual group, written directly.
        cursor.execute(
            "INSERT INTO groups_membership (group_id, customer_id, added_at) "
            "SELECT %s, id, now() FROM customers_customer ORDER BY id LIMIT %s",
            [group.pk, members],
        )
    bench_data.settle("groups_membership")

    def consume(response) -> tuple[int, int]:
        rows = size = 0
        for chunk in response.streaming_content:
            rows += chunk.count(b"\n")
            size += len(chunk)
        return rows - 1, size

    consume(export_response(group, EXPORT_COLUMNS))  # warm the caches, as a second download would find them
    can_reset = _reset_peak_rss()
    started = time.perf_counter()
    rows, size = consume(export_response(group, EXPORT_COLUMNS, bom=True))
    seconds = time.perf_counter() - started
    peak_rss = _peak_rss_mb() if can_reset else None
    tracemalloc.start()
    consume(export_response(group, EXPORT_COLUMNS))
    _, python_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "mb": round(size / 1e6, 1),
        "peak_rss_mb": peak_rss,
        "python_peak_mb": round(python_peak / 1e6, 2),
    }


def ingest(events: int, batch: int, customers: int, clients: int = 1, seed: int = 3) -> dict:
    """POST /api/events/batch/ through the API client: token auth, JSON, validation, write, evaluation.

    `clients` post at the same time, each in its own process with its own database connection, as
    several tills or syncs would reach several web server processes (gunicorn's workers); each takes
    the next batch as soon as its last one returns.
    """
    import multiprocessing

    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.utils import timezone
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from groups import engine
    from groups.models import CustomerGroup, MembershipChange

    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_superuser": True})
    user.is_superuser = True
    user.save()
    token = Token.objects.get_or_create(user=user)[0].key
    rng = random.Random(seed)
    now = timezone.now()
    names = ["purchase", "check_in", "check_in", "sign_up"]
    categories = ["Coffee", "Chinese tea", "Pastry", "Beans"]
    payloads = []
    for _ in range(0, events, batch):
        payloads.append({"events": [
            {"customer": f"c{rng.randint(1, customers)}", "name": rng.choice(names),
             "occurred_at": (now - timedelta(days=rng.choice([0, 1, 5, 40]),
                                             minutes=rng.randint(0, 600))).isoformat(),
             "amount": round(rng.uniform(2, 60), 2), "properties": {"category": rng.choice(categories)}}
            for _ in range(batch)
        ]})  # fmt: skip
    # Steady state, as in production: the groups already hold these customers' memberships, so what
    # is measured is keeping them current, not filling 200 new groups (setup, not measured).
    touched = sorted({int(e["customer"][1:]) for p in payloads for e in p["events"]})
    engine.evaluate(list(CustomerGroup.objects.active_dynamic()), touched, now)
    bench_data.settle()
    changes_before = MembershipChange.objects.count()

    def post(next_batches, latencies) -> None:
        client = APIClient(HTTP_HOST="localhost")  # the test client's "testserver" is no allowed host here
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        while (index := next_batches.get()) is not None:
            call_started = time.perf_counter()
            # secure: production settings redirect plain http to https.
            response = client.post("/api/events/batch/", payloads[index], format="json", secure=True)
            latencies.put(time.perf_counter() - call_started)
            if response.status_code != 201:
                raise RuntimeError(f"batch refused: {response.status_code} {response.content[:500]!r}")

    context = multiprocessing.get_context("fork")  # the clients inherit the payloads and the set-up Django
    next_batches, latencies = context.Queue(), context.Queue()
    for index in range(len(payloads)):
        next_batches.put(index)
    for _ in range(clients):
        next_batches.put(None)
    connections.close_all()  # each client opens its own connection
    processes = [context.Process(target=post, args=(next_batches, latencies)) for _ in range(clients)]
    started = time.perf_counter()
    for process in processes:
        process.start()
    times = []
    while len(times) < len(payloads):
        try:
            times.append(latencies.get(timeout=1))
        except queue.Empty:
            if any(process.exitcode for process in processes):
                raise RuntimeError("a client stopped on an error (its traceback is above)") from None
    seconds = time.perf_counter() - started
    for process in processes:
        process.join()
    times.sort()
    sent = sum(len(p["events"]) for p in payloads)
    return {
        "events": sent,
        "batch": batch,
        "clients": clients,
        "seconds": round(seconds, 2),
        "events_per_s": round(sent / seconds),
        "batch_p50_ms": round(times[len(times) // 2] * 1000, 1),
        "batch_max_ms": round(times[-1] * 1000, 1),
        "membership_changes": MembershipChange.objects.count() - changes_before,
    }


SYNCED_GROUP_MAX_MEMBERS = 20_000


def sync(events: int, batch: int, customers: int, clients: int, synced_groups: int) -> dict:
    """Ingest with `synced_groups` of the groups synced to a fake Klaviyo on 127.0.0.1 (the first ones of
    at most SYNCED_GROUP_MAX_MEMBERS members) and with those syncs paused, in turn (synced, paused,
    paused, synced, so drift in the machine's speed falls on both alike), and the time from each change
    made while synced to its batch accepted by the app.

    Real Celery worker processes drain, through a broker in files that the clients share. The backfill
    and the catching up after a pause are setup; each synced ingest is followed by its drain, so the
    next ingest starts with the workers idle. The fake keeps Klaviyo's rate limits per endpoint and the
    sync paces its calls to them, so the time to the app includes waiting for its turn.
    """
    import statistics
    import subprocess
    import tempfile

    from django.db import connection
    from django.db.models import Q
    from django.utils import timezone

    from config.celery import app
    from config.env import database_url
    from groups.models import CustomerGroup, Membership, MembershipChange
    from integrations import services, status
    from integrations.models import Connection, GroupSync
    from tests.fakes.klaviyo import FakeKlaviyo

    broker = app.conf.broker_url, app.conf.broker_transport_options
    with tempfile.TemporaryDirectory() as var_dir, FakeKlaviyo() as klaviyo:
        folders = {name: Path(var_dir) / "broker" / name for name in ("queue", "processed", "control")}
        for folder in folders.values():
            folder.mkdir(parents=True)
        app.conf.update(broker_url="filesystem://", broker_transport_options={
            "data_folder_in": str(folders["queue"]), "data_folder_out": str(folders["queue"]),
            "processed_folder": str(folders["processed"]), "control_folder": str(folders["control"]),
            "store_processed": False})  # fmt: skip
        _forget_broker_connections(app)
        env = {**os.environ, "DATABASE_URL": database_url(connection.settings_dict), "VAR_DIR": var_dir}
        env.pop("CELERY_BROKER_URL", None)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency", "2", "--loglevel", "WARNING"],
            env=env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            Connection.objects.filter(kind="klaviyo").delete()
            klaviyo_connection = Connection.objects.create(
                kind="klaviyo",
                name="Bench Klaviyo",
                settings={"base_url": klaviyo.url},
                credentials={"api_key": "pk_test_fake"},
            )
            # Lists of the size marketing sends to: a group holding most of the million customers
            # would spend the section backfilling rather than following the feed.
            groups = list(
                CustomerGroup.objects.filter(
                    kind="dynamic", is_active=True, member_count__lte=SYNCED_GROUP_MAX_MEMBERS
                ).order_by("pk")[:synced_groups]
            )
            syncs = [services.turn_on(group, klaviyo_connection) for group in groups]
            sync_ids = [s.pk for s in syncs]

            def drained() -> bool:
                states = set(GroupSync.objects.filter(pk__in=sync_ids).values_list("state", flat=True))
                if states != {GroupSync.State.IN_SYNC}:
                    if GroupSync.State.FAILING in states:
                        raise RuntimeError(
                            "a sync failed: "
                            + "; ".join(GroupSync.objects.filter(state="failing").values_list("last_error", flat=True))
                        )
                    return False
                return all(status.lag(s)[0] == 0 for s in GroupSync.objects.filter(pk__in=sync_ids))

            _wait(drained, 3600, "the backfill")
            rates = {True: [], False: []}
            synced_changes = []  # (first, last) history id of each synced ingest's changes
            drain_s, worker_cpu_s, fake_cpu_s = [], 0.0, 0.0
            paused = False
            for seed, synced in enumerate((True, False, False, True), start=11):
                if synced == paused:
                    for sync_row in GroupSync.objects.filter(pk__in=sync_ids):
                        (services.resume if paused else services.pause)(sync_row)
                    if paused:
                        _wait(drained, 3600, "the syncs to catch up after their pause")
                    paused = not paused
                bench_data.settle()
                first_change = _last_change_id()
                cpu_before = _cpu_seconds(worker.pid), time.process_time()
                rates[synced].append(ingest(events, batch, customers, clients, seed=seed)["events_per_s"])
                if synced:
                    ingest_done = time.perf_counter()
                    _wait(drained, 1800, "the changes to reach the fake Klaviyo")
                    drain_s.append(round(time.perf_counter() - ingest_done, 1))
                    synced_changes.append((first_change, _last_change_id()))
                    # Where the cores went meanwhile: the workers draining, and this process, which
                    # is idle but for the fake Klaviyo's threads (a real Klaviyo runs elsewhere).
                    worker_cpu_s += _cpu_seconds(worker.pid) - cpu_before[0]
                    fake_cpu_s += time.process_time() - cpu_before[1]
        finally:
            worker.terminate()
            worker.wait(60)
            app.conf.update(broker_url=broker[0], broker_transport_options=broker[1])
            _forget_broker_connections(app)
        delays = []
        while_synced = Q()
        for first, last in synced_changes:
            while_synced |= Q(id__gt=first, id__lte=last)
        for sync_row in GroupSync.objects.filter(pk__in=sync_ids):
            changes = list(MembershipChange.objects.filter(while_synced, group_id=sync_row.group_id))
            sent = status.batch_times(sync_row, changes)
            delays += [(sent[c.id] - c.changed_at).total_seconds() for c in changes if c.id in sent]
        equal = sum(
            klaviyo.members(s.remote_id) == set(Membership.objects.filter(group_id=s.group_id)
                                                 .values_list("customer__email", flat=True))
            for s in GroupSync.objects.filter(pk__in=sync_ids)
        )  # fmt: skip
    delays.sort()
    return {
        "synced_groups": len(syncs),
        "synced_members_at_start": sum(g.member_count for g in groups),
        "ingest_without_sync_events_per_s": rates[False],
        "ingest_with_sync_events_per_s": rates[True],
        "ingest_ratio": round(sum(rates[True]) / sum(rates[False]), 3),
        "changes_synced": len(delays),
        "change_to_remote_p50_s": round(statistics.median(delays), 2) if delays else None,
        "change_to_remote_p95_s": round(delays[int(len(delays) * 0.95)], 2) if delays else None,
        "drained_after_ingest_s": drain_s,
        "remote_lists_equal_to_groups": equal,
        "workers_cpu_s": round(worker_cpu_s, 1),
        "fake_klaviyo_cpu_s": round(fake_cpu_s, 1),
        "klaviyo_calls": len(klaviyo.calls),
        "klaviyo_calls_throttled": klaviyo.throttled,
        "at": timezone.now().isoformat(timespec="seconds"),
    }


def _last_change_id() -> int:
    from groups.models import MembershipChange

    return MembershipChange.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _cpu_seconds(pid: int) -> float:
    """CPU time used so far by a process and its children that still run (a worker and its pool)."""
    import psutil

    worker = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in (worker, *worker.children(recursive=True)))


def _forget_broker_connections(app) -> None:
    """Connections already made to the configured broker must not be reused for the one set above."""
    import kombu.pools

    kombu.pools.reset()
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def import_file(rows: int, existing: int) -> tuple[bytes, list[str]]:
    """A CSV of `rows` people: half already known (by external_id), half new; a declared number attribute."""
    rng = random.Random(9)
    out = io.StringIO()
    out.write("Customer ID,Email,First name,Last name,Role,Status,Tier,Points\n")
    external_ids = []
    for i in range(rows):
        known = i % 2 == 0 and existing
        external_id = f"c{rng.randint(1, existing)}" if known else f"new{i}"
        external_ids.append(external_id)
        out.write(f"{external_id},{external_id}@example.org,First{i % 300},Last{i % 700},"
                  f"{rng.choice(['customer', 'Customer', 'staff', 'vip'])},{rng.choice(['active', 'inactive'])},"
                  f"{rng.choice(['gold', 'silver', 'bronze'])},{rng.randint(0, 5000)}\n")  # fmt: skip
    return out.getvalue().encode(), external_ids


def import_customers(rows: int, existing: int) -> dict:
    from django.db import connection
    from django.utils import timezone

    from customers.imports import import_customers as run_import
    from customers.imports import parse_mapping
    from groups.models import CustomerGroup
    from groups.rules import Catalogue, compile_rules

    data, external_ids = import_file(rows, existing)
    bench_data.settle()
    mapping = parse_mapping(["Customer ID=external_id", "Email=email", "First name=first_name",
                             "Last name=last_name", "Role=role", "Status=status", "Tier=attributes.tier",
                             "Points=attributes.points:number"])  # fmt: skip
    started_at = timezone.now()
    started = time.perf_counter()
    report = run_import(io.BytesIO(data), mapping)
    seconds = time.perf_counter() - started
    finished_at = timezone.now()
    # Groups current: for every group, its members among the imported customers are exactly those its
    # rule selects (one query per group, over the imported customers only). Each chunk of the import
    # is evaluated at its own moment, and "last N days" rules can change meanwhile as events age, so
    # a membership counts as not current only when it is wrong both at the start and at the end.
    catalogue = Catalogue.load()
    wrong = 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT array_agg(id) FROM customers_customer WHERE external_id = ANY(%s)", [external_ids])
        imported = cursor.fetchone()[0]
        for group in CustomerGroup.objects.active_dynamic():
            tz = group.zone
            at_start, start_params = compile_rules(group.rules, now=started_at, tz=tz, catalogue=catalogue)
            at_end, end_params = compile_rules(group.rules, now=finished_at, tz=tz, catalogue=catalogue)
            cursor.execute(
                f"""
                WITH imported AS (SELECT unnest(%s::bigint[]) AS id),
                at_start AS (SELECT c.id FROM customers_customer c JOIN imported i ON i.id = c.id WHERE {at_start}),
                at_end AS (SELECT c.id FROM customers_customer c JOIN imported i ON i.id = c.id WHERE {at_end}),
                members AS (SELECT m.customer_id AS id FROM groups_membership m JOIN imported i ON i.id = m.customer_id
                            WHERE m.group_id = %s),
                wrong_at_start AS ((SELECT id FROM at_start EXCEPT SELECT id FROM members)
                                   UNION ALL (SELECT id FROM members EXCEPT SELECT id FROM at_start)),
                wrong_at_end AS ((SELECT id FROM at_end EXCEPT SELECT id FROM members)
                                 UNION ALL (SELECT id FROM members EXCEPT SELECT id FROM at_end))
                SELECT count(*) FROM (SELECT id FROM wrong_at_start INTERSECT SELECT id FROM wrong_at_end) wrong
                """,
                [imported, *start_params, *end_params, group.pk],
            )
            wrong += cursor.fetchone()[0]
    return {
        "rows": report.rows,
        "created": report.created,
        "updated": report.updated,
        "seconds": round(seconds, 2),
        "rows_per_s": round(report.rows / seconds),
        "groups_checked": CustomerGroup.objects.active_dynamic().count(),
        "members_not_current": wrong,
    }


SECTIONS = ("export", "ingest", "always_current", "sync", "import")


def always_current_ingest(events: int, batch: int, customers: int, clients: int) -> dict:
    """Ingest with the groups whose rules change with time event-driven, then always current, then
    always current and event-driven again, twice over (each run with its own events of the same mix),
    so drift in the machine's speed falls on both modes alike and single runs' spread averages out."""
    from groups.models import CustomerGroup
    from groups.rules.moments import depends_on_time

    timed = [g.pk for g in CustomerGroup.objects.all() if depends_on_time(g.rules)]
    rates = {"events": [], "always_current": []}
    for seed, mode in enumerate(("events", "always_current", "always_current", "events") * 2, start=21):
        CustomerGroup.objects.filter(pk__in=timed).update(refresh_mode=mode)
        rates[mode].append(ingest(events, batch, customers, clients, seed=seed)["events_per_s"])
    CustomerGroup.objects.filter(pk__in=timed).update(refresh_mode="events")
    return {
        "groups": len(timed),
        "event_driven_events_per_s": rates["events"],
        "always_current_events_per_s": rates["always_current"],
        "ingest_ratio": round(sum(rates["always_current"]) / sum(rates["events"]), 3),
    }


def run(
    members: int,
    events: int,
    batch: int,
    groups: int,
    import_rows: int,
    events_per_customer: int = 2,
    only: tuple[str, ...] = SECTIONS,
    clients: int = 1,
    synced_groups: int = 50,
) -> dict:
    from django.utils import timezone

    from customers.models import AttributeDefinition
    from groups.models import CustomerGroup

    now = timezone.now()
    results: dict = {"customers": members, "groups": groups}
    print(f"generating {members:,} customers and {members * events_per_customer:,} events by COPY ...", flush=True)
    bench_data.reset()
    AttributeDefinition.objects.all().delete()
    started = time.perf_counter()
    bench_data.generate(members, events_per_customer, now=now)
    bench_data.settle("customers_customer", "customers_event")
    results["generate_s"] = round(time.perf_counter() - started, 1)

    if "export" in only:
        print(f"(a) export of {members:,} members ...", flush=True)
        results["export"] = export(members)
        print(f"    {results['export']}", flush=True)

    CustomerGroup.objects.bulk_create(
        CustomerGroup(name=f"Bench {i}", slug=f"bench-{i}", rules=rules)
        for i, rules in enumerate(bench_data.group_rules(groups))
    )
    if "ingest" in only:
        print(f"(b) ingest of {events:,} events in batches of {batch} with {groups} groups ...", flush=True)
        results["ingest"] = ingest(events, batch, members, clients)
        print(f"    {results['ingest']}", flush=True)

    if "always_current" in only:
        print("(t) ingest with the time-based groups event-driven and always current, in turn ...", flush=True)
        results["always_current"] = always_current_ingest(events, batch, members, clients)
        print(f"    {results['always_current']}", flush=True)

    if "sync" in only:
        print(f"(s) ingest with {synced_groups} of the {groups} groups synced to a fake Klaviyo ...", flush=True)
        results["sync"] = sync(events, batch, members, clients, synced_groups)
        print(f"    {results['sync']}", flush=True)

    if "import" in only:
        print(f"(c) import of {import_rows:,} customers with {groups} groups ...", flush=True)
        results["import"] = import_customers(import_rows, members)
        print(f"    {results['import']}", flush=True)
    return results


def _print(results: dict) -> None:
    rows = [("data", f"{results['customers']:,} customers, {results['groups']} groups",
             f"generated in {results['generate_s']} s")]  # fmt: skip
    if "export" in results:
        e = results["export"]
        peak = f"peak RSS {e['peak_rss_mb']} MB" if e["peak_rss_mb"] is not None else "peak RSS not measurable"
        rows += [
            (f"(a) export, {e['rows']:,} members", f"{e['rows_per_s']:,} rows/s",
             f"{e['seconds']} s, {e['mb']} MB of CSV (target >= 150,000 rows/s)"),
            ("(a) export memory", peak, f"Python heap peak {e['python_peak_mb']} MB (target < 150 MB)"),
        ]  # fmt: skip
    if "ingest" in results:
        i = results["ingest"]
        rows.append((f"(b) ingest, {i['clients']} x batches of {i['batch']}", f"{i['events_per_s']:,} events/s",
                     f"{i['events']:,} events in {i['seconds']} s; batch p50 {i['batch_p50_ms']} ms "
                     "(target >= 5,000/s)"))  # fmt: skip
    if "always_current" in results:
        t = results["always_current"]
        rows.append((f"(t) ingest, {t['groups']} groups always current", f"ratio {t['ingest_ratio']}",
                     f"{t['always_current_events_per_s']} vs {t['event_driven_events_per_s']} events/s "
                     "event-driven (target >= 0.9)"))  # fmt: skip
    if "sync" in results:
        y = results["sync"]
        rows.append((f"(s) ingest, {y['synced_groups']} groups synced", f"ratio {y['ingest_ratio']}",
                     f"{y['ingest_with_sync_events_per_s']} vs {y['ingest_without_sync_events_per_s']} events/s "
                     f"paused (target >= 0.9); change to Klaviyo p50 {y['change_to_remote_p50_s']} s, "
                     f"p95 {y['change_to_remote_p95_s']} s; {y['remote_lists_equal_to_groups']} lists "
                     "equal"))  # fmt: skip
    if "import" in results:
        m = results["import"]
        rows.append((f"(c) import, {m['rows']:,} rows", f"{m['seconds']} s",
                     f"{m['created']:,} created, {m['updated']:,} updated; {m['members_not_current']} memberships "
                     f"not current in {m['groups_checked']} groups (target <= 60 s)"))  # fmt: skip
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:<22}  {note}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000, help="Customers, all members of the exported group.")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=1, help="Clients posting event batches at the same time.")
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--synced-groups", type=int, default=50, help="Groups synced to a fake Klaviyo (sync).")
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--events-per-customer", type=int, default=2)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"Comma-separated: {', '.join(SECTIONS)}.")
    parser.add_argument("--database-suffix", default="bench")
    parser.add_argument("--json", default=str(RESULTS / "io.json"))
    args = parser.parse_args(argv)
    only = tuple(s.strip() for s in args.only.split(","))
    if set(only) - set(SECTIONS):
        parser.error(f"--only takes {', '.join(SECTIONS)}")
    _setup(args.database_suffix)
    results = run(args.members, args.events, args.batch, args.groups, args.import_rows, args.events_per_customer,
                  only, args.clients, args.synced_groups)  # fmt: skip
    _print(results)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.json}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
