"""Refresh schedules: the schedule document, its times in the group's zone, and its beat task.

A schedule document is one of:

    {"frequency": "hourly", "minute": 15}
    {"frequency": "daily", "time": "06:00"}
    {"frequency": "weekly", "weekdays": ["mon", "thu"], "time": "06:00"}
    {"frequency": "monthly", "day": 31, "time": "09:00"}   # short months run on their last day
    {"frequency": "cron", "cron": "*/30 6-18 * * 1-5"}    # minute hour day-of-month month day-of-week

Times are wall-clock times in the group's time zone (`group.time_zone`, empty = the site's).
Around daylight-saving changes each scheduled local time runs once: a time that does not exist
(spring forward) runs at the shifted instant (02:30 becomes 03:30), and a time that happens
twice (fall back) runs at its first occurrence only.

Beat (django-celery-beat) fires the task; `run_scheduled` then decides, with our own arithmetic,
which scheduled time the firing belongs to and claims that time on the group row, so a beat that
fires twice, late, or on an extra day (celery's crontab has known DST bugs, and a monthly "day 31"
needs a wider crontab) still gives exactly one run per scheduled time.
"""

from __future__ import annotations

import calendar
import json
import logging
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from celery import current_app
from celery.schedules import crontab, crontab_parser
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

from config.timezones import is_time_zone_name

from .models import CustomerGroup, Reason, RefreshRun

logger = logging.getLogger(__name__)

SCHEDULED_TASK = "groups.refresh_scheduled"
FREQUENCIES = ("hourly", "daily", "weekly", "monthly", "cron")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = Python's date.weekday()
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
KEYS = {
    "hourly": ("minute",),
    "daily": ("time",),
    "weekly": ("weekdays", "time"),
    "monthly": ("day", "time"),
    "cron": ("cron",),
}
CRON_FIELDS = (  # (name, celery parser max, min) in the order of a cron expression
    ("minute", 60, 0),
    ("hour", 24, 0),
    ("day of month", 31, 1),
    ("month", 12, 1),
    ("day of week", 7, 0),
)
TIME_PATTERN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# A firing up to this long after a scheduled time is its (late or catch-up) run; later ones, like a
# monthly crontab's extra days, are not ours. Also capped at half the gap to the next scheduled time.
MAX_LATE = timedelta(hours=12)
# A firing this much before a scheduled time still counts as its run (beat and worker clocks differ).
# Also capped at a quarter of the gap, so the windows of neighbouring times never overlap.
MAX_EARLY = timedelta(minutes=5)
# Far enough to find the next 29 February of a cron schedule; the search stops early otherwise.
SEARCH_DAYS = 366 * 8 + 2


# --- the document ---------------------------------------------------------------------------


def validate_schedule(schedule: Any, time_zone: str = "") -> list[dict]:
    """Every problem of a schedule document and time zone, each {"path", "message"}; [] = valid.

    A time zone problem has the path "/time_zone" (the group's field, not part of the document).
    """
    errors = _zone_errors(time_zone)
    if not isinstance(schedule, dict):
        return [_error("", 'A schedule must be an object such as {"frequency": "daily", "time": "06:00"}.'), *errors]
    frequency = schedule.get("frequency")
    if frequency not in FREQUENCIES:
        message = "Choose how often the group refreshes: " + ", ".join(FREQUENCIES) + "."
        if frequency is not None:
            message = f"Unknown frequency {frequency!r}. {message}"
        return [_error("/frequency", message), *errors]
    allowed = ("frequency", *KEYS[frequency])
    for key in schedule:
        if key not in allowed:
            errors.append(_error(f"/{key}", f"A {frequency} schedule has no {key!r}; it takes {', '.join(allowed)}."))
    for key in KEYS[frequency]:
        if key not in schedule:
            errors.append(_error(f"/{key}", f"A {frequency} schedule needs {key!r}."))
            continue
        message = _FIELD_CHECKS[key](schedule[key])
        if message:
            errors.append(_error(f"/{key}", message))
    return errors


def group_schedule_errors(refresh_mode: str, schedule: Any, time_zone: str) -> list[dict]:
    """What a group form or the API rejects before saving a group's refresh settings.

    The schedule is required in "events + schedule" mode; in "events only" mode it may be left
    empty, and one kept for later must still be valid.
    """
    if refresh_mode != CustomerGroup.RefreshMode.EVENTS_AND_SCHEDULE and schedule in ({}, None):
        return _zone_errors(time_zone)
    return validate_schedule(schedule, time_zone)


