"""Operations on connections and syncs: test a connection, turn a group's sync on, pause, resume, off.

The admin, the API and the tasks call these. Sending itself is in `integrations.drain`; providers
never touch the database, so everything they need is loaded here and results are written back here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta

from django.db import connection as db
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from groups.models import CustomerGroup

from .models import Connection, GroupSync
from .providers.base import Provider, ProviderError, provider_class

# The first key of every advisory lock taken here: "at most one drain per connection at a time".
LOCK_SPACE = 0x53594E43  # "SYNC"


class CredentialsUnreadable(ProviderError):
    def __init__(self) -> None:
        super().__init__(
            "The stored credentials cannot be decrypted with the configured keys: was SECRET_KEY or "
            "CREDENTIALS_KEYS changed without keeping the old one as a fallback?",
            permanent=True,
        )


@contextmanager
def connection_lock(connection_id: int) -> Iterator[bool]:
    """Try to hold the connection for this session; yields whether it was free.

    A session-level advisory lock, outside any transaction: a drain makes many calls and stores
    positions in short transactions of its own, and the lock goes with the session if the worker dies.
    """
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_SPACE, connection_id])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            with db.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_SPACE, connection_id])


@contextmanager
def credentials_lock(connection_id: int) -> Iterator[dict]:
    """The connection's row held exclusively (SELECT ... FOR UPDATE), yielding its freshest credentials:
    two workers never refresh a token at once, and one that waited sees the other's new token."""
    with transaction.atomic():
        row = Connection.objects.select_for_update().only("credentials").get(pk=connection_id)
        yield _readable(row.credentials)


def store_credentials(connection_id: int, credentials: dict) -> None:
    """Keep rotated credentials (a new OAuth refresh token) at once, in their own statement."""
    Connection.objects.filter(pk=connection_id).update(credentials=credentials)


# Each connection's endpoint paces, kept for the life of the worker process: the drains of one
# connection follow each other, and each must count the calls of the one before.
_paces: dict[int, dict] = {}


def provider_for(connection: Connection) -> Provider:
    try:
        return provider_class(connection.kind)(
            paces=_paces.setdefault(connection.pk, {}),
            settings=dict(connection.settings),
            credentials=_readable(connection.credentials),
            on_credentials_changed=lambda new: store_credentials(connection.pk, new),
            credentials_lock=lambda: credentials_lock(connection.pk),
        )
    except ValueError as exc:  # an unknown kind, or settings the provider's schema refuses
        raise ProviderError(str(exc), permanent=True) from exc


def _readable(credentials) -> dict:
    # The encrypted field hands back the stored text unchanged when no key decrypts it.
    if not isinstance(credentials, dict):
        raise CredentialsUnreadable()
    return credentials


def mask(value: str) -> str:
    """A secret as staff may see it again: its last four characters at most."""
    return "•" * 8 + value[-4:] if len(value) >= 12 else "•" * 8


# --- connection health ---------------------------------------------------------------------------


def test_connection(connection: Connection) -> tuple[bool, str]:
    """Check the credentials with the app ("Test connection"); the outcome is kept on the row."""
    try:
        account = provider_for(connection).check()
    except ProviderError as exc:
        record_connection_error(connection.pk, exc)
        return False, exc.message
    Connection.objects.filter(pk=connection.pk).update(
        status=Connection.Status.OK, account=account[:255], last_success_at=timezone.now(), last_error=""
    )
    return True, account


def record_connection_success(connection_id: int) -> None:
    now = timezone.now()
    # Written at most once a minute while working: every drain ends here.
    Connection.objects.filter(pk=connection_id).exclude(status=Connection.Status.DISABLED).exclude(
        status=Connection.Status.OK, last_success_at__gte=now - timedelta(minutes=1)
    ).update(status=Connection.Status.OK, last_success_at=now)


def record_connection_error(connection_id: int, exc: ProviderError) -> None:
    # 410 Gone: the endpoint asked not to be called again, so nothing more is sent until staff act.
    status = Connection.Status.DISABLED if exc.status == 410 else Connection.Status.FAILING
    Connection.objects.filter(pk=connection_id).update(status=status, last_error=exc.message,
                                                      last_error_at=timezone.now())  # fmt: skip


