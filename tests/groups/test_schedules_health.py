"""Scheduled runs and group health: skips, failures with backoff, pausing, stuck runs, staleness, timed activation.

Every refresh here is the real one (the membership engine over the few customers a test creates).
A failure is a real one too: rules stored in the database that the compiler cannot compile, as a
bad migration or a hand-edited row would leave them. Retries go through the project's Celery app
to kombu's in-memory broker, and the tests read the messages a worker would receive.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from config.celery import app
from customers.models import Customer
from groups import health, schedules, services
from groups.engine import LOCK_NAMESPACE
from groups.models import CustomerGroup, RefreshRun
from tests.groups.test_schedules import CUSTOMERS, make_group, members, utc
from tests.groups.test_stuck_runs import other_connection

pytestmark = pytest.mark.django_db

SIX_PARIS = utc(2026, 5, 4, 4)  # Monday 4 May 2026, 06:00 in Paris
# A field no customer has: saved past validation, the compiler refuses it on every refresh.
BROKEN_RULES = {"field": "shoe_size", "op": "eq", "value": 42}
BROKEN_ERROR = "ValueError: unknown customer field 'shoe_size'"


def break_rules(group: CustomerGroup) -> None:
    """Store rules the compiler cannot compile, bypassing validation (no save(), no signal)."""
    CustomerGroup.objects.filter(pk=group.pk).update(rules=BROKEN_RULES)


@dataclass(frozen=True)
class Message:
    task: str
    kwargs: dict
    eta: datetime


class Broker:
    """Kombu's in-memory broker behind the project's Celery app; reads what was published to it."""

    def take(self) -> list[Message]:
        """Every message waiting on the default queue, oldest first, removed from the queue."""
        taken = []
        with app.connection_for_read() as connection:
            waiting = connection.SimpleQueue(app.conf.task_default_queue, no_ack=True)
            try:
                while True:
                    message = waiting.get(block=False)
                    _args, kwargs, _embed = message.payload
                    eta = datetime.fromisoformat(message.headers["eta"]) if message.headers["eta"] else None
                    taken.append(Message(message.headers["task"], kwargs, eta))
            except queue.Empty:
                pass
            finally:
                waiting.close()
        return taken

    def deliver(self, message: Message) -> None:
        """What a worker does with the message: run the registered task with its arguments."""
        app.tasks[message.task](**message.kwargs)


def _drop_broker_connections() -> None:
    # The app keeps the connection and producer pools it made from the broker URL at first use;
    # forget them (kombu keeps them, per URL, for reuse) so the next message goes to the broker now set.
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker():
    """The project's Celery app publishing to an in-memory broker instead of the configured one."""
    saved = app.conf.broker_url, app.conf.broker_transport_options
    app.conf.broker_url, app.conf.broker_transport_options = "memory://localhost/", {}
    _drop_broker_connections()
    app.loader.import_default_modules()  # what a worker does first: register every app's tasks
    reader = Broker()
    reader.take()  # the in-memory broker lives as long as the process: start empty
    yield reader
    reader.take()
    app.conf.broker_url, app.conf.broker_transport_options = saved
    _drop_broker_connections()


# --- scheduled runs ----------------------------------------------------------------------------


def test_a_scheduled_run_refreshes_membership_and_records_when_it_ran(time_machine, customers):
    time_machine.move_to(SIX_PARIS, tick=False)
    group = make_group()
    run = schedules.run_scheduled(group.pk)
    assert (run.status, run.reason, run.added, run.removed, run.error) == ("succeeded", "schedule", 1, 0, "")
    assert members(group) == {"ana@example.com"}
    group.refresh_from_db()
    assert (group.member_count, group.last_run_status, group.failure_count) == (1, "succeeded", 0)
    assert (group.last_refreshed_at, group.last_scheduled_run_at) == (SIX_PARIS, SIX_PARIS)

    Customer.objects.filter(pk=customers["ana"].pk).update(role="staff")  # no event: only the schedule sees it
    time_machine.move_to(SIX_PARIS + timedelta(days=1), tick=False)
    run = schedules.run_scheduled(group.pk)
    assert (run.status, run.added, run.removed) == ("succeeded", 0, 1)
    assert members(group) == set()


def test_an_inactive_group_is_skipped_and_says_so(time_machine, customers):
    time_machine.move_to(SIX_PARIS, tick=False)
    group = make_group(is_active=False)
    run = schedules.run_scheduled(group.pk)
    assert (run.status, run.reason, run.error) == ("skipped", "schedule", "Skipped: the group is inactive.")
    assert schedules.run_scheduled(group.pk) is None  # that scheduled time is done
    assert list(RefreshRun.objects.filter(group=group)) == [run]
    assert members(group) == set()
    group.refresh_from_db()
    assert (group.last_refreshed_at, group.last_scheduled_run_at) == (None, SIX_PARIS)


