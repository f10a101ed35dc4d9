"""Compiles a valid rules document to one SQL condition over customers, with psycopg placeholders."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from psycopg import sql as psycopg_sql

from customers.fields import BOOLEAN, DATE, DATETIME, NUMBER, TEXT
from customers.values import is_number, parse_day

from . import timeframes
from .fields import ACCOUNT, ATTRIBUTES_PREFIX, CUSTOMER, DATE_SQL_PATTERN, DATETIME_SQL_PATTERN, JSON, Catalogue
from .operators import NEGATIONS

CUSTOMER_TABLE = "customers_customer"
EVENT_TABLE = "customers_event"
ACCOUNT_TABLE = "customers_account"
ACCOUNT_MEMBERSHIP_TABLE = "customers_accountmembership"
MEMBERSHIP_TABLE = "groups_membership"

_ALIAS_RE = re.compile(r"^[a-z_][a-z0-9_]{0,30}$")
_COMPARISONS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass(frozen=True)
class Sql:
    """A fragment of SQL and the parameters of its %s placeholders, in order."""

    text: str
    params: tuple = ()

    def negate(self) -> Sql:
        return Sql(f"(NOT {self.text})", self.params)


@dataclass(frozen=True)
class AtNow:
    """A parameter that depends on the time of evaluation, such as the start of "the last 30 days".

    The compiler leaves it as a function of `now`, so the SQL of a rule is compiled once per rule
    version and only these few values are computed at each evaluation. `key` names the value (the
    same key means the same value at any now), so rules that share a window compute it once.
    """

    key: tuple
    value_at: Callable[[dt.datetime], Any] = field(compare=False)


@dataclass(frozen=True)
class Compiled:
    """A compiled rule: SQL text whose parameters may depend on `now` (see AtNow).

    Compiled shared, the text reads event counts and sums as columns of one row per customer, and
    the customer's derived values (a typed attribute, a lower-cased field, a month and day) as
    columns of another; `aggregates` and `values` hold the SQL of each column by name (see
    event_aggregates_join and customer_values_join).
    """

    text: str
    params: tuple
    aggregates: dict = field(default_factory=dict, compare=False)
    values: dict = field(default_factory=dict, compare=False)
    # The next moment the rule's result can change by time alone, per customer (groups/rules/moments.py),
    # with its own aggregates and values; None when time alone never changes it. Derived from the
    # same rules as the text, so it takes no part in comparisons.
    moment: Compiled | None = field(default=None, compare=False)

    def at(self, now: dt.datetime) -> tuple[str, list]:
        return self.text, resolve(self.params, now)


def resolve(params, now: dt.datetime) -> list:
    """The parameters with every AtNow computed for `now` (an aware datetime), each key once."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    now = now.astimezone(dt.UTC)
    values: dict[AtNow, Any] = {}
    resolved = []
    for param in params:
        if isinstance(param, AtNow):
            if param not in values:
                values[param] = param.value_at(now)
            param = values[param]
        resolved.append(param)
    return resolved


NOW = AtNow(("now",), lambda now: now)
Instant = dt.datetime | AtNow
TRUE = Sql("TRUE")
FALSE = Sql("FALSE")


def join(separator: str, parts: list[Sql], empty: Sql) -> Sql:
    if not parts:
        return empty
    if len(parts) == 1:
        return parts[0]
    return Sql(
        "(" + f" {separator} ".join(part.text for part in parts) + ")",
        tuple(param for part in parts for param in part.params),
    )


def compile_rules(
    doc: dict,
    *,
    now: dt.datetime,
    tz: zoneinfo.ZoneInfo,
    catalogue: Catalogue,
    alias: str = "c",
) -> tuple[str, list]:
    """One SQL boolean expression over `customers_customer` aliased `alias`, and its parameters.

    The document must be valid (see validate_rules). `now` is a parameter, never the database's clock,
    so a refresh is reproducible. The expression is never NULL.
    """
    return compile_template(doc, tz=tz, catalogue=catalogue, alias=alias).at(now)