def rotate_credentials() -> int:
    """Encrypt every connection's credentials again with the first key (after a key rotation)."""
    count = 0
    for connection in Connection.objects.all():
        _readable(connection.credentials)
        connection.save(update_fields=["credentials"])
        count += 1
    return count


# --- turning sync on and off ---------------------------------------------------------------------


def turn_on(group: CustomerGroup, connection: Connection) -> GroupSync:
    """Start syncing the group to this connection: first a backfill of its members, then the feed."""
    with transaction.atomic():
        sync, _ = GroupSync.objects.select_for_update().get_or_create(group=group, connection=connection)
        if sync.state in (GroupSync.State.OFF, GroupSync.State.PAUSED, GroupSync.State.FAILING):
            sync.state = GroupSync.State.IN_SYNC if sync.position and not sync.backfill_members else (
                GroupSync.State.BACKFILLING)  # fmt: skip
            sync.last_error = ""
            sync.failure_count = 0
            sync.save(update_fields=["state", "last_error", "failure_count"])
        if not group.sync_enabled:
            CustomerGroup.objects.filter(pk=group.pk).update(sync_enabled=True)
            group.sync_enabled = True
    queue_drains(sync_ids=[sync.pk])
    return sync


def resume(sync: GroupSync) -> GroupSync:
    """After a failure was fixed, or a pause: carry on from the stored position."""
    return turn_on(sync.group, sync.connection)


def pause(sync: GroupSync) -> None:
    """Stop sending, keep the list or tag and the position; resuming sends what changed meanwhile."""
    GroupSync.objects.filter(pk=sync.pk).update(state=GroupSync.State.PAUSED)


def turn_off(sync: GroupSync) -> None:
    """Stop syncing and remove the list or tag from the app; turning on again starts afresh."""
    from .tasks import delete_remote_list  # tasks import this module

    with transaction.atomic():
        locked = GroupSync.objects.select_for_update().get(pk=sync.pk)
        remote_id = locked.remote_id
        GroupSync.objects.filter(pk=sync.pk).update(
            state=GroupSync.State.OFF, remote_id="", remote_name="", position="", sending_until="",
            backfill_members=[], backfill_sent=0, last_error="", failure_count=0,
        )  # fmt: skip
        locked.skips.all().delete()
        if remote_id:
            connection_id = locked.connection_id
            transaction.on_commit(lambda: delete_remote_list.delay(connection_id, remote_id), robust=True)


def capture_remote_lists(group: CustomerGroup) -> list[tuple[int, str]]:
    """Before a group is deleted (and its syncs with it): each connection's list or tag to remove."""
    return list(GroupSync.objects.filter(group=group).exclude(remote_id="").values_list("connection_id", "remote_id"))


# --- queueing drains -----------------------------------------------------------------------------


def queue_drains(group_ids: Sequence[int] | None = None, *, sync_ids: Sequence[int] | None = None,
                 force: bool = False) -> list[int]:  # fmt: skip
    """Queue one drain per running sync of these groups, unless one is queued already (or `force`)."""
    from .tasks import drain  # tasks import this module

    syncs = GroupSync.objects.filter(state__in=GroupSync.RUNNING, group__sync_enabled=True).exclude(
        connection__status=Connection.Status.DISABLED
    )
    if group_ids is not None:
        syncs = syncs.filter(group_id__in=list(group_ids))
    if sync_ids is not None:
        syncs = syncs.filter(pk__in=list(sync_ids))
    if not force:
        syncs = syncs.filter(drain_queued=False)
    with transaction.atomic():
        ids = list(syncs.select_for_update(skip_locked=True, of=("self",)).values_list("pk", flat=True))
        GroupSync.objects.filter(pk__in=ids).update(drain_queued=True)
        for sync_id in ids:
            # robust: a broker hiccup must not fail the caller's write; the sweep queues it later.
            transaction.on_commit(lambda sync_id=sync_id: drain.delay(sync_id), robust=True)
    return ids


def record_sync_error(sync: GroupSync, exc: ProviderError) -> None:
    """A transient error is noted (and retried); a permanent one stops the sync until fixed."""
    update = {"last_error": exc.message, "last_error_at": timezone.now(), "failure_count": F("failure_count") + 1}
    if exc.permanent:
        update["state"] = GroupSync.State.FAILING
    GroupSync.objects.filter(pk=sync.pk).update(**update)
    if exc.permanent:
        record_connection_error(sync.connection_id, exc)