def test_a_leftover_task_of_a_deleted_or_unscheduled_group_cleans_itself_up(time_machine, customers):
    time_machine.move_to(SIX_PARIS, tick=False)
    group = make_group()
    schedules.sync_schedule(group)
    CustomerGroup.objects.filter(pk=group.pk).update(refresh_mode="events")
    assert schedules.run_scheduled(group.pk) is None
    assert not PeriodicTask.objects.filter(name=schedules.task_name(group.pk)).exists()
    assert schedules.run_scheduled(group.pk + 1000) is None
    assert not RefreshRun.objects.exists()
    assert members(group) == set()


def test_a_failed_run_keeps_the_error_and_retries_with_backoff(time_machine, customers, broker):
    time_machine.move_to(SIX_PARIS, tick=False)
    group = make_group()
    break_rules(group)
    run = schedules.run_scheduled(group.pk)
    assert (run.status, run.reason, run.error) == ("failed", "schedule", BROKEN_ERROR)
    assert run.finished_at == SIX_PARIS
    group.refresh_from_db()
    assert (group.last_run_status, group.failure_count, group.last_error) == ("failed", 1, BROKEN_ERROR)
    assert group.last_scheduled_run_at == SIX_PARIS
    (retry,) = broker.take()
    assert retry == Message(
        "groups.refresh_scheduled", {"group_id": group.pk, "attempt": 1}, SIX_PARIS + timedelta(minutes=1)
    )

    time_machine.move_to(retry.eta, tick=False)
    broker.deliver(retry)  # a retry runs although its scheduled time is claimed
    (retry,) = broker.take()
    assert retry == Message(
        "groups.refresh_scheduled", {"group_id": group.pk, "attempt": 2}, SIX_PARIS + timedelta(minutes=1 + 2)
    )
    runs = RefreshRun.objects.filter(group=group).order_by("pk")
    assert [(r.reason, r.status, r.error) for r in runs] == [("schedule", "failed", BROKEN_ERROR)] * 2
    group.refresh_from_db()
    assert (group.failure_count, group.last_scheduled_run_at) == (2, SIX_PARIS)


def test_repeated_failures_pause_the_group_until_a_refresh_by_hand_succeeds(
    time_machine, customers, broker, staff_user
):
    time_machine.move_to(SIX_PARIS, tick=False)
    group = make_group()
    schedules.sync_schedule(group)
    break_rules(group)
    schedules.run_scheduled(group.pk)
    retries = []
    while sent := broker.take():  # a worker taking each retry when it is due
        (retry,) = sent
        retries.append(retry)
        time_machine.move_to(retry.eta, tick=False)
        broker.deliver(retry)

    assert [r.kwargs["attempt"] for r in retries] == [1, 2, 3, 4]  # no retry once paused
    etas = [retry.eta for retry in retries]
    waits = [later - earlier for earlier, later in zip([SIX_PARIS, *etas], etas, strict=False)]
    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    runs = RefreshRun.objects.filter(group=group).order_by("pk")
    assert [(r.status, r.error) for r in runs] == [("failed", BROKEN_ERROR)] * health.MAX_CONSECUTIVE_FAILURES
    group.refresh_from_db()
    assert (group.last_run_status, group.failure_count, group.last_error) == (
        "failing",
        health.MAX_CONSECUTIVE_FAILURES,
        BROKEN_ERROR,
    )
    assert PeriodicTask.objects.get(name=schedules.task_name(group.pk)).enabled is False

    time_machine.move_to(SIX_PARIS + timedelta(days=1), tick=False)
    run = schedules.run_scheduled(group.pk)  # a firing that raced the pause
    assert run.status == "skipped"
    assert "paused after 5 failed runs in a row" in run.error
    assert broker.take() == []

    with pytest.raises(ValueError, match="shoe_size"):  # refreshing by hand without a fix fails again
        services.refresh(group, reason="manual_refresh", initiated_by=staff_user)
    group.refresh_from_db()
    assert group.last_run_status == "failing"
    assert PeriodicTask.objects.get(name=schedules.task_name(group.pk)).enabled is False

    CustomerGroup.objects.filter(pk=group.pk).update(rules=CUSTOMERS)  # the row is repaired
    run = services.refresh(group, reason="manual_refresh", initiated_by=staff_user)
    assert (run.status, run.added) == ("succeeded", 1)
    assert members(group) == {"ana@example.com"}
    group.refresh_from_db()
    assert (group.last_run_status, group.failure_count, group.last_error) == ("succeeded", 0, "")
    assert PeriodicTask.objects.get(name=schedules.task_name(group.pk)).enabled is True

    time_machine.move_to(SIX_PARIS + timedelta(days=2), tick=False)
    assert schedules.run_scheduled(group.pk).status == "succeeded"  # the schedule runs again


