"""Schedules: the document, its sentence, next/last runs across daylight-saving changes, the beat task."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

from groups import schedules
from groups.models import CustomerGroup, Membership

DAILY = {"frequency": "daily", "time": "06:00"}
CUSTOMERS = {"field": "role", "op": "eq", "value": "customer"}


def make_group(schedule: dict | None = None, time_zone: str = "Europe/Paris", **fields) -> CustomerGroup:
    """A dynamic group of customers with the role "customer", refreshing on events and on `schedule`.

    The schedule is daily at 06:00 unless given.
    """
    count = CustomerGroup.objects.count() + 1
    defaults = {
        "name": f"Group {count}",
        "slug": f"group-{count}",
        "rules": CUSTOMERS,
        "refresh_mode": CustomerGroup.RefreshMode.EVENTS_AND_SCHEDULE,
        "schedule": DAILY if schedule is None else schedule,
        "time_zone": time_zone,
    }
    return CustomerGroup.objects.create(**(defaults | fields))


def members(group: CustomerGroup) -> set[str]:
    """The e-mail addresses of the group's members, as stored."""
    return set(Membership.objects.filter(group=group).values_list("customer__email", flat=True))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- the document ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    [
        {"frequency": "hourly", "minute": 0},
        {"frequency": "hourly", "minute": 59},
        {"frequency": "daily", "time": "00:00"},
        {"frequency": "daily", "time": "23:59"},
        {"frequency": "weekly", "weekdays": ["mon", "sun"], "time": "06:00"},
        {"frequency": "monthly", "day": 31, "time": "09:00"},
        {"frequency": "cron", "cron": "*/15 6-18 * * 1-5"},
        {"frequency": "cron", "cron": "0 9 1,15 jan-jun *"},
        {"frequency": "cron", "cron": "0 9 * * mon"},
    ],
)
def test_valid_schedules_have_no_errors(schedule):
    assert schedules.validate_schedule(schedule, "Pacific/Auckland") == []


@pytest.mark.parametrize(
    ("schedule", "path", "words"),
    [
        ([], "", "must be an object"),
        ({}, "/frequency", "Choose how often"),
        ({"frequency": "yearly"}, "/frequency", "Unknown frequency 'yearly'"),
        ({"frequency": "hourly"}, "/minute", "needs 'minute'"),
        ({"frequency": "hourly", "minute": 60}, "/minute", "0 to 59"),
        ({"frequency": "hourly", "minute": True}, "/minute", "0 to 59"),
        ({"frequency": "daily", "time": "6:00"}, "/time", "HH:MM"),
        ({"frequency": "daily", "time": "24:00"}, "/time", "HH:MM"),
        ({"frequency": "daily", "time": "06:00", "minute": 5}, "/minute", "has no 'minute'"),
        ({"frequency": "weekly", "weekdays": [], "time": "06:00"}, "/weekdays", "at least one weekday"),
        ({"frequency": "weekly", "weekdays": ["monday"], "time": "06:00"}, "/weekdays", "Unknown weekday 'monday'"),
        ({"frequency": "weekly", "weekdays": ["mon", "mon"], "time": "06:00"}, "/weekdays", "once"),
        ({"frequency": "monthly", "day": 0, "time": "09:00"}, "/day", "1 to 31"),
        ({"frequency": "monthly", "day": 32, "time": "09:00"}, "/day", "1 to 31"),
        ({"frequency": "cron", "cron": "0 9 * *"}, "/cron", "five fields"),
        ({"frequency": "cron", "cron": "61 9 * * *"}, "/cron", "minute field '61'"),
        ({"frequency": "cron", "cron": "0 25 * * *"}, "/cron", "hour field '25'"),
        ({"frequency": "cron", "cron": "0 9 * * 7"}, "/cron", "day of week field '7'"),
        ({"frequency": "cron", "cron": "0 9 1 * mon"}, "/cron", "not both"),
        ({"frequency": "cron", "cron": "0 9 30 2 *"}, "/cron", "never runs"),
        ({"frequency": "cron", "cron": "0 9 L * *"}, "/cron", "day of month field 'L'"),
    ],
)
def test_invalid_schedules_say_where_and_why(schedule, path, words):
    errors = schedules.validate_schedule(schedule)
    assert [error["path"] for error in errors] == [path]
    assert words in errors[0]["message"]


@pytest.mark.parametrize("name", ["Mars/Olympus", "europe/paris", "posixrules", " Europe/Paris", 5])
def test_time_zone_must_be_an_iana_name(name):
    errors = schedules.validate_schedule(DAILY, name)
    assert errors == [
        {"path": "/time_zone", "message": f"{name!r} is not an IANA time zone name such as 'Europe/Paris' or 'UTC'."}
    ]


