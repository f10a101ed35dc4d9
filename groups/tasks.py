"""Celery tasks for groups: thin wrappers that reload by id and call a service."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError, OperationalError

from . import always_current, health, schedules, services
from .models import CustomerGroup, Reason, RefreshRun

logger = logging.getLogger(__name__)


# A database that cannot be reached (restarting, failing over) is waited for, message kept, rather
# than the message being spent on an error.
@shared_task(
    name="groups.refresh_group",
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=10,
)
def refresh_group(group_id: int, reason: str = Reason.MANUAL_REFRESH, run_id: int | None = None) -> None:
    """Acknowledged late, so a message whose worker died is delivered again: a run that already
    ended is not run twice, a run that another worker is running is left to it, and a run left
    running by a dead worker is run again (the engine's lock keeps two runs of a group apart; a
    second full refresh finds nothing to change). The minute sweep may send a queued run's message
    again (health.resend_lost_runs), so the same holds for a message that came twice."""
    group = CustomerGroup.objects.filter(pk=group_id).first()
    if group is None:
        return
    run = RefreshRun.objects.filter(pk=run_id).first() if run_id else None
    if run_id and (run is None or run.status not in (RefreshRun.Status.QUEUED, RefreshRun.Status.RUNNING)):
        return
    if run is not None and health.runs_elsewhere(run):
        return
    try:
        services.refresh(group, reason=reason, run=run)
    except DatabaseError:
        if CustomerGroup.objects.filter(pk=group_id).exists():
            raise
        logger.info("group %s was deleted while its refresh waited; nothing to refresh", group_id)


@shared_task(name="groups.refresh_scheduled")
def refresh_scheduled(group_id: int, attempt: int = 0) -> None:
    schedules.run_scheduled(group_id, attempt=attempt)


@shared_task(name="groups.apply_due_activations")
def apply_due_activations() -> None:
    services.apply_due_activations()


@shared_task(name="groups.reset_stuck_runs")
def reset_stuck_runs() -> None:
    health.reset_stuck_runs()
    health.resend_lost_runs()


@shared_task(name="groups.record_daily_sizes")
def record_daily_sizes() -> None:
    services.record_daily_sizes()


@shared_task(name="groups.sweep_always_current")
def sweep_always_current() -> None:
    always_current.sweep()
