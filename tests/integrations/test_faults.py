"""Faults in the middle of large syncs: the app fails, times out, rate-limits, refuses, and a worker is killed.

At the end the remote list equals the group, the History tab went from pending or failed to synced,
and no change was lost or applied twice (the receiver applies each delivery once by its webhook-id,
and counts every repeat it dropped).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection as db

from config.env import database_url
from customers.models import Customer
from groups import services as groups
from groups.models import Membership, MembershipChange
from integrations import services, status
from integrations.models import GroupSync

from .conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
BASE_DIR = Path(__file__).resolve().parents[2]


def many_customers(count: int, start: int = 0) -> list[int]:
    made = Customer.objects.bulk_create([Customer(email=f"c{start + i}@example.com") for i in range(count)])
    return [c.pk for c in made]


def members(group) -> set[int]:
    return set(Membership.objects.filter(group=group).values_list("customer_id", flat=True))


def history_statuses(sync: GroupSync) -> Counter:
    changes = list(MembershipChange.objects.filter(group_id=sync.group_id))
    sync.refresh_from_db()
    return Counter(d[0].status for d in status.deliveries([sync], changes).values())


def settled(receiver, sync: GroupSync, group) -> bool:
    sync.refresh_from_db()
    return bool(sync.remote_id) and receiver.members(sync.remote_id) == members(group) and status.lag(sync)[0] == 0


def test_failures_timeouts_and_rate_limits_mid_sync_lose_nothing_and_repeat_nothing(receiver, webhook, group, worker):
    first = many_customers(2000)
    groups.add_members(group, first)
    # The backfill's second batch fails, the third is applied but answered too late, the fourth is
    # rate-limited; then a change arrives while the sync is still busy.
    receiver.faults.extend([("ok", 0), ("ok", 0), ("fail", 503), ("slow", 4.0), ("rate", 1)])
    sync = services.turn_on(group, webhook)
    # The backfill has read its members (and its feed position) before the changes below are made.
    wait_until(lambda: GroupSync.objects.get(pk=sync.pk).position, what="the backfill to start")
    later = many_customers(700, start=5000)
    groups.add_members(group, later)
    groups.remove_members(group, first[:300])
    wait_until(lambda: settled(receiver, sync, group), timeout=120, what="the list to equal the group")

    assert receiver.repeats  # the late-answered batch came again, and was dropped
    added = Counter(c for event, c in receiver.member_changes() if event == "group.members_added")
    assert set(added) == set(first) | set(later) and max(added.values()) == 1
    removed = [c for event, c in receiver.member_changes() if event == "group.members_removed"]
    assert sorted(removed) == sorted(first[:300])
    assert history_statuses(sync) == Counter({"synced": 3000})


def test_a_refused_batch_stops_the_sync_and_it_resumes_from_its_position_once_fixed(receiver, webhook, group,
                                                                                     worker):  # fmt: skip
    groups.add_members(group, many_customers(1200))
    sync = services.turn_on(group, webhook)
    wait_until(lambda: settled(receiver, sync, group), what="the first sync")
    receiver.faults.append(("fail", 400))
    groups.add_members(group, many_customers(600, start=5000))
    wait_until(lambda: GroupSync.objects.get(pk=sync.pk).state == GroupSync.State.FAILING, what="the sync failing")
    sync.refresh_from_db()
    assert "400" in sync.last_error
    assert history_statuses(sync) == Counter({"synced": 1200, "failed": 600})

    services.resume(sync)
    wait_until(lambda: settled(receiver, sync, group), what="the resumed sync")
    assert history_statuses(sync) == Counter({"synced": 1800})
    added = Counter(c for event, c in receiver.member_changes() if event == "group.members_added")
    assert max(added.values()) == 1


# --- a real worker process, killed mid-batch ---------------------------------------------------------


@pytest.fixture
def file_broker(tmp_path, memory_broker):
    """A broker in files that this process and worker processes share (kombu's filesystem transport)."""
    folders = {name: tmp_path / "broker" / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    memory_broker.conf.update(
        broker_url="filesystem://",
        broker_transport_options={"data_folder_in": str(folders["queue"]), "data_folder_out": str(folders["queue"]),
                                  "processed_folder": str(folders["processed"]),
                                  "control_folder": str(folders["control"]), "store_processed": False},
    )  # fmt: skip
    return tmp_path


def start_worker_process(var_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url(db.settings_dict), "VAR_DIR": str(var_dir), "DEBUG": "true"}
    env.pop("CELERY_BROKER_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "WARNING"],
        cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def test_a_worker_killed_mid_batch_loses_nothing_and_applies_nothing_twice(receiver, webhook, group, file_broker):
    webhook_settings = {**webhook.settings, "timeout": 5.0}
    type(webhook).objects.filter(pk=webhook.pk).update(settings=webhook_settings)
    receiver.delay = 0.3  # each batch takes a while, so the kill lands in the middle of a drain
    groups.add_members(group, many_customers(3000))
    worker = start_worker_process(file_broker)
    try:
        sync = services.turn_on(group, webhook)
        wait_until(lambda: receiver.requests >= 3, timeout=60, what="the backfill under way")
        kill(worker)  # mid-backfill
        sync.refresh_from_db()
        assert sync.state == GroupSync.State.BACKFILLING

        worker = start_worker_process(file_broker)
        services.queue_drains(force=True)  # what the periodic sweep does
        wait_until(lambda: settled(receiver, sync, group), timeout=120, what="the backfill finished")

        joining = many_customers(2500, start=10_000)
        requests = receiver.requests
        groups.add_members(group, joining)  # one feed batch of several deliveries
        wait_until(lambda: receiver.requests >= requests + 2, timeout=60, what="the feed batch under way")
        kill(worker)  # mid-batch: some of its deliveries were applied, its position was not stored
        sync.refresh_from_db()
        assert sync.sending_until and receiver.members(sync.remote_id) != members(group)

        worker = start_worker_process(file_broker)
        services.queue_drains(force=True)
        wait_until(lambda: settled(receiver, sync, group), timeout=120, what="the feed batch finished")
    finally:
        kill(worker)
    added = Counter(c for event, c in receiver.member_changes() if event == "group.members_added")
    assert set(added) == members(group) and max(added.values()) == 1
    assert history_statuses(sync) == Counter({"synced": 5500})


def test_klaviyo_failing_stalling_and_rate_limiting_mid_sync_ends_equal_with_each_profile_once(group, worker):
    from integrations.models import Connection
    from tests.fakes.klaviyo import FakeKlaviyo

    with FakeKlaviyo() as klaviyo:
        connection = Connection.objects.create(
            kind="klaviyo", name="Klaviyo", credentials={"api_key": "pk_test_fake"},
            settings={"base_url": klaviyo.url, "timeout": 3.0},
        )  # fmt: skip
        groups.add_members(group, many_customers(2500))
        # Mid-backfill: an import job refused with a 503, a list call answered after the client
        # gave up (but applied), and a 429 with Retry-After.
        klaviyo.fail(503, path="profile-bulk-import-jobs$", times=1)
        klaviyo.stall(4.0, path="relationships", times=1)
        klaviyo.fail(429, path="relationships", retry_after=1, times=2)
        sync = services.turn_on(group, connection)
        later = many_customers(800, start=5000)
        groups.add_members(group, later)
        groups.remove_members(group, later[:100])

        def equal() -> bool:
            sync.refresh_from_db()
            emails = set(Membership.objects.filter(group=group).values_list("customer__email", flat=True))
            return bool(sync.remote_id) and klaviyo.members(sync.remote_id) == emails and status.lag(sync)[0] == 0

        wait_until(equal, timeout=120, what="the Klaviyo list to equal the group")
        assert klaviyo.faults == []  # every fault was met
        emails = Counter(p.get("email") for p in klaviyo.profiles.values())
        assert max(emails.values()) == 1  # a retried batch updated the profiles it had made, made none twice
        assert history_statuses(sync) == Counter({"synced": 3400})
