"""A bounded load (loopback only): event batches and back-office pages at a stated rate for a stated time.

Run by `make soak`, not by `make test`. The product runs as in production, under gunicorn, on its own
embedded PostgreSQL (tests/faults/stack.py); Locust drives it at a constant rate. The test asserts
what users rely on: no request fails, every accepted event is recorded once and evaluated, and the
groups equal their rules afterwards. Latency percentiles and the error rate are measured, not
asserted, and written to bench/results/load.json (docs/reliability.md quotes them).
"""

from __future__ import annotations

import csv
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.faults.stack import BASE_DIR, Stack, free_port, wait_until
from tests.faults.test_faults import assert_consistent

pytestmark = pytest.mark.soak

SECONDS = int(os.environ.get("SOAK_SECONDS", "120"))
EVENT_CLIENTS, BATCHES_PER_S, BATCH = 4, 1.0, 100  # 400 events/s
STAFF, PAGES_PER_S = 2, 1.0  # 2 pages/s
RESULTS = BASE_DIR / "bench" / "results" / "load.json"


def test_a_bounded_load_of_ingest_and_pages_fails_nothing_and_loses_nothing(tmp_path):
    stack = Stack(tmp_path)
    try:
        stack.start_postgres()
        stack.manage("migrate", "--verbosity", "0")
        key = stack.run("-m", "tests.faults.scenario", "setup", "20000").strip().splitlines()[-1]
        before = stack.check()["events"]
        group_id = stack.sql("SELECT id FROM groups_customergroup WHERE slug = 'regulars'")[0][0]
        ids = [str(row[0]) for row in stack.sql("SELECT id FROM customers_customer ORDER BY id LIMIT 5000")]
        port = free_port()
        workers = os.environ.get("SOAK_WEB_WORKERS", "2")
        stack.start("web", "-m", "gunicorn", "config.wsgi", "--workers", workers, "--bind", f"127.0.0.1:{port}")
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(url), timeout=60, what="gunicorn", every=0.2)

        stack.env.update({
            "LOAD_API_KEY": key, "LOAD_CUSTOMER_IDS": ",".join(ids), "LOAD_GROUP_ID": str(group_id),
            "LOAD_BATCH": str(BATCH), "LOAD_EVENT_CLIENTS": str(EVENT_CLIENTS), "LOAD_STAFF": str(STAFF),
            "LOAD_BATCHES_PER_S_PER_CLIENT": str(BATCHES_PER_S), "LOAD_PAGES_PER_S_PER_STAFF": str(PAGES_PER_S),
            "LOAD_USERNAME": "faults", "LOAD_PASSWORD": "a-long-fault-password",
        })  # fmt: skip
        prefix = tmp_path / "load"
        users = EVENT_CLIENTS + STAFF
        stack.run(
            "-m", "locust", "-f", "tests/soak/locustfile.py", "--headless", "--users", str(users),
            "--spawn-rate", str(users), "--run-time", f"{SECONDS}s", "--host", url, "--csv", str(prefix),
            "--only-summary", "--exit-code-on-error", "0", timeout=SECONDS + 120,
        )  # fmt: skip
        rows = _stats(prefix)
        report = assert_consistent(stack)
    finally:
        stack.close()

    accepted = rows["POST /api/events/batch/"]
    result = {
        "seconds": SECONDS,
        "stated_load": {"events_per_s": EVENT_CLIENTS * BATCHES_PER_S * BATCH, "pages_per_s": STAFF * PAGES_PER_S},
        "customers": 20000,
        "groups": len(report["groups"]),
        "web_workers": int(workers),
        "requests": {name: row for name, row in rows.items()},
        "events_recorded": report["events"] - before,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    failures = {name: row["failures"] for name, row in rows.items() if row["failures"]}
    assert not failures, f"requests failed under load: {failures}"
    # Locust stops its users mid-request at the end: those last batches were recorded, unanswered.
    recorded, answered = report["events"] - before, accepted["requests"] * BATCH
    assert recorded % BATCH == 0 and answered <= recorded <= answered + EVENT_CLIENTS * BATCH


def _stats(prefix: Path) -> dict[str, dict]:
    with open(f"{prefix}_stats.csv", newline="") as f:
        return {
            row["Name"] if row["Name"] != "Aggregated" else "all": {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "per_s": round(float(row["Requests/s"]), 2),
                "p50_ms": float(row["50%"]),
                "p95_ms": float(row["95%"]),
                "p99_ms": float(row["99%"]),
                "max_ms": round(float(row["Max Response Time"]), 1),
            }
            for row in csv.DictReader(f)
        }


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url + "/admin/login/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
