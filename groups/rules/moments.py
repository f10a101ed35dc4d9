"""The next moment a customer's result can change by time alone, derived from a rules document.

Next to a rule's condition, `compile_moment` gives one SQL timestamptz expression per customer: the
earliest moment after `now` at which some part of the rule may change value with no new data, or
NULL when time alone can never change it. Each part's moment is exact where the arithmetic is
exact, and otherwise earlier than the true one, never later (docs/engine.md says why):

- a rolling event window (`last N ...`): when its earliest counted event leaves it, or its earliest
  future event enters it (two filtered `min(occurred_at)` columns of the shared event aggregates);
- a date or datetime compared with now (`within_last`, `more_than_ago`, `within_next`): when the
  value crosses the moving bound, in the group's zone;
- an anniversary window: the local midnight the customer enters or leaves it;
- calendar windows change for everyone at once: they have no per-customer moment, the group is
  refreshed whole at each rollover (`boundary_after`), as it is at daylight-saving changes, where
  a day-based bound can step back by an hour.

A moment known to lie ahead (the value is inside a moving window, so it must leave it) is never
given as now or earlier: where the zone's clock makes the arithmetic land there, it becomes the next
microsecond, so the customer is evaluated at the next sweep rather than forgotten.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from typing import Any

from customers.fields import DATE, DATETIME

from . import timeframes
from .compiler import (
    ACCOUNT_MEMBERSHIP_TABLE,
    ACCOUNT_TABLE,
    EVENT_TABLE,
    NOW,
    AtNow,
    RuleCompiler,
    Sql,
    _column_name,
    _shared_event_aliases,
)
from .fields import ACCOUNT, CUSTOMER

RELATIVE_OPS = ("within_last", "more_than_ago", "within_next")
_MICROSECOND = "interval '1 microsecond'"


def compile_moment(compiler: RuleCompiler, doc: dict) -> Sql | None:
    """The next-moment expression of a rules document, compiled by (a fresh) `compiler`."""
    return _Moments(compiler).rule(doc, entity=CUSTOMER, row=compiler.alias)


def depends_on_time(doc: Any) -> bool:
    """Whether time alone can change who matches: the default for always-current groups."""
    return bool(_relative_durations(doc)) or bool(calendar_windows(doc)) or _has_anniversary(doc)


def calendar_windows(doc: Any) -> set[str]:
    """The calendar windows (`this_month`, ...) the rules count events in."""
    found: set[str] = set()
    for node in _nodes(doc):
        window = node.get("window")
        if "event" in node and isinstance(window, dict) and "calendar" in window:
            found.add(window["calendar"])
    return found


def boundary_after(doc: dict, tz: zoneinfo.ZoneInfo, now: dt.datetime) -> dt.datetime | None:
    """The first moment after now at which the whole group must be refreshed: a calendar window
    rolls over, or a daylight-saving change (or a day-based bound's distance from one) makes a
    moving bound step back, so a value it had passed is inside again."""
    moments = [_calendar_rollover(name, now, tz) for name in calendar_windows(doc)]
    days = _day_durations(doc)
    if days or _has_anniversary(doc):
        moments += [m for m in _clock_steps(tz, now, days) if m > now]
    return min(moments, default=None)


# --- per-customer moments -------------------------------------------------------------------------


class _Moments:
    def __init__(self, compiler: RuleCompiler) -> None:
        self.c = compiler
        self.tz = compiler.tz

    def rule(self, node: dict, *, entity: str, row: str) -> Sql | None:
        if "all" in node or "any" in node:
            children = node.get("all", node.get("any"))
            return _least([self.rule(child, entity=entity, row=row) for child in children])
        if "not" in node:
            return self.rule(node["not"], entity=entity, row=row)
        if "field" in node:
            if node["op"] not in (*RELATIVE_OPS, "anniversary_within_next"):
                return None
            source = self.c.source(node["field"], entity=entity, row=row)
            if source.type == DATE:
                return self._date(source, node["op"], node["value"])
            if source.type == DATETIME:
                return self._datetime(source, node["op"], node["value"])
            return None
        if "event" in node:
            return self._event(node, row=row)
        if "account" in node:
            return self._account(node, row=row)
        return None  # in_group: the other group's changes reach this one as they happen

    # Instants -------------------------------------------------------------------------------------

    def _local(self, naive: str, params: tuple) -> Sql:
        """The instant of a local wall-clock time (a SQL timestamp) in the group's zone, read as
        Python reads it with fold=0 (the first of two repeated times); a time skipped by the clock
        going forward gives the instant an hour before the shifted one, which only makes it earlier.
        PostgreSQL alone reads a repeated time as the second one: the LEAST keeps the first."""
        zone = _zone_name(self.tz)
        if _fixed_offset(zone):
            return Sql(f"(({naive}) AT TIME ZONE %s)", params + (zone,))
        return Sql(
            f"LEAST(({naive}) AT TIME ZONE %s, (({naive}) - interval '1 hour') AT TIME ZONE %s + interval '1 hour', "
            f"(({naive}) + interval '1 hour') AT TIME ZONE %s - interval '1 hour')",
            params + (zone,) + params + (zone,) + params + (zone,),
        )

    def _moved(self, instant: Sql, duration: dict, sign: int) -> Sql:
        """An instant moved by a duration as the rule language moves now (see timeframes.shift)."""
        ((unit, amount),) = duration.items()
        if unit == "hours":
            return Sql(f"(({instant.text}) {'+' if sign > 0 else '-'} interval '{int(amount)} hours')", instant.params)
        days = int(timeframes.shift_days(duration))
        wall = f"((({instant.text}) AT TIME ZONE %s) {'+' if sign > 0 else '-'} interval '{days} days')"
        return self._local(wall, instant.params + (_zone_name(self.tz),))

    def _day_start(self, day: Sql) -> Sql:
        return self._local(f"(({day.text})::timestamp)", day.params)

    @staticmethod
    def _ahead(moment: Sql) -> Sql:
        """A moment known to lie ahead, never given as now or earlier (see the module's docstring)."""
        return Sql(f"GREATEST({moment.text}, %s + {_MICROSECOND})", moment.params + (NOW,))

    # Fields ---------------------------------------------------------------------------------------

    def _datetime(self, source, op: str, duration: dict) -> Sql:
        value = source.typed(DATETIME)
        v, vp = value.text, value.params
        low = self.c._shifted(duration, -1)  # now - N: the bound of within_last and more_than_ago
        # When the bound now - N passes the value (it is then strictly before the bound).
        passed = self._ahead(
            Sql(f"({self._moved(value, duration, +1).text} + {_MICROSECOND})", self._moved(value, duration, +1).params)
        )
        if op == "within_last":
            return Sql(
                f"(CASE WHEN {v} > %s THEN {v} WHEN {v} >= %s THEN {passed.text} END)",
                vp + (NOW,) + vp + vp + (low,) + passed.params,
            )
        if op == "more_than_ago":
            return Sql(f"(CASE WHEN {v} >= %s THEN {passed.text} END)", vp + (low,) + passed.params)
        high = self.c._shifted(duration, +1)  # now + N
        reached = self._ahead(self._moved(value, duration, -1))  # when now + N reaches the value
        return Sql(
            f"(CASE WHEN {v} < %s THEN NULL WHEN {v} <= %s THEN {v} + {_MICROSECOND} ELSE {reached.text} END)",
            vp + (NOW,) + vp + (high,) + vp + reached.params,
        )

    def _date(self, source, op: str, value: Any) -> Sql:
        typed = source.typed(DATE)
        v, vp = typed.text, typed.params
        tz = self.tz
        today = AtNow(("today", tz, dt.timedelta()), lambda now: timeframes.today(now, tz))
        if op == "anniversary_within_next":
            return self._anniversary(typed, today, int(value["days"]))
        days = int(timeframes.shift_days(value))

        def start(day_sql: str, params: tuple) -> Sql:
            return self._ahead(self._day_start(Sql(day_sql, params)))

        if op == "within_last":  # today - N <= v <= today
            enters, leaves = start(v, vp), start(f"{v} + {days + 1}", vp)
            return Sql(
                f"(CASE WHEN {v} > %s::date THEN {enters.text} WHEN {v} >= %s::date - {days} THEN {leaves.text} END)",
                vp + (today,) + enters.params + vp + (today,) + leaves.params,
            )
        if op == "more_than_ago":  # v < today - N
            enters = start(f"{v} + {days + 1}", vp)
            return Sql(f"(CASE WHEN {v} >= %s::date - {days} THEN {enters.text} END)", vp + (today,) + enters.params)
        # within_next: today <= v <= today + N
        leaves, enters = start(f"{v} + 1", vp), start(f"{v} - {days}", vp)
        return Sql(
            f"(CASE WHEN {v} < %s::date THEN NULL WHEN {v} <= %s::date + {days} THEN {leaves.text} "
            f"ELSE {enters.text} END)",
            vp + (today,) + vp + (today,) + leaves.params + enters.params,
        )

    def _anniversary(self, typed: Sql, today: AtNow, days: int) -> Sql:
        """The local midnight the customer enters or leaves "the next recurrence is at most N days away".

        A recurrence in year y is the first of the month plus (day - 1) days, which is 1 March for
        29 February in a year without it, as the rule language says.
        """
        v, vp = typed.text, typed.params

        def recurrence(year: str) -> str:
            return f"(make_date({year}, extract(month FROM {v})::int, 1) + (extract(day FROM {v})::int - 1))"

        this_year, next_year = "extract(year FROM %s::date)::int", "(extract(year FROM %s::date)::int + 1)"
        # The next recurrence on or after today, as a one-row subquery so it is written once.
        nearest = (
            f"(SELECT CASE WHEN {recurrence(this_year)} >= %s::date THEN {recurrence(this_year)} "
            f"ELSE {recurrence(next_year)} END AS day)"
        )
        nearest_params = (today,) + vp + vp + (today,) + (today,) + vp + vp + (today,) + vp + vp
        leaves = self._ahead(self._day_start(Sql("r.day + 1")))
        enters = self._ahead(self._day_start(Sql(f"r.day - {days}")))
        return Sql(
            f"(SELECT CASE WHEN r.day IS NULL THEN NULL WHEN r.day - %s::date <= {days} THEN {leaves.text} "
            f"ELSE {enters.text} END FROM {nearest} r)",
            (today,) + leaves.params + enters.params + nearest_params,
        )

    # Events and accounts --------------------------------------------------------------------------

    def _event(self, node: dict, *, row: str) -> Sql | None:
        window = node.get("window")
        if not window or "last" not in window:
            return None  # all time and fixed days never move; calendar windows roll over for everyone
        duration = window["last"]
        unbounded = {key: value for key, value in node.items() if key != "window"}
        if self.c.shared and row == self.c.alias:
            event, events = _shared_event_aliases(self.c.alias)
            match = self.c.event_match(node, event=event)
            counted = self._column(Sql(f"min({event}.occurred_at) FILTER (WHERE {match.text})", match.params), events)
            future = self._future(unbounded, event, events)
        else:
            counted = self._subquery(node, row=row, extra=None)
            future = self._subquery(unbounded, row=row, extra=NOW)
        moved = self._moved(counted, duration, +1)
        # The earliest counted event leaves when the window's start passes it.
        leaves = self._ahead(Sql(f"({moved.text} + {_MICROSECOND})", moved.params))
        return _least([Sql(f"(CASE WHEN {counted.text} IS NOT NULL THEN {leaves.text} END)",
                           counted.params + leaves.params), future])  # fmt: skip

    def _column(self, aggregate: Sql, events: str) -> Sql:
        """A column of the customer's shared row of event aggregates (see event_aggregates_join)."""
        name = _column_name("agg_", aggregate)
        self.c.aggregates[name] = aggregate
        return Sql(f"{events}.{name}")

    def _future(self, node: dict, event: str, events: str) -> Sql:
        match = self.c.event_match(node, event=event)
        aggregate = Sql(
            f"min({event}.occurred_at) FILTER (WHERE {match.text} AND {event}.occurred_at > %s)", match.params + (NOW,)
        )
        return self._column(aggregate, events)

    def _subquery(self, node: dict, *, row: str, extra) -> Sql:
        event = self.c._alias("e")
        where = self.c.event_filter(node, row=row, event=event)
        later = f" AND {event}.occurred_at > %s" if extra is not None else ""
        return Sql(
            f"(SELECT min({event}.occurred_at) FROM {EVENT_TABLE} {event} WHERE {where.text}{later})",
            where.params + ((extra,) if extra is not None else ()),
        )

    def _account(self, node: dict, *, row: str) -> Sql | None:
        membership, account = self.c._alias("am"), self.c._alias("a")
        inner = self.rule(node["account"], entity=ACCOUNT, row=account)
        if inner is None:
            return None
        return Sql(
            f"(SELECT min({inner.text}) FROM {ACCOUNT_MEMBERSHIP_TABLE} {membership} "
            f"JOIN {ACCOUNT_TABLE} {account} ON {account}.id = {membership}.account_id "
            f"WHERE {membership}.customer_id = {row}.id)",
            inner.params,
        )


def _zone_name(tz: dt.tzinfo) -> str:
    """The zone's name for PostgreSQL: groups always have an IANA name; UTC may also come as dt.UTC."""
    name = getattr(tz, "key", None)
    if name:
        return name
    if tz.utcoffset(None) == dt.timedelta(0):
        return "UTC"
    raise ValueError(f"time zone {tz!r} has no IANA name")


@functools.lru_cache(maxsize=128)
def _fixed_offset(zone: str) -> bool:
    """Whether the zone's clock has not changed since 1970 nor will by its rules (UTC, for one):
    its local times are then never repeated nor skipped."""
    return not _offset_changes(zone, 1970, dt.date.today().year + 30)


def _least(parts: list[Sql | None]) -> Sql | None:
    parts = [part for part in parts if part is not None]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return Sql("LEAST(" + ", ".join(p.text for p in parts) + ")", tuple(x for p in parts for x in p.params))


# --- group-wide boundaries ------------------------------------------------------------------------

# Each calendar window rolls over when the window of the same length around now ends.
_ROLLS_WITH = {"today": "today", "yesterday": "today", "this_week": "this_week", "last_week": "this_week",
               "this_month": "this_month", "last_month": "this_month", "this_year": "this_year",
               "last_year": "this_year"}  # fmt: skip


def _calendar_rollover(name: str, now: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    return timeframes.calendar_window(_ROLLS_WITH[name], now, tz)[1]


def _clock_steps(tz: zoneinfo.ZoneInfo, now: dt.datetime, days: set[int]) -> list[dt.datetime]:
    """Where a day-based bound can step back: each change of the zone's UTC offset near now, and the
    moments N days before and after one, for each duration N the rules use (both readings of the
    local time of the change, so that one of them is at or before the step)."""
    reach = dt.timedelta(days=max(days, default=0) + 1)
    moments = []
    for change in _offset_changes(_zone_name(tz), (now - reach).year, (now + reach).year + 1):
        walls = [(change - dt.timedelta(microseconds=1)).astimezone(tz), change.astimezone(tz)]
        moments.append(change)
        for n in days:
            for wall in walls:
                for sign in (1, -1):
                    local = wall.replace(tzinfo=None) + sign * dt.timedelta(days=n)
                    moments.append(local.replace(tzinfo=tz, fold=0).astimezone(dt.UTC))
    return sorted(moments)


@functools.lru_cache(maxsize=128)
def _offset_changes(zone: str, first_year: int, last_year: int) -> tuple[dt.datetime, ...]:
    """The instants (UTC) at which the zone's UTC offset changes, in these years."""
    tz = zoneinfo.ZoneInfo(zone)
    changes = []
    moment = dt.datetime(first_year, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(last_year + 1, 1, 1, tzinfo=dt.UTC)
    step = dt.timedelta(hours=6)
    while moment < end:
        later = moment + step
        if moment.astimezone(tz).utcoffset() != later.astimezone(tz).utcoffset():
            low, high = moment, later  # the old offset at low, the new one at high
            while high - low > dt.timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(tz).utcoffset() == low.astimezone(tz).utcoffset():
                    low = middle
                else:
                    high = middle
            # Offsets change on a whole second: the first one after low.
            changes.append(low.replace(microsecond=0) + dt.timedelta(seconds=1))
        moment = later
    return tuple(changes)


# --- reading the document -------------------------------------------------------------------------


def _nodes(doc: Any):
    if isinstance(doc, dict):
        yield doc
        for value in doc.values():
            yield from _nodes(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from _nodes(item)


def _relative_durations(doc: Any) -> list[dict]:
    found = []
    for node in _nodes(doc):
        if "field" in node and node.get("op") in RELATIVE_OPS and isinstance(node.get("value"), dict):
            found.append(node["value"])
        window = node.get("window")
        if "event" in node and isinstance(window, dict) and isinstance(window.get("last"), dict):
            found.append(window["last"])
    return found


def _day_durations(doc: Any) -> set[int]:
    return {timeframes.shift_days(d) for d in _relative_durations(doc) if len(d) == 1 and "hours" not in d}


def _has_anniversary(doc: Any) -> bool:
    return any(node.get("op") == "anniversary_within_next" for node in _nodes(doc) if "field" in node)