def is_scheduled(group: CustomerGroup) -> bool:
    """Whether the group refreshes on a schedule at all (active or not), with a usable schedule."""
    return (
        group.kind == CustomerGroup.Kind.DYNAMIC
        and group.refresh_mode == CustomerGroup.RefreshMode.EVENTS_AND_SCHEDULE
        and not validate_schedule(group.schedule, group.time_zone)
    )


def _error(path: str, message: str) -> dict:
    return {"path": path, "message": message}


def _zone_errors(name: Any) -> list[dict]:
    if name == "":
        return []
    if not is_time_zone_name(name):
        return [_error("/time_zone", f"{name!r} is not an IANA time zone name such as 'Europe/Paris' or 'UTC'.")]
    return []


def _check_minute(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 59:
        return "The minute past the hour must be a whole number from 0 to 59."
    return ""


def _check_time(value: Any) -> str:
    if not isinstance(value, str) or not TIME_PATTERN.match(value):
        return "The time of day must be written HH:MM on a 24-hour clock, such as 06:00 or 18:30."
    return ""


def _check_weekdays(value: Any) -> str:
    if not isinstance(value, list) or not value:
        return 'Choose at least one weekday, as a list such as ["mon", "thu"].'
    unknown = [day for day in value if day not in WEEKDAYS]
    if unknown:
        return f"Unknown weekday {unknown[0]!r}; use {', '.join(WEEKDAYS)}."
    if len(set(value)) != len(value):
        return "Each weekday may appear once."
    return ""


def _check_day(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 31:
        return "The day of the month must be a whole number from 1 to 31 (short months run on their last day)."
    return ""


def _check_cron(value: Any) -> str:
    if not isinstance(value, str):
        return "A cron expression is text with five fields: minute hour day-of-month month day-of-week."
    fields = value.split()
    if len(fields) != 5:
        return (
            "A cron expression has five fields (minute hour day-of-month month day-of-week); "
            f"this one has {len(fields)}."
        )
    for (name, max_, min_), field in zip(CRON_FIELDS, fields, strict=True):
        try:
            values = crontab_parser(max_, min_).parse(field)
        except Exception as exc:  # celery's parser raises ValueError or its own ParseException
            return f"The {name} field {field!r} is not valid: {exc}"
        if not values or any(not min_ <= v < max_ + min_ for v in values):
            return f"The {name} field {field!r} must stay within {min_}-{max_ + min_ - 1}."
    if fields[2] != "*" and fields[4] != "*":
        # Classic cron runs when EITHER day field matches, celery when BOTH do; refusing the
        # combination keeps our arithmetic and beat's in agreement.
        return "Restrict the day of the month or the day of the week, not both."
    try:
        crontab(
            minute=fields[0], hour=fields[1], day_of_month=fields[2], month_of_year=fields[3], day_of_week=fields[4]
        )
    except ValueError as exc:  # e.g. 30 February: no date ever matches
        return f"The cron expression never runs: {exc}"
    return ""


_FIELD_CHECKS = {
    "minute": _check_minute,
    "time": _check_time,
    "weekdays": _check_weekdays,
    "day": _check_day,
    "cron": _check_cron,
}


# --- the pattern: which local wall-clock times run ---------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """A valid schedule as sets of calendar values, plus the crontab fields beat is given."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]  # days of the month
    months: frozenset[int]
    weekdays: frozenset[int]  # celery numbering: Sunday = 0
    month_day: int | None  # monthly: this day, or the month's last day when the month is shorter
    crontab: dict[str, str]  # minute, hour, day_of_week, day_of_month, month_of_year

    def runs_on(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        if self.month_day is not None:
            return day.day == min(self.month_day, calendar.monthrange(day.year, day.month)[1])
        return day.day in self.days and day.isoweekday() % 7 in self.weekdays

    def local_times(self) -> list[time]:
        return [time(h, m) for h in sorted(self.hours) for m in sorted(self.minutes)]


def pattern_of(schedule: dict) -> Pattern:
    """The pattern of a valid schedule document (see validate_schedule)."""
    frequency = schedule["frequency"]
    hour, minute = "*", "0"
    day_of_week, day_of_month = "*", "*"
    month_day = None
    if frequency == "hourly":
        minute = str(schedule["minute"])
    elif frequency == "cron":
        minute, hour, day_of_month, month, day_of_week = schedule["cron"].split()
        return _pattern(minute, hour, day_of_week, day_of_month, month, None)
    else:
        hour, minute = (str(int(part)) for part in schedule["time"].split(":"))
    if frequency == "weekly":
        day_of_week = ",".join(
            str((WEEKDAYS.index(d) + 1) % 7) for d in sorted(schedule["weekdays"], key=WEEKDAYS.index)
        )
    if frequency == "monthly":
        month_day = schedule["day"]
        # Beat cannot say "day 31, or the last day of a shorter month", so it fires on every day
        # that could be that day; run_scheduled ignores the firings that are not.
        day_of_month = str(month_day) if month_day <= 28 else ",".join(str(d) for d in range(28, month_day + 1))
    return _pattern(minute, hour, day_of_week, day_of_month, "*", month_day)


def _pattern(minute: str, hour: str, day_of_week: str, day_of_month: str, month: str, month_day: int | None) -> Pattern:
    cron = crontab(minute=minute, hour=hour, day_of_week=day_of_week, day_of_month=day_of_month, month_of_year=month)
    return Pattern(
        minutes=frozenset(cron.minute),
        hours=frozenset(cron.hour),
        days=frozenset(cron.day_of_month),
        months=frozenset(cron.month_of_year),
        weekdays=frozenset(cron.day_of_week),
        month_day=month_day,
        crontab={
            "minute": minute,
            "hour": hour,
            "day_of_week": day_of_week,
            "day_of_month": day_of_month,
            "month_of_year": month,
        },
    )


# --- times: next and last scheduled runs, in the group's zone -----------------------------------


def instant(local: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The moment a naive local wall-clock time happens in `zone`.

    fold=0 picks the first of two repeated times, and for a time skipped by the clock going
    forward it uses the offset from before the change, which lands at the shifted instant
    (02:30 on a 02:00 -> 03:00 night is 03:30).
    """
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _instants_on(pattern: Pattern, zone: zoneinfo.ZoneInfo, day: date) -> list[datetime]:
    if not pattern.runs_on(day):
        return []
    return [instant(datetime.combine(day, t), zone) for t in pattern.local_times()]


def _search(pattern: Pattern, zone: zoneinfo.ZoneInfo, around: datetime, count: int, forward: bool) -> list[datetime]:
    """Up to `count` distinct scheduled instants strictly after (or at or before) `around`, nearest first.

    Days are walked one at a time; a shifted spring-forward time can move past a later local time,
    so one more day is read after enough are found, then the instants are sorted and de-duplicated
    (two local times that land on the same instant run once).
    """
    step = timedelta(days=1 if forward else -1)
    day = around.astimezone(zone).date() - step
    found: set[datetime] = set()
    enough_at = None
    for index in range(SEARCH_DAYS):
        for moment in _instants_on(pattern, zone, day):
            if (moment > around) if forward else (moment <= around):
                found.add(moment)
        if enough_at is None and len(found) >= count:
            enough_at = index
        elif enough_at is not None:
            break
        day += step
    ordered = sorted(found, reverse=not forward)
    return [moment.astimezone(zone) for moment in ordered[:count]]


def next_runs(group: CustomerGroup, count: int = 5, after: datetime | None = None) -> list[datetime]:
    """The next `count` scheduled runs after `after` (default now), in the group's zone; [] if unscheduled."""
    if not is_scheduled(group):
        return []
    after = after or timezone.now()
    return _search(pattern_of(group.schedule), group.zone, after, count, forward=True)


def last_scheduled_run(group: CustomerGroup, before: datetime | None = None) -> datetime | None:
    """The latest scheduled time at or before `before` (default now), in the group's zone."""
    if not is_scheduled(group):
        return None
    found = _search(pattern_of(group.schedule), group.zone, before or timezone.now(), 1, forward=False)
    return found[0] if found else None


def previous_runs(group: CustomerGroup, count: int, before: datetime | None = None) -> list[datetime]:
    """The latest `count` scheduled times at or before `before`, latest first (used for staleness)."""
    if not is_scheduled(group):
        return []
    return _search(pattern_of(group.schedule), group.zone, before or timezone.now(), count, forward=False)


@dataclass(frozen=True)
class Slot:
    """A scheduled time and the window of firings that count as its run."""

    at: datetime
    opens: datetime
    closes: datetime


def slot_for(group: CustomerGroup, moment: datetime) -> Slot | None:
    """The scheduled time a firing at `moment` belongs to, or None when it belongs to none.

    A firing belongs to a scheduled time from a little before it (clock skew) to half the gap
    to the next one (a late or catch-up firing), at most MAX_LATE. These windows never overlap,
    so each firing belongs to at most one scheduled time.
    """
    pattern, zone = pattern_of(group.schedule), group.zone
    before = _search(pattern, zone, moment, 2, forward=False)
    after = _search(pattern, zone, moment, 2, forward=True)
    times = sorted(before + after)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    late = min([MAX_LATE, *(gap / 2 for gap in gaps)])
    early = min([MAX_EARLY, *(gap / 4 for gap in gaps)])
    if after and after[0] - moment <= early:
        return Slot(after[0], after[0] - early, after[0] + late)
    if before and moment - before[0] <= late:
        return Slot(before[0], before[0] - early, before[0] + late)
    return None


# --- words ---------------------------------------------------------------------------------------


def describe(group: CustomerGroup) -> str:
    """The schedule as a sentence staff read on the group, e.g. "Every Monday at 06:00, Pacific/Auckland"."""
    if group.refresh_mode == CustomerGroup.RefreshMode.ALWAYS_CURRENT:
        return "Always current: changes on events and by time, with no schedule"
    if group.refresh_mode != CustomerGroup.RefreshMode.EVENTS_AND_SCHEDULE:
        return "Refreshes on events only"
    if validate_schedule(group.schedule, group.time_zone):
        return "No valid schedule"
    return describe_schedule(group.schedule, group.time_zone_name)


def describe_schedule(schedule: dict, time_zone: str) -> str:
    """The sentence for a valid schedule document in a time zone."""
    frequency = schedule["frequency"]
    if frequency == "hourly":
        return f"Every hour at :{schedule['minute']:02d}"
    if frequency == "daily":
        return f"Every day at {schedule['time']}, {time_zone}"
    if frequency == "weekly":
        names = [WEEKDAY_NAMES[WEEKDAYS.index(d)] for d in sorted(schedule["weekdays"], key=WEEKDAYS.index)]
        return f"Every {_join(names)} at {schedule['time']}, {time_zone}"
    if frequency == "monthly":
        day = schedule["day"]
        shorter = " (or the last day of a shorter month)" if day > 28 else ""
        return f"On day {day} of every month{shorter} at {schedule['time']}, {time_zone}"
    from cron_descriptor import ExpressionDescriptor, Options

    options = Options()
    options.use_24hour_time_format = True
    return f"{ExpressionDescriptor(schedule['cron'], options).get_description()} (cron {schedule['cron']}), {time_zone}"


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


# --- the beat task -------------------------------------------------------------------------------


def task_name(group_id: int) -> str:
    return f"groups.refresh:{group_id}"


def sync_schedule(group: CustomerGroup) -> PeriodicTask | None:
    """Create, change or remove the group's one beat task to match the group; the one place that does.

    The task exists while the group is dynamic, in "events + schedule" mode and has a valid
    schedule; it is enabled only while the group is also active and not paused as failing.
    Call it after saving a group's refresh mode, schedule, time zone, kind or active state.
    """
    with transaction.atomic():
        if not is_scheduled(group):
            _remove(group.pk)
            return None
        pattern = pattern_of(group.schedule)
        cron, _ = CrontabSchedule.objects.get_or_create(**pattern.crontab, timezone=group.time_zone_name)
        enabled = group.is_active and group.last_run_status != CustomerGroup.RunStatus.FAILING
        wanted = {
            "task": SCHEDULED_TASK,
            "crontab_id": cron.pk,
            "interval_id": None,
            "solar_id": None,
            "clocked_id": None,
            "kwargs": json.dumps({"group_id": group.pk}),
            "enabled": enabled,
            "one_off": False,
            "description": f"Scheduled refresh of group {group.pk}: {describe(group)}",
        }
        task = PeriodicTask.objects.select_for_update().filter(name=task_name(group.pk)).first()
        if task is None:
            task = PeriodicTask(name=task_name(group.pk), last_run_at=timezone.now())
        elif all(getattr(task, field) == value for field, value in wanted.items()):
            return task  # unchanged: no write, and no reload of every task in a running beat
        old_crontab_id = task.crontab_id
        if (task.crontab_id, task.enabled) != (cron.pk, enabled):
            # Count from now, so a changed or re-enabled schedule does not fire at once for a time
            # that passed before the change (beat would treat it as a missed run).
            task.last_run_at = timezone.now()
        for field, value in wanted.items():
            setattr(task, field, value)
        task.save()
        if old_crontab_id and old_crontab_id != cron.pk:
            _drop_unused_crontab(old_crontab_id)
        # save() already notes the change unless the row came back marked unchanged; be explicit,
        # since a running beat only reloads when this timestamp moves.
        PeriodicTasks.update_changed()
        return task


def remove_schedule(group_id: int) -> None:
    """Remove a group's beat task (the group was deleted); does nothing if there is none."""
    with transaction.atomic():
        _remove(group_id)


def _remove(group_id: int) -> None:
    task = PeriodicTask.objects.filter(name=task_name(group_id)).first()
    if task is None:
        return
    crontab_id = task.crontab_id
    task.delete()
    if crontab_id:
        _drop_unused_crontab(crontab_id)
    PeriodicTasks.update_changed()


def _drop_unused_crontab(crontab_id: int) -> None:
    CrontabSchedule.objects.filter(pk=crontab_id, periodictask__isnull=True).delete()


# Saving or deleting a group through the ORM (admin, API, seed data) keeps its task in step.
# Writes by queryset.update() send no signal: their callers call sync_schedule themselves.
@receiver(post_save, sender=CustomerGroup, dispatch_uid="groups.schedules.sync_on_save")
def _sync_on_save(sender, instance: CustomerGroup, raw: bool = False, **kwargs) -> None:
    if not raw:  # fixtures load rows before their relations are complete
        sync_schedule(instance)


@receiver(post_delete, sender=CustomerGroup, dispatch_uid="groups.schedules.remove_on_delete")
def _remove_on_delete(sender, instance: CustomerGroup, **kwargs) -> None:
    remove_schedule(instance.pk)


# --- a scheduled run -----------------------------------------------------------------------------


def run_scheduled(group_id: int, *, attempt: int = 0, now: datetime | None = None) -> RefreshRun | None:
    """The body of the "groups.refresh_scheduled" task that beat fires for a group.

    Claims the scheduled time the firing belongs to (at most one run per scheduled time, however
    often beat fires), then refreshes: skipped if the group is inactive or paused as failing.
    A failure is retried with backoff (`attempt` counts retries; retries skip the claim).
    Returns the run, or None when the firing was not for a scheduled time still to be run.
    """
    from . import health, services  # services imports the engine; keep this module light

    now = now or timezone.now()
    group = CustomerGroup.objects.filter(pk=group_id).first()
    if group is None:
        remove_schedule(group_id)
        return None
    if not is_scheduled(group):
        sync_schedule(group)  # a leftover task: the group no longer runs on a schedule
        return None
    if attempt == 0 and not _claim(group, now):
        return None
    if not group.is_active:
        return _skipped(group, "Skipped: the group is inactive.")
    if group.last_run_status == CustomerGroup.RunStatus.FAILING:
        return _skipped(
            group, f"Skipped: paused after {group.failure_count} failed runs in a row; refresh it by hand to resume."
        )
    run = RefreshRun.objects.create(group=group, reason=Reason.SCHEDULE, rule_version=group.rule_version)
    try:
        services.refresh(group, reason=Reason.SCHEDULE, run=run)
    except Exception:
        logger.exception("Scheduled refresh of group %s failed", group_id)
        delay = health.after_failure(group)
        if delay is not None:
            current_app.send_task(
                SCHEDULED_TASK, kwargs={"group_id": group_id, "attempt": attempt + 1}, countdown=delay.total_seconds()
            )
    run.refresh_from_db()
    return run


def _claim(group: CustomerGroup, now: datetime) -> bool:
    """Atomically mark the scheduled time this firing belongs to as run; False if not ours to run."""
    slot = slot_for(group, now)
    if slot is None:
        return False
    # Any run of this scheduled time happened inside its window; a run stamped before the window
    # belongs to an earlier time (possibly of a schedule since changed), so this one is still due.
    claimed = (
        CustomerGroup.objects.filter(pk=group.pk)
        .filter(Q(last_scheduled_run_at__isnull=True) | Q(last_scheduled_run_at__lt=slot.opens))
        .update(last_scheduled_run_at=now)
    )
    if claimed:
        group.last_scheduled_run_at = now
    return bool(claimed)


def _skipped(group: CustomerGroup, why: str) -> RefreshRun:
    now = timezone.now()
    return RefreshRun.objects.create(
        group=group,
        reason=Reason.SCHEDULE,
        status=RefreshRun.Status.SKIPPED,
        rule_version=group.rule_version,
        started_at=now,
        finished_at=now,
        duration_ms=0,
        error=why,
    )


def scheduled_groups() -> Iterator[CustomerGroup]:
    """Every group that refreshes on a schedule (for staleness checks)."""
    queryset = CustomerGroup.objects.dynamic().filter(refresh_mode=CustomerGroup.RefreshMode.EVENTS_AND_SCHEDULE)
    return (group for group in queryset.iterator() if is_scheduled(group))
