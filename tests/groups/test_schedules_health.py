"""Scheduled runs and group health: skips, failures with backoff, pausing, stuck runs, staleness, timed activation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

from groups import engine, health, schedules, services
from groups.models import CustomerGroup, RefreshRun
from tests.groups.test_schedules import make_group, utc

pytestmark = pytest.mark.django_db

SIX_PARIS = utc(2026, 5, 4, 4)  # Monday 4 May 2026, 06:00 in Paris


@pytest.fixture
def refreshes(monkeypatch):
    """Replace the membership engine's refresh by one that succeeds and records its reason."""
    reasons: list[str] = []

    def refresh(group, *, reason, initiated_by=None, run=None, now=None):
        reasons.append(reason)
        run = run or RefreshRun.objects.create(group=group, reason=reason)
        RefreshRun.objects.filter(pk=run.pk).update(status="succeeded")
        CustomerGroup.objects.filter(pk=group.pk).update(last_refreshed_at=utc(2026, 1, 1))
        return run

    monkeypatch.setattr(services, "refresh", refresh)
    return reasons


@pytest.fixture
def engine_fails(monkeypatch):
    """The real refresh service, over an engine that fails every time."""

    def evaluate(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(engine, "evaluate", evaluate)


@pytest.fixture
def retries(monkeypatch):
    """Tasks run_scheduled sends (its retries), recorded instead of published."""
    sent: list[tuple[str, dict, float]] = []

    class App:
        def send_task(self, name, kwargs, countdown):
            sent.append((name, kwargs, countdown))

    monkeypatch.setattr(schedules, "current_app", App())
    return sent


# --- scheduled runs ----------------------------------------------------------------------------


def test_a_scheduled_run_refreshes_and_records_when_it_ran(time_machine, refreshes):
    time_machine.move_to(SIX_PARIS, tick=False)
    group = make_group()
    run = schedules.run_scheduled(group.pk)
    assert (run.status, run.reason) == ("succeeded", "schedule")
    assert refreshes == ["schedule"]
    group.refresh_from_db()
    assert group.last_scheduled_run_at == SIX_PARIS


def test_an_inactive_group_is_skipped_and_says_so(time_machine, refreshes):
    time_machine.move_to(SIX_PARIS, tick=False)
    group = make_group(is_active=False)
    run = schedules.run_scheduled(group.pk)
    assert (run.status, run.reason, run.error) == ("skipped", "schedule", "Skipped: the group is inactive.")
    assert refreshes == []
    assert schedules.run_scheduled(group.pk) is None  # that scheduled time is done


def test_a_leftover_task_of_a_deleted_or_unscheduled_group_cleans_itself_up(time_machine, refreshes):
    time_machine.move_to(SIX_PARIS, tick=False)
    group = make_group()
    schedules.sync_schedule(group)
    CustomerGroup.objects.filter(pk=group.pk).update(refresh_mode="events")
    assert schedules.run_scheduled(group.pk) is None
    assert not PeriodicTask.objects.filter(name=schedules.task_name(group.pk)).exists()
    assert schedules.run_scheduled(group.pk + 1000) is None
    assert refreshes == []


def test_a_failed_run_keeps_the_error_and_retries_with_backoff(time_machine, engine_fails, retries):
    time_machine.move_to(SIX_PARIS, tick=False)
    group = make_group()
    run = schedules.run_scheduled(group.pk)
    assert (run.status, run.error) == ("failed", "RuntimeError: the database went away")
    group.refresh_from_db()
    assert (group.last_run_status, group.failure_count, group.last_error) == (
        "failed",
        1,
        "RuntimeError: the database went away",
    )
    assert retries == [("groups.refresh_scheduled", {"group_id": group.pk, "attempt": 1}, 60.0)]

    time_machine.shift(timedelta(minutes=1))
    schedules.run_scheduled(group.pk, attempt=1)  # a retry runs although its scheduled time is claimed
    assert retries[-1] == ("groups.refresh_scheduled", {"group_id": group.pk, "attempt": 2}, 120.0)


def test_repeated_failures_pause_the_group_until_a_refresh_by_hand_succeeds(time_machine, engine_fails, retries):
    time_machine.move_to(SIX_PARIS, tick=False)
    group = make_group()
    schedules.sync_schedule(group)
    for attempt in range(health.MAX_CONSECUTIVE_FAILURES):
        schedules.run_scheduled(group.pk, attempt=attempt)
    group.refresh_from_db()
    assert (group.last_run_status, group.failure_count) == ("failing", health.MAX_CONSECUTIVE_FAILURES)
    assert len(retries) == health.MAX_CONSECUTIVE_FAILURES - 1  # no retry once paused
    assert PeriodicTask.objects.get(name=schedules.task_name(group.pk)).enabled is False

    time_machine.move_to(SIX_PARIS + timedelta(days=1), tick=False)
    run = schedules.run_scheduled(group.pk)  # a firing that raced the pause
    assert run.status == "skipped"
    assert "paused after 5 failed runs in a row" in run.error

    health.record_success(group)  # what a successful refresh by hand records
    group.refresh_from_db()
    assert (group.last_run_status, group.failure_count, group.last_error) == ("succeeded", 0, "")
    assert PeriodicTask.objects.get(name=schedules.task_name(group.pk)).enabled is True


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


def test_due_activations_and_deactivations_apply_once(time_machine, refreshes):
    time_machine.move_to(utc(2026, 5, 4, 12), tick=False)
    now = utc(2026, 5, 4, 12)
    waking = make_group(is_active=False, activate_at=now - timedelta(minutes=1))
    sleeping = make_group(deactivate_at=now)
    later = make_group(is_active=False, activate_at=now + timedelta(hours=1))
    for group in (waking, sleeping, later):
        schedules.sync_schedule(group)

    assert health.apply_due_activations() == 2
    assert health.apply_due_activations() == 0
    for group in (waking, sleeping, later):
        group.refresh_from_db()
    assert (waking.is_active, waking.activate_at) == (True, None)
    assert (sleeping.is_active, sleeping.deactivate_at) == (False, None)
    assert (later.is_active, later.activate_at) == (False, now + timedelta(hours=1))
    assert refreshes == ["activation", "deactivation"]
    enabled = dict(PeriodicTask.objects.filter(name__startswith="groups.refresh:").values_list("name", "enabled"))
    assert enabled == {
        schedules.task_name(waking.pk): True,
        schedules.task_name(sleeping.pk): False,
        schedules.task_name(later.pk): False,
    }


def test_when_both_times_passed_the_later_one_wins(time_machine, refreshes):
    time_machine.move_to(utc(2026, 5, 4, 18), tick=False)
    group = make_group(is_active=False, activate_at=utc(2026, 5, 4, 9), deactivate_at=utc(2026, 5, 4, 17))
    health.apply_due_activations()
    group.refresh_from_db()
    assert (group.is_active, group.activate_at, group.deactivate_at) == (False, None, None)
    assert refreshes == ["activation", "deactivation"]


# --- which scheduled time a firing belongs to -----------------------------------------------------


def test_the_first_time_of_a_changed_schedule_still_runs(time_machine, refreshes):
    time_machine.move_to(SIX_PARIS, tick=False)
    group = make_group()
    assert schedules.run_scheduled(group.pk).status == "succeeded"  # 06:00
    group.schedule = {"frequency": "daily", "time": "06:30"}
    group.save()
    time_machine.move_to(SIX_PARIS + timedelta(minutes=30), tick=False)
    assert schedules.run_scheduled(group.pk).status == "succeeded"  # 06:30 the same morning


def test_a_slightly_early_firing_counts_and_the_on_time_one_does_not_repeat_it(time_machine, refreshes):
    time_machine.move_to(SIX_PARIS - timedelta(minutes=2), tick=False)
    group = make_group()
    assert schedules.run_scheduled(group.pk) is not None
    time_machine.move_to(SIX_PARIS, tick=False)
    assert schedules.run_scheduled(group.pk) is None
    time_machine.move_to(SIX_PARIS - timedelta(minutes=10), tick=False)
    other = make_group()
    assert schedules.run_scheduled(other.pk) is None  # too early to be 06:00's run


def test_a_late_firing_catches_up_once_within_half_the_gap(time_machine, refreshes):
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


def test_sync_all_rebuilds_tasks_and_drops_orphans():
    group = make_group()
    events_only = make_group(refresh_mode="events")
    PeriodicTask.objects.filter(name=schedules.task_name(group.pk)).delete()
    leftover = CrontabSchedule.objects.create(minute="0", hour="6", timezone="UTC")
    # A task whose group is gone without the delete receiver running (e.g. a raw SQL delete).
    PeriodicTask.objects.create(
        name=schedules.task_name(group.pk + 1000), task=schedules.SCHEDULED_TASK, crontab=leftover
    )
    assert schedules.sync_all() == 1
    names = set(PeriodicTask.objects.filter(name__startswith="groups.refresh:").values_list("name", flat=True))
    assert names == {schedules.task_name(group.pk)}
    assert not CrontabSchedule.objects.filter(pk=leftover.pk).exists()
    assert events_only.pk not in {int(name.split(":")[1]) for name in names}


# --- with the real membership engine ------------------------------------------------------------


def test_a_scheduled_run_refreshes_membership_through_the_engine(time_machine):
    from customers.models import Customer

    time_machine.move_to(SIX_PARIS, tick=False)
    Customer.objects.create(email="ana@example.com", role="customer")
    Customer.objects.create(email="bo@example.com", role="staff")
    group = make_group(rules={"field": "role", "op": "eq", "value": "customer"})
    run = schedules.run_scheduled(group.pk)
    assert (run.status, run.reason, run.added, run.removed) == ("succeeded", "schedule", 1, 0)
    group.refresh_from_db()
    assert (group.member_count, group.last_refreshed_at, group.last_scheduled_run_at) == (1, SIX_PARIS, SIX_PARIS)