def test_validate_schedule_lists_every_error():
    errors = schedules.validate_schedule({"frequency": "weekly", "weekdays": ["xyz"]}, "Nowhere/Land")
    assert {error["path"] for error in errors} == {"/time_zone", "/weekdays", "/time"}


# --- the sentence -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "zone", "sentence"),
    [
        ({"frequency": "hourly", "minute": 15}, "Europe/Paris", "Every hour at :15"),
        (DAILY, "Europe/Paris", "Every day at 06:00, Europe/Paris"),
        (
            {"frequency": "weekly", "weekdays": ["mon"], "time": "06:00"},
            "Pacific/Auckland",
            "Every Monday at 06:00, Pacific/Auckland",
        ),
        (
            {"frequency": "weekly", "weekdays": ["fri", "mon", "wed"], "time": "18:30"},
            "UTC",
            "Every Monday, Wednesday and Friday at 18:30, UTC",
        ),
        (
            {"frequency": "monthly", "day": 1, "time": "09:00"},
            "Europe/Paris",
            "On day 1 of every month at 09:00, Europe/Paris",
        ),
        (
            {"frequency": "monthly", "day": 31, "time": "09:00"},
            "Europe/Paris",
            "On day 31 of every month (or the last day of a shorter month) at 09:00, Europe/Paris",
        ),
        (
            {"frequency": "cron", "cron": "30 6 * * 1-5"},
            "America/New_York",
            "At 06:30, Monday through Friday (cron 30 6 * * 1-5), America/New_York",
        ),
    ],
)
def test_schedule_reads_as_a_sentence(schedule, zone, sentence):
    assert schedules.describe_schedule(schedule, zone) == sentence


def test_sentence_uses_the_sites_zone_when_the_group_has_none():
    group = CustomerGroup(refresh_mode="events_and_schedule", schedule=DAILY, time_zone="")
    with override_settings(TIME_ZONE="America/Los_Angeles"):
        assert schedules.describe(group) == "Every day at 06:00, America/Los_Angeles"
    assert schedules.describe(CustomerGroup(refresh_mode="events", schedule=DAILY)) == "Refreshes on events only"


# --- next and last runs across daylight-saving changes ----------------------------------------
# Europe/Paris: 29 Mar 2026 02:00 -> 03:00, 25 Oct 2026 03:00 -> 02:00.
# Pacific/Auckland: 5 Apr 2026 03:00 -> 02:00, 27 Sep 2026 02:00 -> 03:00.
# America/New_York: 8 Mar 2026 02:00 -> 03:00, 1 Nov 2026 02:00 -> 01:00.
# Australia/Sydney: 5 Apr 2026 03:00 -> 02:00, 4 Oct 2026 02:00 -> 03:00 (both Sundays).

