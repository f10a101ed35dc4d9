"""Celery tasks for sync: thin wrappers that reload by id, call the drain or a service, and retry."""

from __future__ import annotations

import random

from celery import shared_task

from . import drain as draining
from . import services
from .models import Connection, GroupSync
from .providers.base import ProviderError

BUSY_RETRY_SECONDS = 1.0
WAITING_RETRY_SECONDS = 0.5
MAX_WAITING_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 600.0


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter, never sooner than the app's Retry-After."""
    delay = random.uniform(0, min(MAX_BACKOFF_SECONDS, 2.0 ** min(attempt, 10)))
    return max(delay, retry_after or 0.0)


@shared_task(name="integrations.drain", bind=True, max_retries=None)
def drain(self, sync_id: int) -> None:
    try:
        outcome = draining.drain(sync_id)
    except ProviderError as exc:
        if exc.permanent:
            return  # the sync is marked failing with the app's message; staff resume it once fixed
        raise self.retry(countdown=backoff(self.request.retries, exc.retry_after)) from exc
    if outcome is draining.Outcome.MORE:
        drain.delay(sync_id)
    elif outcome is draining.Outcome.BUSY:
        drain.apply_async((sync_id,), countdown=BUSY_RETRY_SECONDS * random.uniform(1, 2))
    elif outcome is draining.Outcome.WAITING:
        # An older transaction is still open: look again soon, then less and less often (a long
        # import can keep it open for minutes; the sweep looks too).
        countdown = min(MAX_WAITING_SECONDS, WAITING_RETRY_SECONDS * 2 ** min(self.request.retries, 10))
        raise self.retry(countdown=countdown)


@shared_task(name="integrations.sweep")
def sweep() -> None:
    """The safety net: drain every running sync, whether or not a commit announced it."""
    services.queue_drains(force=True)


@shared_task(name="integrations.reconcile", bind=True, max_retries=None)
def reconcile(self, sync_id: int, remove_remote_only: bool = False) -> None:
    if not GroupSync.objects.filter(pk=sync_id, state=GroupSync.State.IN_SYNC).exists():
        return
    try:
        report = draining.reconcile(sync_id, remove_remote_only=remove_remote_only)
    except draining.ReconcileUnavailable:
        return
    except ProviderError as exc:
        if exc.permanent:
            return
        raise self.retry(countdown=backoff(self.request.retries, exc.retry_after)) from exc
    if report is None:  # a drain holds the connection
        raise self.retry(countdown=BUSY_RETRY_SECONDS * random.uniform(1, 2))


@shared_task(name="integrations.reconcile_all")
def reconcile_all() -> None:
    """The scheduled reconcile of every sync that is in sync."""
    for sync_id in GroupSync.objects.filter(state=GroupSync.State.IN_SYNC).values_list("pk", flat=True):
        reconcile.delay(sync_id)


@shared_task(name="integrations.delete_remote_list", bind=True, max_retries=None)
def delete_remote_list(self, connection_id: int, remote_id: str) -> None:
    """Remove a list or tag whose group was deleted or whose sync was turned off."""
    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None:
        return
    with services.connection_lock(connection_id) as held:
        if not held:
            raise self.retry(countdown=BUSY_RETRY_SECONDS * random.uniform(1, 2))
        provider = services.provider_for(connection)
        provider.delivery_key = f"delete:{remote_id}"
        try:
            provider.delete_list(remote_id)
        except ProviderError as exc:
            if exc.permanent:
                services.record_connection_error(connection_id, exc)
                return
            raise self.retry(countdown=backoff(self.request.retries, exc.retry_after)) from exc
