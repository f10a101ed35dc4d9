"""Schedules driven by the real beat: django-celery-beat's DatabaseScheduler reading the stored tasks.

These tests run celery beat's own scheduling loop (`tick()`, the due-check of each stored task,
the reload when tasks change) under frozen time, with the project's beat schedule (its
housekeeping entries included), and hand every refresh beat sends to the registered task, as a
worker would; the refresh is the real one, over a few customers. They need real transactions:
the scheduler commits and reconnects like the real beat process does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from config.celery import app
from groups import schedules
from groups.models import CustomerGroup, RefreshRun
from tests.groups.test_schedules import make_group, members, utc

pytestmark = pytest.mark.django_db(transaction=True)

# Beat sends one due task per tick and ticks again at once, so a refresh due at the same moment as
# a housekeeping task goes out a few milliseconds after its time (in these tests the loop steps
# 10 ms per immediate tick). A firing up to this long after a scheduled time is that time's firing.
ON_TIME = timedelta(seconds=1)


class RecordingBeat(DatabaseScheduler):
    """The real database scheduler, except that sending a task records it instead of publishing it."""

    producer = None  # never connect to a broker

    def __init__(self, *args, **kwargs) -> None:
        self.sent: list[tuple[str, dict, datetime]] = []
        super().__init__(*args, **kwargs)
        self._finalize.cancel()  # beat saves its state at process exit; the test database is gone by then

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        self.sent.append((entry.task, dict(entry.kwargs), timezone.now()))


@pytest.fixture(autouse=True)
def worker_tasks():
    app.loader.import_default_modules()  # what a worker does first: register every app's tasks


def run_beat(traveller, beat: RecordingBeat, until: datetime) -> list[datetime]:
    """Tick beat until `until`, sleeping as long as beat asks; each refresh it sends runs at once."""
    fired = []
    while timezone.now() < until:
        already = len(beat.sent)
        delay = beat.tick()
        for task, kwargs, at in beat.sent[already:]:
            if task == schedules.SCHEDULED_TASK:
                fired.append(at)
                app.tasks[task](**kwargs)
        left = (until - timezone.now()).total_seconds()
        traveller.shift(timedelta(seconds=min(delay if delay > 0 else 0.01, left)))
    return fired


def scheduled_runs(group: CustomerGroup) -> list[datetime]:
    """When the group's scheduled refreshes ran; every one of them must have succeeded."""
    runs = RefreshRun.objects.filter(group=group, reason="schedule").order_by("started_at")
    assert {run.status for run in runs} <= {"succeeded"}, [(run.status, run.error) for run in runs]
    return [run.started_at for run in runs]


def in_utc(moments: list[datetime]) -> list[datetime]:
    # Compared in UTC: Python never finds a repeated local time (02:30 on a fall-back night)
    # equal to a datetime in another zone, even at the same instant.
    return [moment.astimezone(UTC) for moment in moments]


def assert_once_per_scheduled_time(moments: list[datetime], scheduled: list[datetime]) -> None:
    """Each scheduled time has exactly one moment, at it or up to ON_TIME after it, and no moment is left over."""
    moments, scheduled = sorted(in_utc(moments)), sorted(in_utc(scheduled))
    belongs = {at: [m for m in moments if at <= m <= at + ON_TIME] for at in scheduled}
    assert all(len(found) == 1 for found in belongs.values()), belongs
    assert len(moments) == len(scheduled), (moments, scheduled)


BEAT_DST_CASES = [
    pytest.param("Europe/Paris", {"frequency": "daily", "time": "02:30"}, utc(2026, 3, 27, 12), 3, id="paris-spring"),
    pytest.param("Europe/Paris", {"frequency": "daily", "time": "02:30"}, utc(2026, 10, 23, 12), 3, id="paris-fall"),
    pytest.param(
        "Europe/Paris", {"frequency": "hourly", "minute": 30}, utc(2026, 3, 28, 20), 0.5, id="paris-spring-hourly"
    ),
    pytest.param(
        "Europe/Paris", {"frequency": "hourly", "minute": 30}, utc(2026, 10, 24, 20), 0.5, id="paris-fall-hourly"
    ),
    pytest.param(
        "Pacific/Auckland", {"frequency": "daily", "time": "02:30"}, utc(2026, 4, 3, 0), 3, id="auckland-fall"
    ),
    pytest.param(
        "Pacific/Auckland", {"frequency": "daily", "time": "02:30"}, utc(2026, 9, 25, 0), 3, id="auckland-spring"
    ),
    pytest.param(
        "Australia/Sydney",
        {"frequency": "weekly", "weekdays": ["sun"], "time": "02:30"},
        utc(2026, 10, 2),
        3,
        id="sydney-spring-weekly",
    ),
    pytest.param(
        "America/New_York",
        {"frequency": "cron", "cron": "*/30 1-2 * * *"},
        utc(2026, 10, 31, 12),
        1.5,
        id="new-york-fall-cron",
    ),
]


