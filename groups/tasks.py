"""Celery tasks for groups: thin wrappers that reload by id and call a service."""

from __future__ import annotations

from celery import shared_task

from . import services
from .models import CustomerGroup, Reason, RefreshRun


@shared_task(name="groups.refresh_group")
def refresh_group(group_id: int, reason: str = Reason.MANUAL_REFRESH, run_id: int | None = None) -> None:
    group = CustomerGroup.objects.filter(pk=group_id).first()
    if group is None:
        return
    run = RefreshRun.objects.filter(pk=run_id).first() if run_id else None
    services.refresh(group, reason=reason, run=run)