def compile_template(
    doc: dict, *, tz: zoneinfo.ZoneInfo, catalogue: Catalogue, alias: str = "c", shared: bool = False
) -> Compiled:
    """The rule compiled for any `now`: call `.at(now)` for the SQL and parameters of one evaluation.

    With `shared`, the customer's event conditions read columns of one row of aggregates (see
    event_aggregates_join) instead of each running its own subquery, and the values derived from
    the customer's fields read columns of one row of values (see customer_values_join). That suits
    evaluating many groups for a known set of customers: each customer's events are read, and each
    derived value computed, once for all groups.
    """
    from .moments import compile_moment  # it builds on this module

    compiler = RuleCompiler(tz=tz, catalogue=catalogue, alias=alias, shared=shared)
    condition = _compiled(compiler, compiler.rule(doc))
    # Its own compiler, so the moment's aggregates and values stay apart from the condition's: they
    # are read only where the group is always current.
    moments = RuleCompiler(tz=tz, catalogue=catalogue, alias=alias, shared=shared)
    moment = compile_moment(moments, doc)
    if moment is None:
        return condition
    return Compiled(
        condition.text,
        condition.params,
        aggregates=condition.aggregates,
        values=condition.values,
        moment=_compiled(moments, moment),
    )


def _compiled(compiler: RuleCompiler, sql: Sql) -> Compiled:
    aggregates = {name: _inline_constants(aggregate) for name, aggregate in compiler.aggregates.items()}
    values = {name: _inline_constants(value) for name, value in compiler.values.items()}
    inlined = _inline_constants(sql)
    return Compiled(inlined.text, inlined.params, aggregates=aggregates, values=values)


def event_aggregates_join(aggregates: dict[str, Compiled], alias: str = "c") -> Compiled:
    """A join that gives each customer row `alias` one row of the named event aggregates."""
    if not aggregates:
        return Compiled("", ())
    columns = _select_list(aggregates)
    row, events = _shared_event_aliases(alias)
    return Compiled(
        f"CROSS JOIN LATERAL (SELECT {columns.text} FROM {EVENT_TABLE} {row} "
        f"WHERE {row}.customer_id = {alias}.id) {events}",
        columns.params,
    )


def customer_values_join(values: dict[str, Compiled], alias: str = "c") -> Compiled:
    """A join that gives each customer row `alias` one row of the named values derived from it."""
    if not values:
        return Compiled("", ())
    columns = _select_list(values)
    # OFFSET 0 keeps the subquery whole: pulled up into the query, each value would be computed
    # again wherever a group's condition names it.
    row = _shared_values_alias(alias)
    return Compiled(f"CROSS JOIN LATERAL (SELECT {columns.text} OFFSET 0) {row}", columns.params)


def _select_list(named: dict[str, Compiled]) -> Compiled:
    """`sql AS name, ...` in name order, with the parameters in the same order."""
    names = sorted(named)
    return Compiled(
        ", ".join(f"{named[name].text} AS {name}" for name in names),
        tuple(param for name in names for param in named[name].params),
    )


def _shared_values_alias(alias: str) -> str:
    return f"{alias}_values"


def _shared_event_aliases(alias: str) -> tuple[str, str]:
    """The aliases of one event row and of the row of aggregates, in shared-events compilation."""
    return f"{alias}_event", f"{alias}_events"


def _inline_constants(sql: Sql) -> Compiled:
    """The rule's own values become SQL literals (quoted by psycopg); only values computed from now
    stay parameters. The planner then sees the constants, even in a plan made once for any
    parameters, and an evaluation sends a handful of parameters instead of every value of every rule."""
    params = iter(sql.params)
    kept: list[AtNow] = []

    def substitute(match: re.Match) -> str:
        if match.group() == "%%":
            return "%%"
        param = next(params)
        if isinstance(param, AtNow):
            kept.append(param)
            return "%s"
        return psycopg_sql.Literal(param).as_string(None).replace("%", "%%")

    return Compiled(re.sub(r"%[s%]", substitute, sql.text), tuple(kept))


def _column_name(prefix: str, sql: Sql) -> str:
    """A column name that is the same for the same SQL in any rule, so groups share the column."""
    identity = repr((sql.text, [p.key if isinstance(p, AtNow) else repr(p) for p in sql.params]))
    return prefix + hashlib.md5(identity.encode(), usedforsecurity=False).hexdigest()[:16]


def render_sql(sql: str, params: list) -> str:
    """The SQL with its parameters inlined as literals, to show a person the query as it runs."""
    from django.db import connection
    from psycopg import ClientCursor

    connection.ensure_connection()
    with ClientCursor(connection.connection) as cursor:
        return cursor.mogrify(sql, params)


