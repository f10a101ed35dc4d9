"""IANA time-zone names: the one check of a name, for the site's setting and each group's zone."""

from __future__ import annotations

import functools
import zoneinfo


def is_time_zone_name(name: object) -> bool:
    """Whether `name` is an IANA time zone name such as 'Europe/Paris' or 'UTC'."""
    return isinstance(name, str) and name in _names()


def time_zone_names() -> list[str]:
    """Every name, sorted, as the time-zone pickers offer them."""
    return sorted(_names())


@functools.cache
def _names() -> frozenset[str]:
    # ZoneInfo() alone also accepts odd keys that are file names (e.g. "posixrules"); staff pick from this list.
    return frozenset(zoneinfo.available_timezones())
