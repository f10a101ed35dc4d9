"""An independent evaluator of the rule language, written from rules.md, to check the SQL against.

It shares no code with groups.rules on purpose: it reads one customer held in plain Python data and
answers whether a rules document holds, following rules.md sentence by sentence.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal

MISSING = object()

CUSTOMER_TYPES = {
    "external_id": "text",
    "member_id": "text",
    "email": "text",
    "phone": "text",
    "first_name": "text",
    "last_name": "text",
    "status": "text",
    "role": "text",
    "signup_source": "text",
    "birthdate": "date",
    "created_at": "datetime",
    "email_consent": "boolean",
    "sms_consent": "boolean",
}
ACCOUNT_TYPES = {"external_id": "text", "name": "text", "kind": "text", "created_at": "datetime"}


@dataclass
class EventData:
    name: str
    occurred_at: dt.datetime
    amount: Decimal | None = None
    properties: dict = field(default_factory=dict)


@dataclass
class AccountData:
    fields: dict
    attributes: dict = field(default_factory=dict)


@dataclass
class CustomerData:
    fields: dict
    attributes: dict = field(default_factory=dict)
    events: list[EventData] = field(default_factory=list)
    accounts: list[AccountData] = field(default_factory=list)
    groups: set[int] = field(default_factory=set)


@dataclass
class World:
    now: dt.datetime
    tz: zoneinfo.ZoneInfo
    customer_attributes: dict  # declared key -> type
    account_attributes: dict

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(self.tz).date()

    def minus(self, duration: dict) -> dt.datetime:
        return self._move(duration, -1)

    def plus(self, duration: dict) -> dt.datetime:
        return self._move(duration, 1)

    def _move(self, duration: dict, sign: int) -> dt.datetime:
        # Hours are exact; days and weeks are calendar days in the group's zone (same local time).
        ((unit, n),) = duration.items()
        if unit == "hours":
            return self.now + sign * dt.timedelta(hours=n)
        local = self.now.astimezone(self.tz).replace(tzinfo=None)
        moved = local + sign * dt.timedelta(days=n * (7 if unit == "weeks" else 1))
        return moved.replace(tzinfo=self.tz)


def holds(rule: dict, customer: CustomerData, world: World) -> bool:
    return _rule(rule, customer.fields, customer.attributes, "customer", customer, world)


def _rule(rule, fields, attributes, entity, customer, world) -> bool:
    if "all" in rule:
        return all(_rule(r, fields, attributes, entity, customer, world) for r in rule["all"])
    if "any" in rule:
        return any(_rule(r, fields, attributes, entity, customer, world) for r in rule["any"])
    if "not" in rule:
        return not _rule(rule["not"], fields, attributes, entity, customer, world)
    if "field" in rule:
        name = rule["field"]
        if name.startswith("attributes."):
            key = name[len("attributes.") :]
            declared = (world.customer_attributes if entity == "customer" else world.account_attributes).get(key)
            value = attributes.get(key, MISSING)
            return _compare(declared or "json", value, rule["op"], rule.get("value"), world)
        types = CUSTOMER_TYPES if entity == "customer" else ACCOUNT_TYPES
        return _compare(types[name], fields.get(name), rule["op"], rule.get("value"), world)
    if "event" in rule:
        return _event(rule, customer, world)
    if "account" in rule:
        return any(
            _rule(rule["account"], a.fields, a.attributes, "account", customer, world) for a in customer.accounts
        )
    if "in_group" in rule:
        return rule["in_group"] in customer.groups
    raise AssertionError(rule)


def is_empty(value) -> bool:
    return value is MISSING or value is None or value == ""


def _json_number(value) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _as_decimal(value) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _compare(type_, value, op, operand, world: World) -> bool:
    if op == "is_empty":
        return is_empty(value)
    if op == "is_not_empty":
        return not is_empty(value)
    if op == "neq":
        return not _compare(type_, value, "eq", operand, world)
    if op == "not_in":
        return not _compare(type_, value, "in", operand, world)
    if op == "not_contains":
        return not _compare(type_, value, "contains", operand, world)
    if is_empty(value):
        return False
    if op in ("eq", "in"):
        candidates = operand if op == "in" else [operand]
        return any(_equal(type_, value, candidate) for candidate in candidates)
    if op in ("contains", "starts_with", "ends_with"):
        if not isinstance(value, str):
            return False
        text, needle = value.lower(), operand.lower()
        return {"contains": needle in text, "starts_with": text.startswith(needle), "ends_with": text.endswith(needle)}[
            op
        ]
    if op in ("gt", "gte", "lt", "lte") or (op == "between" and type_ in ("number", "json")):
        if not _json_number(value):
            return False
        x = _as_decimal(value)
        if op == "between":
            return _as_decimal(operand[0]) <= x <= _as_decimal(operand[1])
        y = _as_decimal(operand)
        return {"gt": x > y, "gte": x >= y, "lt": x < y, "lte": x <= y}[op]
    if op in ("is_true", "is_false"):
        return value is (op == "is_true")
    if type_ == "date":
        return _date_op(value, op, operand, world)
    if type_ == "datetime":
        return _datetime_op(value, op, operand, world)
    raise AssertionError((type_, op))


def _equal(type_, value, operand) -> bool:
    # JSON values compare by their JSON type: text only with strings, numbers with numbers, booleans with booleans.
    if isinstance(operand, bool):
        return value is operand
    if isinstance(operand, str):
        return isinstance(value, str) and value.lower() == operand.lower()
    return _json_number(value) and _as_decimal(value) == _as_decimal(operand)


def _as_date(value):
    """A date column's value, or a JSON string holding a real day as YYYY-MM-DD; anything else is not a date."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _as_datetime(value):
    """A datetime column's value, or a JSON string holding a real ISO 8601 instant (UTC when it has no offset)."""
    if isinstance(value, dt.datetime):
        return value
    shape = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?"
    if isinstance(value, str) and re.fullmatch(shape, value):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return None