def _number(value: Any) -> Decimal:
    # Through repr, 0.1 stays 0.1 rather than its binary approximation, like the JSON it came from.
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


@dataclass(frozen=True)
class Source:
    """Where a field condition reads its value: a typed column, or a key of a JSON object column."""

    type: str
    column: str | None = None
    json: str | None = None
    key: str | None = None
    # Given in shared compilation: turns a value derived from the customer row into a column of the
    # row of shared values (see customer_values_join).
    share: Callable[[Sql], Sql] | None = field(default=None, compare=False)

    def _shared(self, sql: Sql) -> Sql:
        return self.share(sql) if self.share else sql

    def raw(self) -> Sql:
        """The stored value as is (for explanations)."""
        if self.column:
            return Sql(self.column)
        return Sql(f"({self.json} -> %s)", (self.key,))

    def empty(self) -> Sql:
        if self.column:
            if self.type == TEXT:
                return Sql(f"({self.column} IS NULL OR {self.column} = '')")
            return Sql(f"({self.column} IS NULL)")
        # A missing key gives NULL; JSON null and "" are the other two faces of empty.
        return Sql(f"COALESCE(({self.json} -> %s) IN ('null'::jsonb, '\"\"'::jsonb), TRUE)", (self.key,))

    def typed(self, kind: str) -> Sql:
        """The value as `kind`, NULL when it is empty or of another JSON type (which then never matches)."""
        return self._shared(self._typed(kind)) if self.json else self._typed(kind)

    def lowered(self) -> Sql:
        """The text value in lower case, for comparisons that ignore case."""
        typed = self._typed(TEXT)
        return self._shared(Sql(f"lower({typed.text})", typed.params))

    def _typed(self, kind: str) -> Sql:
        if self.column:
            return Sql(self.column)
        item, text, key = f"({self.json} -> %s)", f"({self.json} ->> %s)", self.key
        if kind == TEXT:
            return Sql(f"(CASE WHEN jsonb_typeof{item} = 'string' THEN {text} END)", (key, key))
        if kind == NUMBER:
            return Sql(f"(CASE WHEN jsonb_typeof{item} = 'number' THEN {text}::numeric END)", (key, key))
        if kind == BOOLEAN:
            return Sql(f"(CASE WHEN jsonb_typeof{item} = 'boolean' THEN {text}::boolean END)", (key, key))
        if kind in (DATE, DATETIME):
            # Only a string of the exact shape that names a real day is cast: CASE evaluates in order, so a
            # malformed value (written before the attribute was declared) is "not a date", never an error.
            pattern = DATE_SQL_PATTERN if kind == DATE else DATETIME_SQL_PATTERN
            cast = "::date" if kind == DATE else "::timestamptz"
            sql = (
                f"(CASE WHEN jsonb_typeof{item} = 'string' AND {text} ~ '{pattern}' "
                f"THEN CASE WHEN {_real_day(text)} THEN {text}{cast} END END)"
            )
            return Sql(sql, (key,) * sql.count("%s"))
        raise ValueError(f"no SQL type for {kind}")

    def month_day(self) -> Sql:
        typed = self._typed(DATE)
        return self._shared(Sql(f"to_char({typed.text}, 'MM-DD')", typed.params))


def _real_day(text: str) -> str:
    """SQL true when text, shaped YYYY-MM-DD..., names a day that exists (no 30 February, no year 0)."""
    year, month, day = (
        f"substr({text}, 1, 4)::integer",
        f"substr({text}, 6, 2)::integer",
        f"substr({text}, 9, 2)::integer",
    )
    leap = f"(mod({year}, 4) = 0 AND (mod({year}, 100) <> 0 OR mod({year}, 400) = 0))"
    return (
        f"({year} > 0 AND {day} <= CASE {month} WHEN 2 THEN CASE WHEN {leap} THEN 29 ELSE 28 END "
        f"WHEN 4 THEN 30 WHEN 6 THEN 30 WHEN 9 THEN 30 WHEN 11 THEN 30 ELSE 31 END)"
    )


