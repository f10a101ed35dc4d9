"""What staff see of a sync: per history change whether and when it reached each app, lag, summaries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection as db
from django.utils import timezone

from groups import feed
from groups.feed import Position

from .models import GroupSync, SyncBatch, SyncSkip
from .providers.base import Provider, provider_class


@dataclass(frozen=True)
class Delivery:
    status: str  # synced, pending, failed, paused, skipped, before
    synced_at: datetime | None = None
    detail: str = ""

    @property
    def label(self) -> str:
        return {"synced": "✔ Synced", "pending": "Pending", "failed": "✖ Failed", "paused": "Paused",
                "skipped": "Skipped", "before": "—"}[self.status]  # fmt: skip


def passed(position: Position, xact: int, change_id: int) -> bool:
    """Whether a change (by its transaction and id) lies before the position: it has been handled."""
    if (xact, change_id) <= (position.xact, position.change_id):
        return True
    if position.snapshot:
        xmin, xmax, xip = position.snapshot.split(":")
        in_progress = {int(x) for x in xip.split(",") if x}
        return xact < int(xmin) or (xact < int(xmax) and xact not in in_progress)
    return False


def shown_syncs(group_id: int) -> list[GroupSync]:
    return list(GroupSync.objects.filter(group_id=group_id).exclude(state=GroupSync.State.OFF).select_related(
        "connection"))  # fmt: skip


def deliveries(syncs: Sequence[GroupSync], changes: Sequence) -> dict[int, list[Delivery]]:
    """For each change (MembershipChange rows of one group), one Delivery per sync, in the syncs' order."""
    result: dict[int, list[Delivery]] = {c.id: [] for c in changes}
    for sync in syncs:
        position = sync.feed_position
        handled = [c for c in changes if position and c.xact_id is not None and passed(position, c.xact_id, c.id)]
        sent_at = batch_times(sync, handled)
        first_sync = SyncBatch.objects.filter(sync=sync, kind=SyncBatch.Kind.BACKFILL).order_by("sent_at").first()
        skips = dict(SyncSkip.objects.filter(sync=sync, customer_id__in={c.customer_id for c in changes})
                     .values_list("customer_id", "reason"))  # fmt: skip
        handled_ids = {c.id for c in handled}
        for change in changes:
            result[change.id].append(_delivery(sync, change, change.id in handled_ids, sent_at, first_sync, skips))
    return result


def _delivery(sync, change, handled: bool, sent_at: dict, first_sync, skips: dict) -> Delivery:
    if change.xact_id is None:  # written before the feed existed
        return Delivery("before")
    if handled:
        if change.change == "added" and change.customer_id in skips:
            return Delivery("skipped", detail=skips[change.customer_id])
        if change.id in sent_at:
            return Delivery("synced", sent_at[change.id])
        # Before the sync began: its members reached the app with the first sync (backfill).
        return Delivery("synced", first_sync.sent_at, "with the first sync") if first_sync else Delivery("before")
    if sync.state == GroupSync.State.FAILING:
        return Delivery("failed", detail=sync.last_error)
    if sync.state == GroupSync.State.PAUSED:
        return Delivery("paused")
    return Delivery("pending", detail=sync.last_error and f"retrying: {sync.last_error}")


def batch_times(sync: GroupSync, changes: Sequence) -> dict[int, datetime]:
    """When the feed batch that carried each change was sent (the first batch ending after it)."""
    if not changes:
        return {}
    with db.cursor() as cursor:
        cursor.execute(
            """
            SELECT h.id, b.sent_at
            FROM unnest(%s::bigint[], %s::bigint[]) AS h(id, xact)
            CROSS JOIN LATERAL (
                SELECT sent_at FROM integrations_syncbatch b
                WHERE b.sync_id = %s AND b.kind = 'feed' AND (b.end_xact, b.end_change_id) >= (h.xact, h.id)
                ORDER BY b.end_xact, b.end_change_id LIMIT 1
            ) b
            """,
            [[c.id for c in changes], [c.xact_id for c in changes], sync.pk],
        )
        return dict(cursor.fetchall())


def lag(sync: GroupSync) -> tuple[int, datetime | None]:
    """How many changes wait to be sent, and since when."""
    position = sync.feed_position
    if position is None:
        return 0, None
    return feed.pending([sync.group_id], position)


def summary(sync: GroupSync) -> dict:
    """A sync as the Settings tab and the API show it."""
    waiting, oldest = lag(sync) if sync.state != GroupSync.State.OFF else (0, None)
    backfill_left = len(sync.backfill_members) - sync.backfill_sent if sync.backfill_members else 0
    return {
        "connection": sync.connection.name,
        "connection_id": sync.connection_id,
        "kind": sync.connection.kind,
        "state": sync.state,
        "state_label": sync.get_state_display(),
        "remote_id": sync.remote_id,
        "pending_changes": waiting,
        "lag_seconds": round((timezone.now() - oldest).total_seconds(), 1) if oldest else 0.0,
        "backfill_remaining": backfill_left,
        "last_synced_at": sync.last_synced_at,
        "last_error": sync.last_error,
        "last_error_at": sync.last_error_at,
        "last_reconcile_at": sync.last_reconcile_at,
        "last_reconcile": sync.last_reconcile,
        "can_reconcile": can_reconcile(sync.connection.kind),
        "estimated_seconds_left": (left := estimate(sync.connection.kind, backfill_left + waiting)),
        "estimated_left": duration(left),
    }


def estimate(kind: str, contacts: int) -> float | None:
    """How long sending this many more contacts takes, for apps that publish a slow, steady pace."""
    try:
        pace = provider_class(kind).limits.contacts_per_second
    except ValueError:
        return None
    return round(contacts / pace) if pace and contacts else None


def duration(seconds: float | None) -> str:
    """An estimate as staff read it: "about 2 h 5 min"."""
    if not seconds:
        return ""
    minutes = max(1, round(seconds / 60))
    return f"about {minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"about {minutes} min"


def can_reconcile(kind: str) -> bool:
    """Whether the app can list a list's members (a webhook receiver cannot)."""
    try:
        return provider_class(kind).list_members is not Provider.list_members
    except ValueError:
        return False