DST_CASES = [
    pytest.param(  # 02:30 does not exist on the 29th: it runs once, at 03:30 summer time
        "Europe/Paris",
        {"frequency": "daily", "time": "02:30"},
        utc(2026, 3, 27, 12),
        ["2026-03-28 02:30+01:00", "2026-03-29 03:30+02:00", "2026-03-30 02:30+02:00"],
        id="paris-spring-daily",
    ),
    pytest.param(  # 02:30 happens twice on the 25th: it runs at the first one only
        "Europe/Paris",
        {"frequency": "daily", "time": "02:30"},
        utc(2026, 10, 23, 12),
        ["2026-10-24 02:30+02:00", "2026-10-25 02:30+02:00", "2026-10-26 02:30+01:00"],
        id="paris-fall-daily",
    ),
    pytest.param(
        "Europe/Paris",
        {"frequency": "hourly", "minute": 30},
        utc(2026, 3, 28, 23, 45),
        ["2026-03-29 01:30+01:00", "2026-03-29 03:30+02:00", "2026-03-29 04:30+02:00"],
        id="paris-spring-hourly",
    ),
    pytest.param(
        "Europe/Paris",
        {"frequency": "hourly", "minute": 30},
        utc(2026, 10, 24, 23, 45),
        ["2026-10-25 02:30+02:00", "2026-10-25 03:30+01:00", "2026-10-25 04:30+01:00"],
        id="paris-fall-hourly",
    ),
    pytest.param(
        "Pacific/Auckland",
        {"frequency": "daily", "time": "02:30"},
        utc(2026, 4, 3, 0),
        ["2026-04-04 02:30+13:00", "2026-04-05 02:30+13:00", "2026-04-06 02:30+12:00"],
        id="auckland-fall-daily",
    ),
    pytest.param(
        "Pacific/Auckland",
        {"frequency": "daily", "time": "02:30"},
        utc(2026, 9, 25, 0),
        ["2026-09-26 02:30+12:00", "2026-09-27 03:30+13:00", "2026-09-28 02:30+13:00"],
        id="auckland-spring-daily",
    ),
    pytest.param(
        "America/New_York",
        {"frequency": "daily", "time": "01:30"},
        utc(2026, 10, 31, 12),
        ["2026-11-01 01:30-04:00", "2026-11-02 01:30-05:00"],
        id="new-york-fall-daily",
    ),
    pytest.param(
        "America/New_York",
        {"frequency": "cron", "cron": "*/30 2 * * *"},
        utc(2026, 3, 7, 12),
        ["2026-03-08 03:00-04:00", "2026-03-08 03:30-04:00", "2026-03-09 02:00-04:00"],
        id="new-york-spring-cron",
    ),
    pytest.param(
        "Australia/Sydney",
        {"frequency": "weekly", "weekdays": ["sun"], "time": "02:30"},
        utc(2026, 3, 30, 0),
        ["2026-04-05 02:30+11:00", "2026-04-12 02:30+10:00"],
        id="sydney-fall-weekly",
    ),
    pytest.param(
        "Australia/Sydney",
        {"frequency": "weekly", "weekdays": ["sun"], "time": "02:30"},
        utc(2026, 9, 28, 0),
        ["2026-10-04 03:30+11:00", "2026-10-11 02:30+11:00"],
        id="sydney-spring-weekly",
    ),
]


@pytest.mark.parametrize(("zone", "schedule", "after", "expected"), DST_CASES)
def test_next_runs_run_each_local_time_once_across_dst(zone, schedule, after, expected):
    group = CustomerGroup(refresh_mode="events_and_schedule", schedule=schedule, time_zone=zone)
    runs = schedules.next_runs(group, count=len(expected), after=after)
    assert [run.isoformat(" ", "minutes") for run in runs] == expected
    assert all(run.tzinfo == ZoneInfo(zone) for run in runs)


@pytest.mark.parametrize(("zone", "schedule", "after", "expected"), DST_CASES)
def test_last_scheduled_run_walks_back_through_the_same_times(zone, schedule, after, expected):
    group = CustomerGroup(refresh_mode="events_and_schedule", schedule=schedule, time_zone=zone)
    runs = schedules.next_runs(group, count=len(expected), after=after)
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert schedules.last_scheduled_run(group, before=later - timedelta(seconds=1)) == earlier
        assert schedules.last_scheduled_run(group, before=later) == later


def test_monthly_day_past_the_months_end_runs_on_its_last_day():
    group = CustomerGroup(
        refresh_mode="events_and_schedule",
        schedule={"frequency": "monthly", "day": 31, "time": "09:00"},
        time_zone="UTC",
    )
    runs = schedules.next_runs(group, count=4, after=utc(2026, 1, 1))
    assert [run.date().isoformat() for run in runs] == ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]
    leap = schedules.next_runs(group, count=1, after=utc(2028, 2, 1))
    assert leap[0].date().isoformat() == "2028-02-29"


def test_site_time_zone_does_not_move_a_groups_times():
    group = CustomerGroup(refresh_mode="events_and_schedule", schedule=DAILY, time_zone="Pacific/Auckland")
    with override_settings(TIME_ZONE="America/Los_Angeles"):
        in_los_angeles = schedules.next_runs(group, count=3, after=utc(2026, 4, 3))
    with override_settings(TIME_ZONE="Asia/Kolkata"):
        in_kolkata = schedules.next_runs(group, count=3, after=utc(2026, 4, 3))
    assert in_los_angeles == in_kolkata
    assert [run.strftime("%H:%M") for run in in_kolkata] == ["06:00", "06:00", "06:00"]


def test_a_group_without_its_own_zone_follows_the_sites():
    group = CustomerGroup(refresh_mode="events_and_schedule", schedule=DAILY, time_zone="")
    with override_settings(TIME_ZONE="America/Los_Angeles"):
        (run,) = schedules.next_runs(group, count=1, after=utc(2026, 7, 1))
    assert run == utc(2026, 7, 1, 13)  # 06:00 Pacific daylight time


