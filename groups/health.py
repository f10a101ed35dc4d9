"""Keeping groups healthy over time: failures and backoff, stuck runs, staleness.

State lives on the rows (`failure_count`, `last_run_status`, `last_error` on the group; `status` on
the run) and is changed with single conditional UPDATEs, so two workers doing the same sweep at
once cannot both act on the same row. Nothing here holds an "is running" flag.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import schedules
from .engine import LOCK_NAMESPACE
from .models import CustomerGroup, RefreshRun

logger = logging.getLogger(__name__)

# After this many failed runs in a row the group is paused ("failing"): beat stops firing it and
# only a successful refresh started by staff (which resets the count) resumes it.
MAX_CONSECUTIVE_FAILURES = 5
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)
# A run still "running" after this long lost its worker (the engine holds a transaction-scoped
# lock, so a live run past this would be a bug worth seeing as a failure anyway).
RUNNING_LIMIT = timedelta(minutes=30)
# A running run's worker holds its group's lock (groups.engine.lock_groups) while it evaluates. Past
# this grace (time to take the lock), a running run whose lock no session holds or waits for has
# lost its worker, whatever its age.
ORPHAN_GRACE = timedelta(minutes=1)
# A queued run's message can be lost with a broker that restarts empty (Redis without persistence
# drops its queues); past this, the minute sweep sends the message again. The refresh task ignores
# a message whose run has ended or is running elsewhere, so a message that was only slow costs a
# lookup, never a second refresh.
QUEUED_RESEND = timedelta(minutes=5)
# A "Refresh now" that no worker took for this long (its messages sent again meanwhile) is failed,
# so the processing history does not show it waiting forever.
QUEUED_LIMIT = timedelta(hours=2)


# --- failures and backoff ------------------------------------------------------------------------


def retry_delay(failure_count: int) -> timedelta:
    """Exponential backoff after the n-th failure in a row: 1, 2, 4, 8 ... minutes, at most an hour."""
    exponent = max(failure_count - 1, 0)
    return min(RETRY_BASE * (2**exponent), RETRY_CAP)


def record_failure(group: CustomerGroup, error: str) -> timedelta | None:
    """Record a failed refresh on the group; return when to retry, or None once it is paused as failing.

    The count goes up in the database (F()), so failures recorded by concurrent runs all count.
    """
    CustomerGroup.objects.filter(pk=group.pk).update(
        failure_count=F("failure_count") + 1,
        last_error=error,
        last_run_status=CustomerGroup.RunStatus.FAILED,
    )
    return after_failure(group)


def after_failure(group: CustomerGroup) -> timedelta | None:
    """Given a failure already counted on the row: pause the group if it failed too often, else the retry delay."""
    paused = (
        CustomerGroup.objects.filter(pk=group.pk, failure_count__gte=MAX_CONSECUTIVE_FAILURES)
        .exclude(last_run_status=CustomerGroup.RunStatus.FAILING)
        .update(last_run_status=CustomerGroup.RunStatus.FAILING)
    )
    group.refresh_from_db(fields=["failure_count", "last_run_status", "last_error"])
    if paused:
        logger.warning("Group %s paused after %s failed runs in a row", group.pk, group.failure_count)
        schedules.sync_schedule(group)  # stop beat firing it until a refresh by hand succeeds
    if group.last_run_status == CustomerGroup.RunStatus.FAILING:
        return None
    return retry_delay(group.failure_count)


def record_success(group: CustomerGroup) -> None:
    """Clear the failure state after a successful refresh; resumes the schedule of a paused group."""
    was_failing = CustomerGroup.objects.filter(pk=group.pk, last_run_status=CustomerGroup.RunStatus.FAILING).exists()
    CustomerGroup.objects.filter(pk=group.pk).update(
        failure_count=0, last_error="", last_run_status=CustomerGroup.RunStatus.SUCCEEDED
    )
    group.refresh_from_db(fields=["failure_count", "last_run_status", "last_error"])
    if was_failing:
        schedules.sync_schedule(group)


# --- stuck runs ----------------------------------------------------------------------------------


def reset_stuck_runs(
    now: datetime | None = None, limit: timedelta = RUNNING_LIMIT, queued_limit: timedelta = QUEUED_LIMIT
) -> int:
    """Fail runs that lost their worker (running, and nobody holds their group's lock), runs left
    "running" past `limit` and runs "queued" past `queued_limit`; returns how many.

    A run that lost its worker is queued again. Each reset counts as a failure of its group, so a
    group whose runs keep dying ends up paused.
    """
    from .services import queue_refresh  # services uses this module

    now = now or timezone.now()
    orphans = set(_orphaned_runs(now - ORPHAN_GRACE))
    stuck = RefreshRun.objects.filter(
        Q(pk__in=orphans)
        | Q(status=RefreshRun.Status.RUNNING, started_at__lt=now - limit)
        | Q(status=RefreshRun.Status.QUEUED, created_at__lt=now - queued_limit)
    )
    reset = 0
    for run in stuck.select_related("group"):
        was = run.status
        if run.pk in orphans:
            error = "Stopped: its worker stopped (no process holds the group's lock); queued again."
        elif was == RefreshRun.Status.RUNNING:
            error = f"Stopped: still running after {_minutes(limit)}; the worker probably stopped."
        else:
            error = f"Stopped: still waiting for a worker after {_minutes(queued_limit)}."
        # Conditional on the status we saw: a run that finished meanwhile keeps its real outcome.
        changed = RefreshRun.objects.filter(pk=run.pk, status=was).update(
            status=RefreshRun.Status.FAILED, finished_at=now, error=error
        )
        if changed:
            reset += 1
            record_failure(run.group, error)
            if run.pk in orphans:
                queue_refresh(run.group, reason=run.reason, initiated_by=run.initiated_by)
    return reset


def resend_lost_runs(now: datetime | None = None, after: timedelta = QUEUED_RESEND) -> int:
    """Send again the message of each run still queued `after` its message was sent; returns how many."""
    from .tasks import refresh_group  # tasks use this module

    now = now or timezone.now()
    waiting = RefreshRun.objects.filter(status=RefreshRun.Status.QUEUED, sent_at__lt=now - after)
    resent = 0
    for run in waiting.only("pk", "group_id", "reason"):
        # Conditional, so two sweeps at once send it once.
        if RefreshRun.objects.filter(pk=run.pk, status=RefreshRun.Status.QUEUED, sent_at__lt=now - after).update(
            sent_at=now
        ):
            transaction.on_commit(lambda run=run: refresh_group.delay(run.group_id, run.reason, run.pk))
            resent += 1
    if resent:
        logger.warning("%s queued refresh runs waited past %s; their messages were sent again", resent, after)
    return resent


def runs_elsewhere(run: RefreshRun) -> bool:
    """A running run whose group's lock another session holds or awaits: its worker is alive."""
    return run.status == RefreshRun.Status.RUNNING and run.pk not in _orphaned_runs(timezone.now(), [run.pk])


def _orphaned_runs(started_before: datetime, among: list[int] | None = None) -> list[int]:
    """Running runs started before then whose group's lock is neither held nor awaited by any session."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT r.id FROM groups_refreshrun r
            WHERE r.status = %s AND r.started_at < %s AND (%s::bigint[] IS NULL OR r.id = ANY(%s::bigint[]))
              AND NOT EXISTS (
                SELECT 1 FROM pg_locks l
                WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database
                                                               WHERE datname = current_database())
                  AND l.classid::bigint = %s AND l.objid::bigint = r.group_id AND l.objsubid = 2)
            """,
            [RefreshRun.Status.RUNNING, started_before, among, among, LOCK_NAMESPACE],
        )
        return [row[0] for row in cursor.fetchall()]


def _minutes(span: timedelta) -> str:
    return f"{int(span.total_seconds() // 60)} minutes"


# --- staleness -----------------------------------------------------------------------------------


def is_stale(group: CustomerGroup, now: datetime | None = None) -> bool:
    """A scheduled, active group that has not refreshed in twice its period.

    "Twice its period" is measured on the schedule itself: the group missed the two latest
    scheduled times (it has not refreshed since the one before the latest). This holds for
    irregular schedules (Monday and Thursday) and across daylight-saving changes alike.
    """
    if not group.is_active or not schedules.is_scheduled(group):
        return False
    now = now or timezone.now()
    latest_two = schedules.previous_runs(group, 2, before=now)
    if len(latest_two) < 2:
        return False
    since = group.last_refreshed_at or group.created_at
    return since is None or since < latest_two[1]


def stale_groups(now: datetime | None = None) -> list[CustomerGroup]:
    """Every stale group."""
    now = now or timezone.now()
    return [group for group in schedules.scheduled_groups() if is_stale(group, now)]
