"""What a stored custom attribute value is: parsing days and numbers, and coercion to a declared type.

Used when customers and accounts are written (API, CSV import) and by the rule language, which reads
the shapes stored here.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation

from .fields import BOOLEAN, DATE, DATETIME, NUMBER, TEXT

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
    coerce = _COERCERS.get(type)
    if coerce is None:
        raise ValueError(f"unknown attribute type '{type}'")
    return coerce(value)


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if is_number(value):
        return str(value)
    raise ValueError(f"expected text, got {_describe_value(value)}")


def _number(value: object) -> int | float:
    number = value if is_number(value) else _decimal(value)
    if number is None:
        raise ValueError(f"expected a number, got {_describe_value(value)}")
    if isinstance(number, Decimal):
        return int(number) if number == number.to_integral_value() else float(number)
    return number


def _decimal(value: object) -> Decimal | None:
    """A finite number written as text, None otherwise."""
    if not isinstance(value, str):
        return None
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    word = value.strip().lower() if isinstance(value, str) else None
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError(f"expected true or false, got {_describe_value(value)}")


def _date(value: object) -> str:
    if isinstance(value, dt.datetime):
        raise ValueError("expected a date (YYYY-MM-DD), got a date and time")
    if isinstance(value, dt.date):
        return value.isoformat()
    day = parse_day(value.strip()) if isinstance(value, str) else None
    if day is None:
        raise ValueError(f"expected a date as YYYY-MM-DD, got {_describe_value(value)}")
    return day.isoformat()


def _datetime(value: object) -> str:
    moment = value if isinstance(value, dt.datetime) else _moment(value)
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


def _moment(value: object) -> dt.datetime | None:
    """A date and time written in ISO 8601, None otherwise; a bare date is not a moment (rather than
    guess midnight, say so)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) <= 10:
        return None
    try:
        return dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None


_COERCERS = {TEXT: _text, NUMBER: _number, BOOLEAN: _boolean, DATE: _date, DATETIME: _datetime}


def _default_time_zone() -> dt.tzinfo:
    try:
        from django.utils import timezone

        return timezone.get_default_timezone()
    except Exception:  # settings not configured: outside Django, UTC is the only sane default
        return dt.UTC


def _describe_value(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