@pytest.mark.parametrize(("failures", "minutes"), [(0, 1), (1, 1), (2, 2), (3, 4), (4, 8), (6, 32), (7, 60), (30, 60)])
def test_retry_delay_doubles_up_to_an_hour(failures, minutes):
    assert health.retry_delay(failures) == timedelta(minutes=minutes)


def test_record_failure_counts_in_the_database_and_pauses_at_the_limit():
    group = make_group()
    delays = [health.record_failure(group, f"error {n}") for n in range(1, health.MAX_CONSECUTIVE_FAILURES + 1)]
    assert delays == [timedelta(minutes=m) for m in (1, 2, 4, 8)] + [None]
    assert (group.last_run_status, group.failure_count, group.last_error) == ("failing", 5, "error 5")


# --- stuck runs ---------------------------------------------------------------------------------


def test_runs_stuck_past_the_limit_are_failed_and_counted(time_machine):
    time_machine.move_to(utc(2026, 5, 4, 12), tick=False)
    group = make_group()
    now = utc(2026, 5, 4, 12)
    stuck = RefreshRun.objects.create(
        group=group, reason="schedule", status="running", started_at=now - timedelta(minutes=31)
    )
    busy = RefreshRun.objects.create(
        group=group, reason="schedule", status="running", started_at=now - timedelta(minutes=5)
    )
    lost = RefreshRun.objects.create(group=group, reason="manual_refresh", status="queued")
    RefreshRun.objects.filter(pk=lost.pk).update(created_at=now - timedelta(hours=3))
    done = RefreshRun.objects.create(
        group=group, reason="schedule", status="succeeded", started_at=now - timedelta(hours=5)
    )

    # The busy run's worker is alive: it holds its group's lock.
    with other_connection() as worker:
        worker.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, group.pk])
        assert health.reset_stuck_runs(now) == 2
    stuck.refresh_from_db()
    lost.refresh_from_db()
    assert (stuck.status, stuck.finished_at) == ("failed", now)
    assert stuck.error == "Stopped: still running after 30 minutes; the worker probably stopped."
    assert (lost.status, lost.error) == ("failed", "Stopped: still waiting for a worker after 120 minutes.")
    assert RefreshRun.objects.get(pk=busy.pk).status == "running"
    assert RefreshRun.objects.get(pk=done.pk).status == "succeeded"
    group.refresh_from_db()
    assert group.failure_count == 2
    with other_connection() as worker:
        worker.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, group.pk])
        assert health.reset_stuck_runs(now) == 0


# --- staleness ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "last_refreshed_at", "now", "stale"),
    [
        pytest.param(None, utc(2026, 5, 3, 4, 1), utc(2026, 5, 4, 5), False, id="daily-refreshed-yesterday"),
        pytest.param(None, utc(2026, 5, 2, 4, 1), utc(2026, 5, 4, 3), False, id="daily-one-missed"),
        pytest.param(None, utc(2026, 5, 2, 4, 1), utc(2026, 5, 4, 5), True, id="daily-two-missed"),
        pytest.param(
            {"frequency": "weekly", "weekdays": ["mon", "thu"], "time": "06:00"},
            utc(2026, 4, 30, 4, 1),  # Thursday
            utc(2026, 5, 6, 12),  # the next Wednesday: only Monday was missed
            False,
            id="weekly-irregular",
        ),
        pytest.param(
            {"frequency": "hourly", "minute": 0},
            utc(2026, 5, 4, 9, 0),
            utc(2026, 5, 4, 11, 30),
            True,
            id="hourly-two-missed",
        ),
    ],
)
def test_a_group_is_stale_when_it_missed_two_scheduled_times(schedule, last_refreshed_at, now, stale):
    group = make_group(schedule, last_refreshed_at=last_refreshed_at)
    assert health.is_stale(group, now) is stale


def test_inactive_and_event_only_groups_are_never_stale():
    long_ago = utc(2020, 1, 1)
    assert health.is_stale(make_group(is_active=False, last_refreshed_at=long_ago)) is False
    assert health.is_stale(make_group(refresh_mode="events", last_refreshed_at=long_ago)) is False
    stale = make_group(last_refreshed_at=long_ago)
    assert [group.pk for group in health.stale_groups()] == [stale.pk]