def test_unscheduled_groups_have_no_runs():
    events_only = CustomerGroup(refresh_mode="events", schedule=DAILY)
    manual = CustomerGroup(kind="manual", refresh_mode="events_and_schedule", schedule=DAILY)
    for group in (events_only, manual):
        assert schedules.next_runs(group) == []
        assert schedules.last_scheduled_run(group) is None


# --- the beat task ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_sync_creates_one_task_with_the_groups_zone_and_kwargs():
    group = make_group({"frequency": "weekly", "weekdays": ["mon", "sun"], "time": "06:05"}, "Pacific/Auckland")
    schedules.sync_schedule(group)
    task = PeriodicTask.objects.get(name=f"groups.refresh:{group.pk}")
    assert task.task == "groups.refresh_scheduled"
    assert json.loads(task.kwargs) == {"group_id": group.pk}
    assert task.enabled
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("5", "6", "1,0")
    assert (task.crontab.day_of_month, task.crontab.month_of_year) == ("*", "*")
    assert str(task.crontab.timezone) == "Pacific/Auckland"


@pytest.mark.django_db
def test_sync_changes_the_same_task_and_drops_the_old_crontab():
    group = make_group()
    first = schedules.sync_schedule(group)
    old_crontab = first.crontab_id
    group.schedule = {"frequency": "monthly", "day": 31, "time": "09:00"}
    group.time_zone = "America/New_York"
    second = schedules.sync_schedule(group)
    assert second.pk == first.pk
    assert PeriodicTask.objects.filter(name__startswith="groups.refresh:").count() == 1
    assert (second.crontab.day_of_month, second.crontab.hour, str(second.crontab.timezone)) == (
        "28,29,30,31",
        "9",
        "America/New_York",
    )
    assert not CrontabSchedule.objects.filter(pk=old_crontab).exists()


@pytest.mark.django_db
def test_task_is_disabled_while_the_group_is_inactive_or_failing():
    group = make_group(is_active=False)
    assert schedules.sync_schedule(group).enabled is False
    group.is_active = True
    assert schedules.sync_schedule(group).enabled is True
    group.last_run_status = CustomerGroup.RunStatus.FAILING
    assert schedules.sync_schedule(group).enabled is False


@pytest.mark.parametrize(
    "change",
    [
        {"refresh_mode": "events"},
        {"kind": "manual"},
        {"schedule": {"frequency": "daily"}},
        {"time_zone": "Nowhere/Land"},
    ],
)
@pytest.mark.django_db
def test_task_is_removed_when_the_group_stops_running_on_a_schedule(change):
    group = make_group()
    schedules.sync_schedule(group)
    for field, value in change.items():
        setattr(group, field, value)
    assert schedules.sync_schedule(group) is None
    assert not PeriodicTask.objects.filter(name=f"groups.refresh:{group.pk}").exists()
    assert not CrontabSchedule.objects.filter(periodictask__isnull=True, hour="6", minute="0").exists()


@pytest.mark.django_db
def test_deleting_a_group_removes_its_task():
    group = make_group()
    schedules.sync_schedule(group)
    name = f"groups.refresh:{group.pk}"
    group.delete()
    assert not PeriodicTask.objects.filter(name=name).exists()


@pytest.mark.django_db
def test_every_sync_tells_a_running_beat_to_reload(time_machine):
    time_machine.move_to(utc(2026, 5, 1, 8), tick=False)
    group = make_group()
    schedules.sync_schedule(group)
    first = PeriodicTasks.last_change()
    time_machine.shift(timedelta(seconds=1))
    group.schedule = {"frequency": "daily", "time": "07:00"}
    schedules.sync_schedule(group)
    assert PeriodicTasks.last_change() > first
    time_machine.shift(timedelta(seconds=1))
    group.refresh_mode = "events"
    schedules.sync_schedule(group)
    assert PeriodicTasks.last_change() == utc(2026, 5, 1, 8, 0, 2)


@pytest.mark.parametrize(
    ("refresh_mode", "schedule", "time_zone", "paths"),
    [
        ("events", {}, "", []),
        ("events", {}, "Nowhere/Land", ["/time_zone"]),
        ("events", {"frequency": "daily"}, "", ["/time"]),
        ("events_and_schedule", {}, "", ["/frequency"]),
        ("events_and_schedule", DAILY, "Europe/Paris", []),
    ],
)
def test_group_form_errors_require_a_schedule_only_when_it_is_used(refresh_mode, schedule, time_zone, paths):
    errors = schedules.group_schedule_errors(refresh_mode, schedule, time_zone)
    assert [error["path"] for error in errors] == paths
