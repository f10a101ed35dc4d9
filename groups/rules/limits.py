"""How large a rules document may be, and the bounds of the values it may hold."""

from __future__ import annotations

MAX_DEPTH = 10
MAX_CONDITIONS = 200
MAX_IN_VALUES = 1000
MAX_TEXT_LENGTH = 1000
# Durations beyond this are surely a typo, and would overflow date arithmetic.
MAX_DURATION = 100_000
MIN_YEAR, MAX_YEAR = 1000, 8999
