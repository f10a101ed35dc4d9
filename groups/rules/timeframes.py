"""Turns days, durations and calendar windows into exact instants in the group's time zone."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo


def today(now: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.date:
    """`today` of the rule language: now's date in the group's time zone."""
    return now.astimezone(tz).date()


def day_start(day: dt.date, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The first instant of a local day, in UTC.

    Local midnight can fall in a DST gap in a few zones; fold=0 then reads it with the offset in force
    before the change, which is the first instant of the new day.
    """
    return dt.datetime.combine(day, dt.time.min, tzinfo=tz).astimezone(dt.UTC)


def day_span(first: dt.date, last: dt.date, tz: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) covering the local days first..last, both included."""
    return day_start(first, tz), day_start(last + dt.timedelta(days=1), tz)


def shift(now: dt.datetime, tz: zoneinfo.ZoneInfo, duration: dict, sign: int) -> dt.datetime:
    """now plus or minus a duration, in UTC.

    Days and weeks are calendar days in the group's zone (the same local time N days earlier, as a person
    means "in the last 7 days"), so a window does not shift by an hour across a DST change; hours are exact.
    """
    ((unit, amount),) = duration.items()
    if unit == "hours":
        return (now + sign * dt.timedelta(hours=amount)).astimezone(dt.UTC)
    days = amount * 7 if unit == "weeks" else amount
    local = now.astimezone(tz).replace(tzinfo=None) + sign * dt.timedelta(days=days)
    return local.replace(tzinfo=tz).astimezone(dt.UTC)


def shift_days(duration: dict) -> int:
    """A date-field duration as a number of days (date fields accept days or weeks)."""
    ((unit, amount),) = duration.items()
    return amount * 7 if unit == "weeks" else amount


def calendar_window(name: str, now: dt.datetime, tz: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a calendar window around now in the group's zone; weeks start on Monday."""
    day = today(now, tz)
    if name == "today":
        first = last = day
    elif name == "yesterday":
        first = last = day - dt.timedelta(days=1)
    elif name in ("this_week", "last_week"):
        first = day - dt.timedelta(days=day.weekday()) - dt.timedelta(days=7 if name == "last_week" else 0)
        last = first + dt.timedelta(days=6)
    elif name == "this_month":
        first = day.replace(day=1)
        last = _next_month(first) - dt.timedelta(days=1)
    elif name == "last_month":
        last = day.replace(day=1) - dt.timedelta(days=1)
        first = last.replace(day=1)
    elif name == "this_year":
        first, last = dt.date(day.year, 1, 1), dt.date(day.year, 12, 31)
    elif name == "last_year":
        first, last = dt.date(day.year - 1, 1, 1), dt.date(day.year - 1, 12, 31)
    else:
        raise ValueError(f"unknown calendar window '{name}'")
    return day_span(first, last, tz)


def _next_month(first: dt.date) -> dt.date:
    return dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)


@functools.lru_cache(maxsize=64)  # pure, and asked again at every evaluation of a birthday rule
def anniversary_keys(start: dt.date, days: int) -> list[str]:
    """The 'MM-DD' of every date whose next yearly recurrence falls within start..start+days.

    29 February recurs on 1 March in years without it. A year ahead covers every month and day.
    """
    keys: list[str] = []
    for offset in range(min(days, 366) + 1):
        day = start + dt.timedelta(days=offset)
        keys.append(f"{day.month:02d}-{day.day:02d}")
        if day.month == 3 and day.day == 1 and not _is_leap(day.year):
            keys.append("02-29")
    return sorted(set(keys))


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