@pytest.mark.parametrize(("zone", "schedule", "start", "days"), BEAT_DST_CASES)
def test_beat_runs_each_scheduled_local_time_exactly_once_across_dst(customers, zone, schedule, start, days):
    end = start + timedelta(days=days)
    with time_machine.travel(start, tick=False) as traveller:
        group = make_group(schedule, zone)
        expected = [t for t in schedules.next_runs(group, count=100, after=start) if t <= end]
        beat = RecordingBeat(app=app, max_interval=3600)
        fired = run_beat(traveller, beat, end)
    assert expected, "the window must contain scheduled times"
    assert {task for task, _, _ in beat.sent} > {schedules.SCHEDULED_TASK}  # and its housekeeping tasks alongside
    assert_once_per_scheduled_time(fired, expected)  # beat itself agrees with our arithmetic on these days
    runs = scheduled_runs(group)
    assert_once_per_scheduled_time(runs, expected)
    local_times = {t.astimezone(group.zone).replace(tzinfo=None) for t in expected}
    assert len(local_times) == len(expected)  # and no local time ran twice
    group.refresh_from_db()
    assert group.last_scheduled_run_at == runs[-1]
    assert members(group) == {"ana@example.com"}


def test_beats_due_check_on_the_stored_task_fires_at_the_shifted_instant():
    # Paris, daily at 02:30: on 29 March 2026 that time does not exist and runs at 03:30 summer time.
    with time_machine.travel(utc(2026, 3, 28, 12), tick=False) as traveller:
        group = make_group({"frequency": "daily", "time": "02:30"})
        schedules.sync_schedule(group)
        entry = ModelEntry(PeriodicTask.objects.get(name=schedules.task_name(group.pk)), app=app)
        traveller.move_to(utc(2026, 3, 29, 1, 29, 59))
        due, wait = entry.is_due()
        assert (due, round(wait)) == (False, 1)
        traveller.move_to(utc(2026, 3, 29, 1, 30))
        assert entry.is_due()[0] is True
        entry = next(entry)  # what beat does after sending: remember the run
        due, wait = entry.is_due()
        assert due is False
        assert timezone.now() + timedelta(seconds=wait) == utc(2026, 3, 30, 0, 30)  # 02:30 summer time


def test_a_firing_twice_for_the_same_time_runs_once(customers):
    # Beat sends twice (a known failure mode around DST, or a redelivered message): one run.
    with time_machine.travel(utc(2026, 10, 24, 12), tick=False) as traveller:
        group = make_group({"frequency": "daily", "time": "02:30"})
        traveller.move_to(utc(2026, 10, 25, 0, 30))  # 02:30 summer time, the first 02:30
        assert schedules.run_scheduled(group.pk) is not None
        traveller.shift(timedelta(seconds=3))
        assert schedules.run_scheduled(group.pk) is None
        traveller.move_to(utc(2026, 10, 25, 1, 30))  # 02:30 winter time, the same local time again
        assert schedules.run_scheduled(group.pk) is None
        traveller.move_to(utc(2026, 10, 26, 1, 30, 2))  # the next day's 02:30
        assert schedules.run_scheduled(group.pk) is not None
    assert scheduled_runs(group) == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30, 2)]


def test_a_firing_that_matches_no_scheduled_time_is_ignored(customers):
    # Monthly on day 31: beat fires on the 28th to 31st, and only the month's real day runs.
    with time_machine.travel(utc(2026, 3, 1), tick=False) as traveller:
        group = make_group({"frequency": "monthly", "day": 31, "time": "09:00"}, "UTC")
        for day in (28, 29, 30):
            traveller.move_to(utc(2026, 3, day, 9))
            assert schedules.run_scheduled(group.pk) is None
        traveller.move_to(utc(2026, 3, 31, 9))
        assert schedules.run_scheduled(group.pk) is not None
    assert scheduled_runs(group) == [utc(2026, 3, 31, 9)]


