"""What a stored custom attribute value is: parsing days and numbers, and coercion to a declared type.

Used when customers and accounts are written (API, CSV import) and by the rule language, which reads
the shapes stored here.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation

TEXT = "text"
NUMBER = "number"
BOOLEAN = "boolean"
DATE = "date"
DATETIME = "datetime"

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_day(value: object) -> dt.date | None:
    """A 'YYYY-MM-DD' string as a date, None when it is not one."""
    if not isinstance(value, str) or not DATE_RE.match(value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def is_number(value: object) -> bool:
    """A JSON number: bool is an int in Python but a different JSON type."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Decimal):
        return value.is_finite()
    return False


_TRUE_WORDS = {"true", "yes", "y", "1", "on"}
_FALSE_WORDS = {"false", "no", "n", "0", "off"}


def coerce_attribute_value(type: str, value: object) -> object:
    """The value to store for a declared attribute of this type; ValueError says why a value does not fit.

    Empty values (None, "") are stored as None. Dates are stored as 'YYYY-MM-DD', datetimes as ISO 8601 in
    UTC: the shapes the rule SQL reads.
    """
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if type == TEXT:
        if isinstance(value, str):
            return value
        if is_number(value):
            return str(value)
        raise ValueError(f"expected text, got {_describe_value(value)}")
    if type == NUMBER:
        if is_number(value):
            if isinstance(value, Decimal):
                return int(value) if value == value.to_integral_value() else float(value)
            return value
        if isinstance(value, str):
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                number = None
            if number is not None and number.is_finite():
                return int(number) if number == number.to_integral_value() else float(number)
        raise ValueError(f"expected a number, got {_describe_value(value)}")
    if type == BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            word = value.strip().lower()
            if word in _TRUE_WORDS:
                return True
            if word in _FALSE_WORDS:
                return False
        raise ValueError(f"expected true or false, got {_describe_value(value)}")
    if type == DATE:
        if isinstance(value, dt.datetime):
            raise ValueError("expected a date (YYYY-MM-DD), got a date and time")
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, str):
            day = parse_day(value.strip())
            if day is not None:
                return day.isoformat()
        raise ValueError(f"expected a date as YYYY-MM-DD, got {_describe_value(value)}")
    if type == DATETIME:
        moment: dt.datetime | None = None
        if isinstance(value, dt.datetime):
            moment = value
        elif isinstance(value, str):
            text = value.strip()
            try:
                moment = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
            except ValueError:
                moment = None
            if moment is not None and len(text) <= 10:
                moment = None  # a bare date is not a moment; say so rather than guess midnight
        if moment is None:
            raise ValueError(
                f"expected a date and time in ISO 8601 (e.g. 2024-05-01T09:30:00+02:00), got {_describe_value(value)}"
            )
        if moment.tzinfo is None:
            # Naive values are read in the site's time zone, as Django reads naive input.
            moment = moment.replace(tzinfo=_default_time_zone())
        try:
            return moment.astimezone(dt.UTC).isoformat()
        except OverflowError:
            raise ValueError(f"{_describe_value(value)} is outside the years 1 to 9999 in UTC") from None
    raise ValueError(f"unknown attribute type '{type}'")


def _default_time_zone() -> dt.tzinfo:
    try:
        from django.utils import timezone

        return timezone.get_default_timezone()
    except Exception:  # settings not configured: outside Django, UTC is the only sane default
        return dt.UTC


def _describe_value(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
