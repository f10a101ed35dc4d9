"""Declared attributes are coerced on write to the shape the rule SQL reads, or refused with a reason."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from customers.values import coerce_attribute_value


@pytest.mark.parametrize(
    "type_, value, stored",
    [
        ("text", "Gold", "Gold"),
        ("text", 12, "12"),
        ("text", None, None),
        ("text", "  ", None),
        ("number", 3, 3),
        ("number", 2.5, 2.5),
        ("number", "42", 42),
        ("number", " 4.50 ", 4.5),
        ("number", Decimal("10.00"), 10),
        ("number", "", None),
        ("boolean", True, True),
        ("boolean", "Yes", True),
        ("boolean", "false", False),
        ("boolean", 0, False),
        ("date", "2024-02-29", "2024-02-29"),
        ("date", dt.date(2024, 1, 5), "2024-01-05"),
        ("datetime", "2024-03-31T12:00:00+02:00", "2024-03-31T10:00:00+00:00"),
        ("datetime", "2024-03-31T10:00:00Z", "2024-03-31T10:00:00+00:00"),
        ("datetime", dt.datetime(2024, 3, 31, 10, tzinfo=dt.UTC), "2024-03-31T10:00:00+00:00"),
    ],
)
def test_values_that_fit_are_stored_in_the_declared_type(type_, value, stored):
    assert coerce_attribute_value(type_, value) == stored
    assert type(coerce_attribute_value(type_, value)) is type(stored)


@pytest.mark.parametrize(
    "type_, value, words",
    [
        ("text", True, "expected text"),
        ("text", {"a": 1}, "expected text"),
        ("number", "12 apples", "expected a number"),
        ("number", "NaN", "expected a number"),
        ("number", float("inf"), "expected a number"),
        ("number", True, "expected a number"),
        ("boolean", "maybe", "expected true or false"),
        ("boolean", 2, "expected true or false"),
        ("date", "2023-02-29", "YYYY-MM-DD"),
        ("date", "01/02/2024", "YYYY-MM-DD"),
        ("date", dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "a date and time"),
        ("datetime", "2024-01-01", "ISO 8601"),
        ("datetime", "soon", "ISO 8601"),
        ("money", "1", "unknown attribute type"),
    ],
)
def test_values_that_do_not_fit_are_refused_with_a_reason(type_, value, words):
    with pytest.raises(ValueError, match=words):
        coerce_attribute_value(type_, value)


def test_naive_datetimes_are_read_in_the_site_time_zone(settings):
    settings.TIME_ZONE = "Europe/Paris"
    assert coerce_attribute_value("datetime", "2024-01-15T10:00:00") == "2024-01-15T09:00:00+00:00"
