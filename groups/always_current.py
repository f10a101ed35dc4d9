"""Always-current groups: the minute sweep that evaluates the customers whose time has come, the
full refreshes at calendar rollovers, and what the Settings tab says of a group's next change.

Each customer's earliest next moment over every always-current group is kept in `CustomerDue`,
written by the statements that evaluate the customer (groups/engine.py). The sweep evaluates the
customers whose moment has passed, in set-based batches through the engine's event path, with the
reason "time". A group is refreshed whole when its moments are not derived from its current rules
and zone yet (it just became always current, or its zone changed), and at each boundary
(`moments.boundary_after`): calendar windows change for everyone at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from psycopg.errors import QueryCanceled

from . import engine
from .models import CustomerGroup, Reason
from .rules import Catalogue
from .rules.moments import boundary_after

logger = logging.getLogger(__name__)

# The second key of the session lock that keeps two sweeps from running at once (see engine's
# LOCK_NAMESPACE); group ids, the other keys, are positive.
SWEEP_LOCK = -1


@dataclass
class Sweep:
    """What one sweep did."""

    evaluated: int = 0  # customers whose time had come
    refreshed: int = 0  # groups refreshed whole
    skipped: bool = False  # another sweep was running


def sweep(now: datetime | None = None) -> Sweep:
    """The body of the minute task: boundary refreshes first, then every customer due by now."""
    from . import services  # services imports this module

    now = now or timezone.now()
    result = Sweep()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [engine.LOCK_NAMESPACE, SWEEP_LOCK])
        if not cursor.fetchone()[0]:
            result.skipped = True
            return result
    try:
        # A group no longer always current keeps no claim on its moments: if it comes back, its
        # customers' moments are derived again by a full refresh.
        CustomerGroup.objects.exclude(refresh_mode=CustomerGroup.RefreshMode.ALWAYS_CURRENT).exclude(
            moments_of=""
        ).update(moments_of="")
        for group in _groups_to_refresh(now):
            try:
                services.refresh(group, reason=Reason.TIME, now=now)
                result.refreshed += 1
            except Exception:
                logger.exception("Time-based refresh of group %s failed", group.pk)
        result.evaluated = _evaluate_due(now)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [engine.LOCK_NAMESPACE, SWEEP_LOCK])
    return result


def moments_key(group: CustomerGroup) -> str:
    """What a group's stored moments are derived from: its rule version and time zone."""
    return f"{group.rule_version}|{group.time_zone_name}"


def record_refresh(group: CustomerGroup, now: datetime) -> None:
    """A full refresh of an always-current group wrote its customers' moments as of `now`."""
    CustomerGroup.objects.filter(pk=group.pk).update(
        moments_of=moments_key(group), next_boundary_at=boundary_after(group.rules, group.zone, now)
    )


def _groups_to_refresh(now: datetime) -> list[CustomerGroup]:
    groups = CustomerGroup.objects.active_dynamic().filter(refresh_mode=CustomerGroup.RefreshMode.ALWAYS_CURRENT)
    due = []
    for group in groups.exclude(last_run_status=CustomerGroup.RunStatus.FAILING).order_by("pk"):
        if group.moments_of != moments_key(group) or (group.next_boundary_at and group.next_boundary_at <= now):
            due.append(group)
    return due


def _evaluate_due(now: datetime) -> int:
    """Every customer due by now, in chunks of one transaction each, through the engine."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT customer_id FROM groups_customerdue WHERE due_at <= %s ORDER BY customer_id", [now])
        ids = [row[0] for row in cursor.fetchall()]
    size = settings.GROUPS_EVALUATION_CHUNK
    for start in range(0, len(ids), size):
        engine.evaluate_due(ids[start : start + size], now)
    return len(ids)


# --- what the Settings tab says -------------------------------------------------------------------


@dataclass
class NextChange:
    """An always-current group's next time-based change."""

    at: datetime | None  # the earliest moment a customer's result can change by time alone
    waiting: int | None  # customers whose result can still change by time alone; None: not counted
    boundary_at: datetime | None  # its next full refresh at a calendar rollover or clock change


def next_change(group: CustomerGroup, now: datetime | None = None) -> NextChange:
    """The group's next moment over the customers that have one (each of them has a due time), read
    within the preview's time limit: past it, the moment and count are not given."""
    now = now or timezone.now()
    template = engine.template_of(group, Catalogue.load())
    if template.moment is None:
        return NextChange(None, 0, group.next_boundary_at)
    text, params = template.moment.at(now)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = %s", [settings.PREVIEW_TIME_LIMIT_MS])
            cursor.execute(
                f"""SELECT min(x.due_at), count(x.due_at) FROM groups_customerdue d
                    JOIN customers_customer c ON c.id = d.customer_id
                    CROSS JOIN LATERAL (SELECT {text} AS due_at) x""",
                params,
            )
            at, waiting = cursor.fetchone()
    except OperationalError as exc:
        if not isinstance(exc.__cause__, QueryCanceled):
            raise
        at, waiting = None, None
    return NextChange(at, waiting, group.next_boundary_at)
