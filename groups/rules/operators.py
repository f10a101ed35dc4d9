"""The operators of the rule language: which ones each field type allows, and the windows and units of time."""

from __future__ import annotations

import re

from customers.fields import BOOLEAN, DATE, DATETIME, NUMBER, TEXT

from .fields import JSON

# Operators that take no value.
NO_VALUE_OPS = frozenset({"is_empty", "is_not_empty", "is_true", "is_false"})
# Negative operators are exact negations of these positive ones.
NEGATIONS = {"neq": "eq", "not_in": "in", "not_contains": "contains"}
DATE_OPS = ("before", "after", "on", "between", "within_last", "more_than_ago", "within_next")

TEXT_OPS = (
    "is_empty", "is_not_empty", "eq", "neq", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with",
)  # fmt: skip
NUMBER_OPS = ("is_empty", "is_not_empty", "eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "between")
BOOLEAN_OPS = ("is_empty", "is_not_empty", "eq", "neq", "is_true", "is_false")

OPERATORS: dict[str, tuple[str, ...]] = {
    TEXT: TEXT_OPS,
    NUMBER: NUMBER_OPS,
    BOOLEAN: BOOLEAN_OPS,
    DATE: ("is_empty", "is_not_empty", *DATE_OPS, "anniversary_within_next"),
    DATETIME: ("is_empty", "is_not_empty", *DATE_OPS),
    # Undeclared keys: every text, number and boolean operator; the operand's JSON type decides the comparison.
    JSON: tuple(dict.fromkeys((*TEXT_OPS, *NUMBER_OPS, *BOOLEAN_OPS))),
}
ALL_OPERATORS: tuple[str, ...] = tuple(dict.fromkeys(op for ops in OPERATORS.values() for op in ops))

AGGREGATE_OPS = ("eq", "neq", "gt", "gte", "lt", "lte", "between")
CALENDAR_WINDOWS = (
    "today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_year", "last_year",
)  # fmt: skip
DURATION_UNITS = ("days", "hours", "weeks")

# What the rule builder shows for each operator; messages for staff use these words too.
OPERATOR_LABELS = {
    "is_empty": "is empty", "is_not_empty": "is not empty", "eq": "is", "neq": "is not", "in": "is one of",
    "not_in": "is none of", "contains": "contains", "not_contains": "does not contain",
    "starts_with": "starts with", "ends_with": "ends with", "gt": "is more than", "gte": "is at least",
    "lt": "is less than", "lte": "is at most", "between": "is between", "is_true": "is true",
    "is_false": "is false", "before": "is before", "after": "is after", "on": "is on",
    "within_last": "is within the last", "more_than_ago": "is more than … ago", "within_next": "is within the next",
    "anniversary_within_next": "has its anniversary within the next",
}  # fmt: skip
_QUOTED_OPERATOR = re.compile(r"'(" + "|".join(sorted(OPERATOR_LABELS, key=len, reverse=True)) + r")'")


def in_staff_words(message: str) -> str:
    """A validation message with each quoted operator name ('is_empty') as the builder labels it (“is empty”).

    The API keeps the rule language's names, which its clients write; the back office shows labels.
    """
    return _QUOTED_OPERATOR.sub(lambda match: f"“{OPERATOR_LABELS[match.group(1)]}”", message)