# --- timed activation ---------------------------------------------------------------------------


def reasons(group: CustomerGroup) -> list[str]:
    return list(RefreshRun.objects.filter(group=group).order_by("pk").values_list("reason", flat=True))


def test_due_activations_and_deactivations_apply_once(time_machine, customers):
    time_machine.move_to(utc(2026, 5, 4, 12), tick=False)
    now = utc(2026, 5, 4, 12)
    waking = make_group(is_active=False, activate_at=now - timedelta(minutes=1))
    sleeping = make_group(deactivate_at=now)
    later = make_group(is_active=False, activate_at=now + timedelta(hours=1))
    services.refresh(sleeping)
    assert members(sleeping) == {"ana@example.com"}

    assert services.apply_due_activations() == 2
    assert services.apply_due_activations() == 0
    for group in (waking, sleeping, later):
        group.refresh_from_db()
    assert (waking.is_active, waking.activate_at) == (True, None)
    assert (sleeping.is_active, sleeping.deactivate_at) == (False, None)
    assert (later.is_active, later.activate_at) == (False, now + timedelta(hours=1))
    assert (reasons(waking), reasons(sleeping), reasons(later)) == (
        ["activation"],
        ["manual_refresh", "deactivation"],
        [],
    )
    assert not RefreshRun.objects.exclude(status="succeeded").exists()
    assert (members(waking), members(sleeping), members(later)) == ({"ana@example.com"}, set(), set())
    enabled = dict(PeriodicTask.objects.filter(name__startswith="groups.refresh:").values_list("name", "enabled"))
    assert enabled == {
        schedules.task_name(waking.pk): True,
        schedules.task_name(sleeping.pk): False,
        schedules.task_name(later.pk): False,
    }


def test_when_both_times_passed_the_later_one_wins(time_machine, customers):
    time_machine.move_to(utc(2026, 5, 4, 18), tick=False)
    group = make_group(is_active=False, activate_at=utc(2026, 5, 4, 9), deactivate_at=utc(2026, 5, 4, 17))
    services.apply_due_activations()
    group.refresh_from_db()
    assert (group.is_active, group.activate_at, group.deactivate_at) == (False, None, None)
    assert reasons(group) == ["activation", "deactivation"]
    assert members(group) == set()


# --- which scheduled time a firing belongs to -----------------------------------------------------


def test_the_first_time_of_a_changed_schedule_still_runs(time_machine, customers):
    time_machine.move_to(SIX_PARIS, tick=False)
    group = make_group()
    assert schedules.run_scheduled(group.pk).status == "succeeded"  # 06:00
    group.schedule = {"frequency": "daily", "time": "06:30"}
    group.save()
    time_machine.move_to(SIX_PARIS + timedelta(minutes=30), tick=False)
    assert schedules.run_scheduled(group.pk).status == "succeeded"  # 06:30 the same morning


def test_a_slightly_early_firing_counts_and_the_on_time_one_does_not_repeat_it(time_machine, customers):
    time_machine.move_to(SIX_PARIS - timedelta(minutes=2), tick=False)
    group = make_group()
    assert schedules.run_scheduled(group.pk) is not None
    time_machine.move_to(SIX_PARIS, tick=False)
    assert schedules.run_scheduled(group.pk) is None
    time_machine.move_to(SIX_PARIS - timedelta(minutes=10), tick=False)
    other = make_group()
    assert schedules.run_scheduled(other.pk) is None  # too early to be 06:00's run


def test_a_late_firing_catches_up_once_within_half_the_gap(time_machine, customers):
    time_machine.move_to(utc(2026, 5, 4, 9, 29), tick=False)
    group = make_group({"frequency": "hourly", "minute": 0}, "UTC")
    assert schedules.run_scheduled(group.pk) is not None  # 09:00, 29 minutes late
    time_machine.move_to(utc(2026, 5, 4, 10, 31), tick=False)
    assert schedules.run_scheduled(group.pk) is None  # past half the gap: 10:00 is left to the next check


# --- keeping tasks in step ------------------------------------------------------------------------


def test_an_unchanged_sync_writes_nothing(time_machine):
    time_machine.move_to(utc(2026, 5, 4, 12), tick=False)
    group = make_group()
    before = PeriodicTasks.last_change()
    time_machine.shift(timedelta(minutes=1))
    schedules.sync_schedule(group)
    group.save()
    assert PeriodicTasks.last_change() == before
