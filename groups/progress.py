"""How far a group's refresh has got: queued or running, for how long, and an estimate from its earlier runs.

A refresh is one set-based statement, so there is no count of customers done to report; the estimate
is the time the group's recent refreshes took, and says so.
"""

from __future__ import annotations

import statistics
from datetime import datetime

from django.utils import timezone

from .models import CustomerGroup, RefreshRun

RECENT_RUNS = 5


def refresh_progress(group: CustomerGroup, now: datetime | None = None) -> dict | None:
    """The group's oldest unfinished run, or None when no refresh is queued or running."""
    now = now or timezone.now()
    run = (
        RefreshRun.objects.filter(group=group, status__in=[RefreshRun.Status.QUEUED, RefreshRun.Status.RUNNING])
        .order_by("created_at", "id")
        .first()
    )
    if run is None:
        return None
    took = list(
        RefreshRun.objects.filter(group=group, status=RefreshRun.Status.SUCCEEDED, duration_ms__isnull=False)
        .order_by("-finished_at")
        .values_list("duration_ms", flat=True)[:RECENT_RUNS]
    )
    expected_ms = int(statistics.median(took)) if took else None
    running = run.status == RefreshRun.Status.RUNNING and run.started_at is not None
    elapsed_ms = int((now - run.started_at).total_seconds() * 1000) if running else 0
    percent = None
    if running and expected_ms:
        # Never 100 before it ends: a run slower than usual stays just short of done.
        percent = min(99, int(100 * elapsed_ms / max(expected_ms, 1)))
    return {
        "run": run.pk,
        "status": run.status,
        "elapsed_ms": elapsed_ms,
        "expected_ms": expected_ms,
        "percent": percent,
        "sentence": _sentence(run, running, elapsed_ms, expected_ms),
    }


def _sentence(run: RefreshRun, running: bool, elapsed_ms: int, expected_ms: int | None) -> str:
    if not running:
        return f"Refresh queued ({run.get_reason_display().lower()}); a worker starts it soon."
    text = f"Refreshing for {_seconds(elapsed_ms)}"
    if expected_ms:
        text += f"; its last refreshes took about {_seconds(expected_ms)}"
        if elapsed_ms > expected_ms:
            text += ", so this one is slower than usual"
    return text + "."


def _seconds(ms: int) -> str:
    seconds = round(ms / 1000)
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60} s"
