"""Faults with real parts: the database server crashes and comes back during a refresh and during
event ingest, the broker restarts empty with refreshes queued, a worker is killed mid-refresh.

Each test runs the product in processes of its own (tests/faults/stack.py) on its own embedded
PostgreSQL. After recovery, membership equals the rules, history replays to membership, member
counts are right, no run is left queued or running, and every event the API accepted is evaluated.
"""

from __future__ import annotations

import shutil
import threading
import time

import httpx
import pytest

from .stack import Stack, free_port, wait_until

CUSTOMERS = 20_000

# What the minute sweep of beat does: runs that lost their worker are failed and queued again, and
# queued runs whose message was lost are sent again (as it would five minutes on: an extra message
# for a run still waiting in the queue does nothing).
SWEEP = (
    "from datetime import timedelta; from django.utils import timezone; from groups import health; "
    "health.reset_stuck_runs(); health.resend_lost_runs(timezone.now() + timedelta(minutes=6))"
)
QUEUE_REFRESHES = (
    "from groups import services; from groups.models import CustomerGroup; "
    "[services.queue_refresh(g) for g in CustomerGroup.objects.order_by('pk')]"
)
# Data corrected behind the engine's back (as a bulk fix in SQL would): only refreshes bring the
# groups back in line, so they have real work to do when the fault strikes.
CORRECT_EVENTS = "UPDATE customers_event SET name = 'visit' WHERE name = 'check_in' AND id % 3 = 0"


def setup_data(stack: Stack) -> str:
    key = stack.run("-m", "tests.faults.scenario", "setup", str(CUSTOMERS)).strip().splitlines()[-1]
    stack.sql("CHECKPOINT")  # a crash then replays the test's own writes, not the whole setup
    return key


def runs(stack: Stack) -> dict[str, int]:
    return dict(stack.sql("SELECT status, count(*) FROM groups_refreshrun GROUP BY status"))


def all_runs_ended(stack: Stack) -> bool:
    status = runs(stack)
    return not status.get("queued") and not status.get("running")


def assert_consistent(stack: Stack) -> dict:
    report = stack.check()
    for slug, group in report["groups"].items():
        assert (group["missing"], group["extra"]) == (0, 0), f"{slug} differs from its rules: {group}"
        assert group["history_differs"] == 0, f"{slug}'s history does not replay to its members: {group}"
        assert not group["count_differs"], f"{slug}'s member count is wrong: {group}"
    assert not report["runs"].get("queued") and not report["runs"].get("running"), report["runs"]
    return report


def a_run_is_running(stack: Stack) -> bool:
    return runs(stack).get("running", 0) > 0


def recover(stack: Stack, timeout: float = 240) -> None:
    """Sweep as beat would until every run has ended."""
    deadline = time.monotonic() + timeout
    while not all_runs_ended(stack):
        assert time.monotonic() < deadline, f"runs still not ended after {timeout} s: {runs(stack)}"
        stack.shell(SWEEP)
        time.sleep(5)


def test_postgres_crashing_during_a_refresh_leaves_nothing_stuck_and_groups_right(stack):
    setup_data(stack)
    stack.sql(CORRECT_EVENTS)
    stack.shell(QUEUE_REFRESHES)
    stack.worker()
    wait_until(lambda: a_run_is_running(stack), timeout=60, what="a refresh running")
    stack.restart_postgres()  # a crash: no clean shutdown, recovery from the WAL
    assert a_run_is_running(stack)  # the crash left a run without its worker's session

    recover(stack)
    assert runs(stack).get("succeeded", 0) >= 10  # the five of the setup, and each group's again
    assert_consistent(stack)


def test_postgres_crashing_during_event_ingest_loses_no_accepted_event(stack):
    key = setup_data(stack)
    before = stack.check()["events"]
    url = stack.web()
    ids = [row[0] for row in stack.sql("SELECT id FROM customers_customer ORDER BY id LIMIT 2000")]
    accepted, refused, stop = [], [], threading.Event()

    def post_batches() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Token {key}"}, timeout=30) as client:
            for number in range(40):
                # Each event has its unique_id: a batch recorded just before the crash, whose answer
                # was lost, is sent again and must not count twice.
                batch = [{"customer_id": ids[(number * 50 + i) % len(ids)], "name": "check_in",
                          "occurred_at": "2025-05-20T10:00:00Z", "unique_id": f"b{number}-{i}"}
                         for i in range(50)]  # fmt: skip
                while not stop.is_set():  # a client retries a batch that was not accepted
                    try:
                        response = client.post("/api/events/batch/", json={"events": batch})
                    except httpx.HTTPError as exc:
                        refused.append(repr(exc))
                    else:
                        if response.status_code == 201:
                            accepted.append(len(batch))
                            break
                        refused.append(response.status_code)
                    time.sleep(0.2)

    client = threading.Thread(target=post_batches)
    client.start()
    try:
        wait_until(lambda: len(accepted) >= 10, timeout=120, what="batches accepted before the crash")
        stack.restart_postgres()
        client.join(300)
    finally:
        stop.set()
        client.join(10)
    assert len(accepted) == 40 and refused  # all accepted in the end; some were refused while it was down
    report = assert_consistent(stack)
    assert report["events"] == before + sum(accepted)


def test_a_worker_killed_mid_refresh_is_replaced_and_its_run_done_again(stack):
    setup_data(stack)
    stack.sql(CORRECT_EVENTS)
    stack.shell(QUEUE_REFRESHES)
    worker = stack.worker()
    wait_until(lambda: a_run_is_running(stack), timeout=60, what="a refresh running")
    stack.kill(worker)
    assert a_run_is_running(stack)

    stack.worker("worker-2")
    recover(stack)
    status = runs(stack)
    assert status == {"failed": 1, "succeeded": 10}  # the killed run failed, and queued and run again
    assert_consistent(stack)


@pytest.fixture
def redis_port(tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    # As Redis often runs: nothing kept on disk, so a restart empties its queues.
    argv = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(tmp_path)]  # fmt: skip
    redis = Redis(argv, port)
    redis.start()
    yield redis
    redis.stop()


class Redis:
    def __init__(self, argv: list[str], port: int) -> None:
        self.argv, self.port, self.process = argv, port, None

    def start(self) -> None:
        import subprocess

        self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, timeout=20, what="redis-server to start")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def _answers(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def test_the_broker_restarting_empty_with_refreshes_queued_loses_no_refresh(tmp_path, redis_port):
    stack = Stack(tmp_path / "stack", broker_url=f"redis://127.0.0.1:{redis_port.port}/0")
    try:
        stack.start_postgres()
        stack.manage("migrate", "--verbosity", "0")
        setup_data(stack)
        stack.sql(CORRECT_EVENTS)
        stack.shell(QUEUE_REFRESHES)  # no worker yet: the messages wait in Redis
        redis_port.stop()
        redis_port.start()  # empty: every queued message is gone
        stack.worker()
        time.sleep(3)
        assert runs(stack).get("queued") == 5  # nothing reached the worker

        recover(stack)
        assert runs(stack) == {"succeeded": 10}  # the five of the setup, and the five sent again
        assert_consistent(stack)
    finally:
        stack.close()