def _date_op(value, op, operand, world: World) -> bool:
    day = _as_date(value)
    if day is None:
        return False
    today = world.today
    if op == "before":
        return day < dt.date.fromisoformat(operand)
    if op == "after":
        return day > dt.date.fromisoformat(operand)
    if op == "on":
        return day == dt.date.fromisoformat(operand)
    if op == "between":
        return dt.date.fromisoformat(operand[0]) <= day <= dt.date.fromisoformat(operand[1])
    if op == "anniversary_within_next":
        return 0 <= (_next_recurrence(day, today) - today).days <= operand["days"]
    ((unit, n),) = operand.items()
    days = dt.timedelta(days=n * (7 if unit == "weeks" else 1))
    if op == "within_last":
        return today - days <= day <= today
    if op == "more_than_ago":
        return day < today - days
    if op == "within_next":
        return today <= day <= today + days
    raise AssertionError(op)


def _next_recurrence(day: dt.date, today: dt.date) -> dt.date:
    for year in (today.year, today.year + 1):
        try:
            recurrence = dt.date(year, day.month, day.day)
        except ValueError:  # 29 February in a year without it
            recurrence = dt.date(year, 3, 1)
        if recurrence >= today:
            return recurrence
    raise AssertionError("a yearly date recurs within two years")


def _datetime_op(value, op, operand, world: World) -> bool:
    moment = _as_datetime(value)
    if moment is None:
        return False
    local_day = moment.astimezone(world.tz).date()
    if op == "before":
        return local_day < dt.date.fromisoformat(operand)
    if op == "after":
        return local_day > dt.date.fromisoformat(operand)
    if op == "on":
        return local_day == dt.date.fromisoformat(operand)
    if op == "between":
        return dt.date.fromisoformat(operand[0]) <= local_day <= dt.date.fromisoformat(operand[1])
    if op == "within_last":
        return world.minus(operand) <= moment <= world.now
    if op == "more_than_ago":
        return moment < world.minus(operand)
    if op == "within_next":
        return world.now <= moment <= world.plus(operand)
    raise AssertionError(op)


def in_window(moment: dt.datetime, window, world: World) -> bool:
    if not window:
        return True
    ((kind, value),) = window.items()
    if kind == "last":
        return world.minus(value) <= moment <= world.now
    day, today = moment.astimezone(world.tz).date(), world.today
    if kind == "between":
        return dt.date.fromisoformat(value[0]) <= day <= dt.date.fromisoformat(value[1])
    one_week_ago = today - dt.timedelta(days=7)
    end_of_last_month = today.replace(day=1) - dt.timedelta(days=1)
    return {
        "today": day == today,
        "yesterday": day == today - dt.timedelta(days=1),
        "this_week": day.isocalendar()[:2] == today.isocalendar()[:2],
        "last_week": day.isocalendar()[:2] == one_week_ago.isocalendar()[:2],
        "this_month": (day.year, day.month) == (today.year, today.month),
        "last_month": (day.year, day.month) == (end_of_last_month.year, end_of_last_month.month),
        "this_year": day.year == today.year,
        "last_year": day.year == today.year - 1,
    }[value]


def _event(rule, customer: CustomerData, world: World) -> bool:
    matching = []
    for event in customer.events:
        if event.name != rule["event"] or not in_window(event.occurred_at, rule.get("window"), world):
            continue
        if all(_where(item, event, world) for item in rule.get("where", [])):
            matching.append(event)
    if "sum" in rule:
        spec = rule["sum"]
        total = sum((_property_number(event, spec["property"]) for event in matching), Decimal(0))
        return _aggregate(total, spec["op"], spec["value"])
    spec = rule.get("count", {"op": "gte", "value": 1})
    return _aggregate(Decimal(len(matching)), spec["op"], spec["value"])


def _property_number(event: EventData, prop: str) -> Decimal:
    value = event.amount if prop == "amount" else event.properties.get(prop)
    return _as_decimal(value) if _json_number(value) else Decimal(0)


def _where(item, event: EventData, world: World) -> bool:
    if item["property"] == "amount":
        return _compare("number", event.amount, item["op"], item.get("value"), world)
    return _compare("json", event.properties.get(item["property"], MISSING), item["op"], item.get("value"), world)


def _aggregate(x: Decimal, op, bound) -> bool:
    if op == "between":
        return _as_decimal(bound[0]) <= x <= _as_decimal(bound[1])
    y = _as_decimal(bound)
    return {"eq": x == y, "neq": x != y, "gt": x > y, "gte": x >= y, "lt": x < y, "lte": x <= y}[op]
