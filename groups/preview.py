"""Who a rules document would select, before it is saved: count, a sample, and who would enter or leave.

Shared by the API's preview and the admin's live preview. Everything is computed in the database
from the compiled rule, in one statement for the counts and one for the sample; nothing is written.
"""

from __future__ import annotations

import zoneinfo
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
    catalogue = catalogue or Catalogue.load()
    ensure_valid_rules(rules, catalogue=catalogue, group_id=group.pk if group else None)
    zone = zoneinfo.ZoneInfo(time_zone or (group.time_zone_name if group else settings.TIME_ZONE))
    condition, params = compile_rules(rules, now=now or timezone.now(), tz=zone, catalogue=catalogue, alias="c")
    group_id = group.pk if group else None
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{settings.PREVIEW_TIME_LIMIT_MS}ms"])
            count, would_enter, would_leave, sample = _evaluate(cursor, condition, params, group_id, sample_size)
    except OperationalError as exc:
        if isinstance(exc.__cause__, QueryCanceled):
            raise PreviewTooExpensive from exc
        raise
    return Preview(count=count, would_enter=would_enter, would_leave=would_leave, sample=sample)


def _evaluate(cursor, condition: str, params: list, group_id: int | None, sample_size: int):
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
    count, would_enter, would_leave = cursor.fetchone()
    columns = ", ".join(f"c.{name}" for name in SAMPLE_COLUMNS)
    cursor.execute(
        f"SELECT {columns} FROM customers_customer c WHERE {condition} ORDER BY c.id LIMIT %s",
        [*params, sample_size],
    )
    sample = [dict(zip(SAMPLE_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
    return count, would_enter, would_leave, sample