def test_monthly_last_day_through_beat(customers):
    with time_machine.travel(utc(2026, 2, 27), tick=False) as traveller:
        group = make_group({"frequency": "monthly", "day": 30, "time": "09:00"}, "Europe/Paris")
        schedules.sync_schedule(group)
        beat = RecordingBeat(app=app, max_interval=3600)
        fired = run_beat(traveller, beat, utc(2026, 3, 1))
        traveller.move_to(utc(2026, 3, 27))  # nothing is scheduled in between
        fired += run_beat(traveller, beat, utc(2026, 4, 1))
    # 09:00 in Paris on 28 February, then on 28, 29 and 30 March: beat's crontab is wider.
    assert_once_per_scheduled_time(
        fired, [utc(2026, 2, 28, 8), utc(2026, 3, 28, 8), *[utc(2026, 3, d, 7) for d in (29, 30)]]
    )
    assert_once_per_scheduled_time(scheduled_runs(group), [utc(2026, 2, 28, 8), utc(2026, 3, 30, 7)])


def test_a_running_beat_picks_up_a_changed_schedule_without_restart(customers):
    # Saving a group is all it takes: its task follows (post_save -> sync_schedule), and the
    # running scheduler notices the change marker and reloads its tasks before the next due-check.
    with time_machine.travel(utc(2026, 5, 1, 3), tick=False) as traveller:  # 05:00 in Paris
        group = make_group({"frequency": "daily", "time": "06:00"})
        beat = RecordingBeat(app=app, max_interval=60)  # wakes every minute, like a real beat (5 s)
        assert run_beat(traveller, beat, utc(2026, 5, 1, 3, 10)) == []

        group.schedule = {"frequency": "daily", "time": "05:30"}
        group.save()
        other = make_group({"frequency": "hourly", "minute": 45}, "UTC")  # a new group, same beat
        fired = run_beat(traveller, beat, utc(2026, 5, 1, 4, 30))
        # 05:30 in Paris, then :45
        assert_once_per_scheduled_time(fired, [utc(2026, 5, 1, 3, 30), utc(2026, 5, 1, 3, 45)])
        assert members(group) == members(other) == {"ana@example.com"}

        group.is_active = False
        group.save()
        other.refresh_mode = "events"
        other.save()
        assert run_beat(traveller, beat, utc(2026, 5, 2, 6)) == []
    assert_once_per_scheduled_time(scheduled_runs(group), [utc(2026, 5, 1, 3, 30)])
    assert_once_per_scheduled_time(scheduled_runs(other), [utc(2026, 5, 1, 3, 45)])


@pytest.fixture
def site_in_los_angeles():
    """The site (Django and Celery) runs in Los Angeles time."""
    old = app.conf.timezone
    app.conf.timezone = "America/Los_Angeles"
    app.__dict__.pop("timezone", None)  # Celery caches the zone object
    with override_settings(TIME_ZONE="America/Los_Angeles", CELERY_TIMEZONE="America/Los_Angeles"):
        yield
    app.conf.timezone = old
    app.__dict__.pop("timezone", None)


def test_site_time_zone_differing_from_the_groups_keeps_the_groups_times(customers, site_in_los_angeles):
    # Auckland leaves summer time on 5 April; Los Angeles is already in summer time.
    start = utc(2026, 4, 3)
    with time_machine.travel(start, tick=False) as traveller:
        auckland = make_group({"frequency": "daily", "time": "06:00"}, "Pacific/Auckland")
        site_zone = make_group({"frequency": "daily", "time": "06:00"}, "")
        for group in (auckland, site_zone):
            schedules.sync_schedule(group)
        run_beat(traveller, RecordingBeat(app=app, max_interval=3600), start + timedelta(days=4))
    assert_once_per_scheduled_time(
        scheduled_runs(auckland),
        [
            utc(2026, 4, 3, 17),  # 06:00 summer time (+13:00) on the 4th
            utc(2026, 4, 4, 18),  # 06:00 standard time (+12:00) on the 5th: the clocks went back at 03:00
            utc(2026, 4, 5, 18),
            utc(2026, 4, 6, 18),
        ],
    )
    # 06:00 in Los Angeles
    assert_once_per_scheduled_time(scheduled_runs(site_zone), [utc(2026, 4, day, 13) for day in (3, 4, 5, 6)])


def test_two_workers_handed_the_same_firing_run_it_once(customers):
    # Beat sent twice and two workers picked the copies up at the same moment: the claim on the
    # group row is one conditional UPDATE, so exactly one of them runs.
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from django.db import connection

    with time_machine.travel(utc(2026, 5, 4, 4), tick=False):  # 06:00 in Paris
        group = make_group()
        barrier = Barrier(4)

        def worker(_):
            try:
                barrier.wait()
                return schedules.run_scheduled(group.pk)
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(worker, range(4)))
    assert sum(run is not None for run in results) == 1
    assert scheduled_runs(group) == [utc(2026, 5, 4, 4)]
    assert members(group) == {"ana@example.com"}
