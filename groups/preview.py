"""Who a rules document would select, before it is saved: count, a sample, and who would enter or leave.

Shared by the API's preview and the admin's live preview. Everything is computed in the database
from the compiled rule, in one statement for the counts and one for each sample; nothing is written.
`changes` pages through everyone who would enter or leave, for the full lists the samples link to.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from psycopg.errors import QueryCanceled

from .models import CustomerGroup
from .rules import Catalogue, RulesInvalid, compile_rules, ensure_valid_rules

SAMPLE_SIZE = 20
SAMPLE_COLUMNS = ("id", "external_id", "email", "first_name", "last_name")
ENTER, LEAVE = "enter", "leave"
# Who would enter: selected by the rules and not a member; who would leave: a member the rules do
# not select (a condition that is NULL selects nobody, as in a refresh).
_NOT_MEMBER = "NOT EXISTS (SELECT 1 FROM groups_membership m WHERE m.group_id = %s AND m.customer_id = c.id)"
_MEMBER = "EXISTS (SELECT 1 FROM groups_membership m WHERE m.group_id = %s AND m.customer_id = c.id)"


class PreviewTooExpensive(RulesInvalid):
    """The rules are valid, but evaluating them now takes longer than a preview may (PREVIEW_TIME_LIMIT_MS)."""

    def __init__(self) -> None:
        limit = settings.PREVIEW_TIME_LIMIT_MS
        message = (f"this rule is too expensive to preview: it did not finish within {limit} ms. Narrow it "
                   "(fewer event conditions, shorter windows), or save it and let a refresh compute it")  # fmt: skip
        super().__init__([{"path": "", "message": message}])


@dataclass
class Preview:
    count: int
    would_enter: int
    would_leave: int
    sample: list[dict] = field(default_factory=list)
    # Up to `sample_size` of those who would enter and who would leave (empty without a group).
    entering: list[dict] = field(default_factory=list)
    leaving: list[dict] = field(default_factory=list)


def preview(
    rules: dict,
    *,
    group: CustomerGroup | None = None,
    time_zone: str | None = None,
    now: datetime | None = None,
    sample_size: int = SAMPLE_SIZE,
    catalogue: Catalogue | None = None,
) -> Preview:
    """Evaluate `rules` against every customer now; compare with `group`'s current members if given.

    Raises RulesInvalid (with every problem listed) when the document is not valid, and
    PreviewTooExpensive when its statements run past the preview's time limit: anyone who may view a
    group may preview, so one preview must not hold a database connection for long.
    """
    condition, params = _compiled(rules, group, time_zone, now, catalogue)
    group_id = group.pk if group else None
    with _time_limited() as cursor:
        count, would_enter, would_leave = _counts(cursor, condition, params, group_id)
        sample = _customers(cursor, condition, params, sample_size)
        entering = leaving = []
        if group is not None:
            entering = _customers(cursor, f"({condition}) AND {_NOT_MEMBER}", [*params, group_id], sample_size)
            leaving = _customers(cursor, f"({condition}) IS NOT TRUE AND {_MEMBER}", [*params, group_id], sample_size)
    return Preview(count, would_enter, would_leave, sample, entering, leaving)


def changes(
    rules: dict,
    group: CustomerGroup,
    side: str,
    *,
    after: int = 0,
    limit: int = 100,
    time_zone: str | None = None,
    now: datetime | None = None,
) -> list[dict]:
    """The next `limit` customers (by id, after `after`) who would enter (`side` "enter") or leave the group."""
    condition, params = _compiled(rules, group, time_zone, now, None)
    where = f"({condition}) AND {_NOT_MEMBER}" if side == ENTER else f"({condition}) IS NOT TRUE AND {_MEMBER}"
    with _time_limited() as cursor:
        return _customers(cursor, f"{where} AND c.id > %s", [*params, group.pk, after], limit)


def _compiled(rules, group, time_zone, now, catalogue) -> tuple[str, list]:
    catalogue = catalogue or Catalogue.load()
    ensure_valid_rules(rules, catalogue=catalogue, group_id=group.pk if group else None)
    zone = zoneinfo.ZoneInfo(time_zone or (group.time_zone_name if group else settings.TIME_ZONE))
    return compile_rules(rules, now=now or timezone.now(), tz=zone, catalogue=catalogue, alias="c")


@contextmanager
def _time_limited() -> Iterator:
    """A cursor whose statements stop after PREVIEW_TIME_LIMIT_MS (then PreviewTooExpensive is raised)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{settings.PREVIEW_TIME_LIMIT_MS}ms"])
            yield cursor
    except OperationalError as exc:
        if isinstance(exc.__cause__, QueryCanceled):
            raise PreviewTooExpensive from exc
        raise


def _counts(cursor, condition: str, params: list, group_id: int | None) -> tuple[int, int, int]:
    # The target set is read once (a CTE referenced twice is materialised); each side of the
    # diff is an anti-join against the group's membership, which its unique index serves.
    cursor.execute(
        f"""
        WITH target AS (SELECT c.id FROM customers_customer c WHERE {condition})
        SELECT
            (SELECT count(*) FROM target),
            (SELECT count(*) FROM target t WHERE NOT EXISTS (
                SELECT 1 FROM groups_membership m WHERE m.group_id = %s AND m.customer_id = t.id)),
            (SELECT count(*) FROM groups_membership m WHERE m.group_id = %s AND NOT EXISTS (
                SELECT 1 FROM target t WHERE t.id = m.customer_id))
        """,
        [*params, group_id, group_id],
    )
    return cursor.fetchone()


def _customers(cursor, where: str, params: list, limit: int) -> list[dict]:
    columns = ", ".join(f"c.{name}" for name in SAMPLE_COLUMNS)
    cursor.execute(f"SELECT {columns} FROM customers_customer c WHERE {where} ORDER BY c.id LIMIT %s", [*params, limit])
    return [dict(zip(SAMPLE_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