class RuleCompiler:
    """Compiles rule nodes; explain_rules reuses its per-node SQL so both always agree."""

    def __init__(self, *, tz: zoneinfo.ZoneInfo, catalogue: Catalogue, alias: str = "c", shared: bool = False) -> None:
        if not _ALIAS_RE.match(alias):
            raise ValueError(f"alias must be a plain lower-case SQL identifier, not {alias!r}")
        self.tz = tz
        self.shared = shared
        self.aggregates: dict[str, Sql] = {}
        self.values: dict[str, Sql] = {}
        self.catalogue = catalogue
        self.alias = alias
        self._aliases = 0

    def _alias(self, prefix: str) -> str:
        # Subqueries get their own aliases so nothing shadows the caller's alias or another subquery.
        self._aliases += 1
        return f"{self.alias}_{prefix}{self._aliases}"

    # Rules ------------------------------------------------------------------------------------------------

    def rule(self, node: dict, *, entity: str = CUSTOMER, row: str | None = None) -> Sql:
        row = row or self.alias
        if "all" in node:
            return join("AND", [self.rule(child, entity=entity, row=row) for child in node["all"]], TRUE)
        if "any" in node:
            return join("OR", [self.rule(child, entity=entity, row=row) for child in node["any"]], FALSE)
        if "not" in node:
            return self.rule(node["not"], entity=entity, row=row).negate()
        if "field" in node:
            return self.field_condition(node, entity=entity, row=row)
        if "event" in node:
            return self.event_condition(node, row=row)
        if "account" in node:
            return self.account_condition(node, row=row)
        if "in_group" in node:
            return self.in_group_condition(node, row=row)
        raise ValueError(f"not a rule: {node!r}")

    def source(self, field: str, *, entity: str, row: str) -> Source:
        share = self._share_value if self.shared and row == self.alias else None
        if field.startswith(ATTRIBUTES_PREFIX):
            key = field[len(ATTRIBUTES_PREFIX) :]
            type_ = self.catalogue.attribute_type(entity, key) or JSON
            return Source(type_, json=f"{row}.attributes", key=key, share=share)
        type_ = self.catalogue.field_type(entity, field)
        if type_ is None:
            raise ValueError(f"unknown {entity} field {field!r}")
        return Source(type_, column=f"{row}.{field}", share=share)

    def _share_value(self, value: Sql) -> Sql:
        name = _column_name("val_", value)
        self.values[name] = value
        return Sql(f"{_shared_values_alias(self.alias)}.{name}")

    def field_condition(self, node: dict, *, entity: str, row: str) -> Sql:
        return self.operation(self.source(node["field"], entity=entity, row=row), node["op"], node.get("value"))

    # Operators ----------------------------------------------------------------------------------------------

    def operation(self, source: Source, op: str, value: Any) -> Sql:
        """A never-NULL condition: negative operators are exact negations of the positive ones."""
        if op in NEGATIONS:
            return self.operation(source, NEGATIONS[op], value).negate()
        if op == "is_empty":
            return source.empty()
        if op == "is_not_empty":
            return source.empty().negate()
        # Every positive operator is false on an empty or mistyped value, which the typed value gives as NULL.
        sql = self._positive(source, op, value)
        return Sql(f"COALESCE({sql.text}, FALSE)", sql.params)

    def _positive(self, source: Source, op: str, value: Any) -> Sql:
        type_ = source.type
        if op in ("eq", "in") and type_ == JSON:
            values = value if op == "in" else [value]
            texts = [item for item in values if isinstance(item, str)]
            booleans = [item for item in values if isinstance(item, bool)]
            numbers = [item for item in values if is_number(item)]
            parts = []
            if texts:
                parts.append(self._text_in(source, texts))
            if numbers:
                parts.append(self._number_in(source.typed(NUMBER), numbers))
            for item in booleans:
                parts.append(Sql(f"({source.typed(BOOLEAN).text} = %s)", source.typed(BOOLEAN).params + (item,)))
            return join("OR", parts, FALSE)
        if op in ("eq", "in"):
            values = value if op == "in" else [value]
            if type_ == TEXT:
                return self._text_in(source, values)
            if type_ == NUMBER:
                return self._number_in(source.typed(NUMBER), values)
            if type_ == BOOLEAN:
                typed = source.typed(BOOLEAN)
                return Sql(f"({typed.text} = %s)", typed.params + (value,))
        if op in ("contains", "starts_with", "ends_with"):
            lowered = source.lowered()
            if op == "contains":
                return Sql(f"(strpos({lowered.text}, lower(%s)) > 0)", lowered.params + (value,))
            if op == "starts_with":
                return Sql(f"starts_with({lowered.text}, lower(%s))", lowered.params + (value,))
            return Sql(f"(right({lowered.text}, length(lower(%s))) = lower(%s))", lowered.params + (value, value))
        if op in ("gt", "gte", "lt", "lte"):
            typed = source.typed(NUMBER)
            return Sql(f"({typed.text} {_COMPARISONS[op]} %s::numeric)", typed.params + (_number(value),))
        if op == "between" and type_ in (NUMBER, JSON):
            typed = source.typed(NUMBER)
            return Sql(
                f"({typed.text} BETWEEN %s::numeric AND %s::numeric)",
                typed.params + (_number(value[0]), _number(value[1])),
            )
        if op in ("is_true", "is_false"):
            typed = source.typed(BOOLEAN)
            return Sql(typed.text if op == "is_true" else f"(NOT {typed.text})", typed.params)
        if type_ == DATE:
            return self._date(source, op, value)
        if type_ == DATETIME:
            return self._datetime(source, op, value)
        raise ValueError(f"operator {op!r} does not apply to {type_}")

    @staticmethod
    def _text_in(source: Source, values: list[str]) -> Sql:
        lowered = source.lowered()
        if len(values) == 1:
            return Sql(f"({lowered.text} = lower(%s))", lowered.params + (values[0],))
        # Lower-case the list in the database too, so both sides follow the same case rules.
        return Sql(
            f"({lowered.text} IN (SELECT lower(v) FROM unnest(%s::text[]) AS v))", lowered.params + (list(values),)
        )

    @staticmethod
    def _number_in(typed: Sql, values: list) -> Sql:
        if len(values) == 1:
            return Sql(f"({typed.text} = %s::numeric)", typed.params + (_number(values[0]),))
        return Sql(f"({typed.text} = ANY(%s::numeric[]))", typed.params + ([_number(item) for item in values],))

    def _date(self, source: Source, op: str, value: Any) -> Sql:
        typed = source.typed(DATE)
        if op == "anniversary_within_next":
            month_day = source.month_day()
            tz, days = self.tz, value["days"]
            # One text parameter rather than an array: cheaper to send at every evaluation.
            keys = AtNow(
                ("anniversary", tz, days),
                lambda now: ",".join(timeframes.anniversary_keys(timeframes.today(now, tz), days)),
            )
            return Sql(f"({month_day.text} = ANY(string_to_array(%s, ',')))", month_day.params + (keys,))
        low, high = self._day_bounds(op, value)
        parts = []
        if low is not None:
            parts.append(Sql(f"({typed.text} >= %s::date)", typed.params + (low,)))
        if high is not None:
            parts.append(Sql(f"({typed.text} <= %s::date)", typed.params + (high,)))
        return join("AND", parts, TRUE)

    def _day_bounds(self, op: str, value: Any) -> tuple[dt.date | AtNow | None, dt.date | AtNow | None]:
        """Both-included bounds on a date value for the day-based operators (`today` is in the group's zone)."""
        one_day = dt.timedelta(days=1)
        if op == "before":
            return None, parse_day(value) - one_day
        if op == "after":
            return parse_day(value) + one_day, None
        if op == "on":
            return parse_day(value), parse_day(value)
        if op == "between":
            return parse_day(value[0]), parse_day(value[1])
        days, tz = dt.timedelta(days=timeframes.shift_days(value)), self.tz

        def today_plus(delta: dt.timedelta) -> AtNow:
            return AtNow(("today", tz, delta), lambda now: timeframes.today(now, tz) + delta)

        if op == "within_last":
            return today_plus(-days), today_plus(dt.timedelta())
        if op == "more_than_ago":
            return None, today_plus(-days - one_day)
        if op == "within_next":
            return today_plus(dt.timedelta()), today_plus(days)
        raise ValueError(f"operator {op!r} does not apply to a date")

    def _datetime(self, source: Source, op: str, value: Any) -> Sql:
        typed = source.typed(DATETIME)
        low, high, high_included = self._instant_bounds(op, value)
        parts = []
        if low is not None:
            parts.append(Sql(f"({typed.text} >= %s)", typed.params + (low,)))
        if high is not None:
            parts.append(Sql(f"({typed.text} {'<=' if high_included else '<'} %s)", typed.params + (high,)))
        return join("AND", parts, TRUE)

    def _instant_bounds(self, op: str, value: Any) -> tuple[Instant | None, Instant | None, bool]:
        """[low, high) or [low, high] on an instant; day-based operators use days in the group's zone."""
        tz = self.tz
        if op == "before":
            return None, timeframes.day_start(parse_day(value), tz), False
        if op == "after":
            return timeframes.day_start(parse_day(value) + dt.timedelta(days=1), tz), None, False
        if op == "on":
            return (*timeframes.day_span(parse_day(value), parse_day(value), tz), False)
        if op == "between":
            return (*timeframes.day_span(parse_day(value[0]), parse_day(value[1]), tz), False)
        if op == "within_last":
            return self._shifted(value, -1), NOW, True
        if op == "more_than_ago":
            return None, self._shifted(value, -1), False
        if op == "within_next":
            return NOW, self._shifted(value, +1), True
        raise ValueError(f"operator {op!r} does not apply to a datetime")

    def _shifted(self, duration: dict, sign: int) -> AtNow:
        tz = self.tz
        ((unit, amount),) = duration.items()
        return AtNow(("shift", tz, unit, amount, sign), lambda now: timeframes.shift(now, tz, duration, sign))

    # Events -------------------------------------------------------------------------------------------------

    def event_filter(self, node: dict, *, row: str, event: str) -> Sql:
        """Which of the customer's events count: name, window, where-conditions (uses the event index)."""
        own = self.event_match(node, event=event)
        return Sql(f"{event}.customer_id = {row}.id AND {own.text}", own.params)

    def event_match(self, node: dict, *, event: str) -> Sql:
        """Whether one event counts for the condition: its name, window and where-conditions."""
        parts = [Sql(f"{event}.name = %s", (node["event"],))]
        window = node.get("window")
        if window:
            ((kind, value),) = window.items()
            if kind == "last":
                low, high, included = self._shifted(value, -1), NOW, True
            elif kind == "calendar":
                tz = self.tz
                low = AtNow(("calendar", tz, value, 0), lambda now: timeframes.calendar_window(value, now, tz)[0])
                high = AtNow(("calendar", tz, value, 1), lambda now: timeframes.calendar_window(value, now, tz)[1])
                included = False
            else:
                (low, high), included = timeframes.day_span(parse_day(value[0]), parse_day(value[1]), self.tz), False
            parts.append(Sql(f"{event}.occurred_at >= %s", (low,)))
            parts.append(Sql(f"{event}.occurred_at {'<=' if included else '<'} %s", (high,)))
        for item in node.get("where", []):
            parts.append(self.operation(self.property_source(item["property"], event), item["op"], item.get("value")))
        return Sql(" AND ".join(part.text for part in parts), tuple(p for part in parts for p in part.params))

    @staticmethod
    def property_source(prop: str, event: str) -> Source:
        if prop == "amount":
            return Source(NUMBER, column=f"{event}.amount")
        return Source(JSON, json=f"{event}.properties", key=prop)

    def summed(self, prop: str, event: str) -> Sql:
        # Events where the property is missing or not a number add nothing (NULL is skipped by sum).
        return self.property_source(prop, event).typed(NUMBER)

    def event_condition(self, node: dict, *, row: str) -> Sql:
        if self.shared and row == self.alias:
            return self._shared_event_condition(node)
        event = self._alias("e")
        where = self.event_filter(node, row=row, event=event)
        if "sum" in node:
            spec = node["sum"]
            summed = self.summed(spec["property"], event)
            aggregate = Sql(
                f"(SELECT COALESCE(sum({summed.text}), 0) FROM {EVENT_TABLE} {event} WHERE {where.text})",
                summed.params + where.params,
            )
            return self._compare(aggregate, spec["op"], spec["value"], "::numeric")
        spec = node.get("count") or {"op": "gte", "value": 1}
        op, bound = spec["op"], spec["value"]
        # The common shapes become semi-joins, which stop at the first matching event.
        if (op == "gte" and bound == 1) or (op == "gt" and bound == 0) or (op == "neq" and bound == 0):
            return Sql(f"EXISTS (SELECT 1 FROM {EVENT_TABLE} {event} WHERE {where.text})", where.params)
        if (op == "eq" and bound == 0) or (op == "lt" and bound == 1) or (op == "lte" and bound == 0):
            return Sql(f"NOT EXISTS (SELECT 1 FROM {EVENT_TABLE} {event} WHERE {where.text})", where.params)
        aggregate = Sql(f"(SELECT count(*) FROM {EVENT_TABLE} {event} WHERE {where.text})", where.params)
        return self._compare(aggregate, op, bound, "")

    def _shared_event_condition(self, node: dict) -> Sql:
        """The condition on a column of the customer's row of event aggregates (see compile_template)."""
        event, events = _shared_event_aliases(self.alias)
        match = self.event_match(node, event=event)
        if "sum" in node:
            spec = node["sum"]
            summed = self.summed(spec["property"], event)
            aggregate = Sql(
                f"COALESCE(sum({summed.text}) FILTER (WHERE {match.text}), 0)", summed.params + match.params
            )
            cast = "::numeric"
        else:
            spec = node.get("count") or {"op": "gte", "value": 1}
            aggregate, cast = Sql(f"count(*) FILTER (WHERE {match.text})", match.params), ""
        name = _column_name("agg_", aggregate)
        self.aggregates[name] = aggregate
        return self._compare(Sql(f"{events}.{name}"), spec["op"], spec["value"], cast)

    @staticmethod
    def _compare(aggregate: Sql, op: str, bound: Any, cast: str) -> Sql:
        if op == "between":
            return Sql(
                f"({aggregate.text} BETWEEN %s{cast} AND %s{cast})",
                aggregate.params + (_number(bound[0]), _number(bound[1])),
            )
        return Sql(f"({aggregate.text} {_COMPARISONS[op]} %s{cast})", aggregate.params + (_number(bound),))

    def event_values(self, node: dict, *, row: str) -> dict[str, Sql]:
        """The count (and sum) that decide an event condition, for explanations."""
        event = self._alias("e")
        where = self.event_filter(node, row=row, event=event)
        values = {"count": Sql(f"(SELECT count(*) FROM {EVENT_TABLE} {event} WHERE {where.text})", where.params)}
        if "sum" in node:
            summed = self.summed(node["sum"]["property"], event)
            values["sum"] = Sql(
                f"(SELECT COALESCE(sum({summed.text}), 0) FROM {EVENT_TABLE} {event} WHERE {where.text})",
                summed.params + where.params,
            )
        return values

    # Accounts and groups ------------------------------------------------------------------------------------

    def _accounts(self, node: dict | None, *, row: str, select: str) -> Sql:
        membership, account = self._alias("am"), self._alias("a")
        inner = self.rule(node["account"], entity=ACCOUNT, row=account) if node else TRUE
        return Sql(
            f"SELECT {select.format(account=account)} FROM {ACCOUNT_MEMBERSHIP_TABLE} {membership} "
            f"JOIN {ACCOUNT_TABLE} {account} ON {account}.id = {membership}.account_id "
            f"WHERE {membership}.customer_id = {row}.id AND {inner.text}",
            inner.params,
        )

    def account_condition(self, node: dict, *, row: str) -> Sql:
        accounts = self._accounts(node, row=row, select="1")
        return Sql(f"EXISTS ({accounts.text})", accounts.params)

    def account_values(self, node: dict, *, row: str) -> dict[str, Sql]:
        listing = (
            "COALESCE(jsonb_agg(jsonb_build_object('id', {account}.id, 'name', {account}.name) "
            "ORDER BY {account}.id), '[]'::jsonb)"
        )
        matched = self._accounts(node, row=row, select=listing)
        every = self._accounts(None, row=row, select=listing)
        return {
            "accounts_matched": Sql(f"({matched.text})", matched.params),
            "accounts": Sql(f"({every.text})", every.params),
        }

    def in_group_condition(self, node: dict, *, row: str) -> Sql:
        membership = self._alias("m")
        return Sql(
            f"EXISTS (SELECT 1 FROM {MEMBERSHIP_TABLE} {membership} "
            f"WHERE {membership}.group_id = %s AND {membership}.customer_id = {row}.id)",
            (node["in_group"],),
        )
