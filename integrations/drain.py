"""The drain: what a group's sync sends to its app, from committed history, and only then its position.

A sync first backfills (the members read in one snapshot with their feed position, sent in
batches), then follows the feed from exactly that position. Each step reads changes after the
stored position, keeps each customer's last change, sends adds and removes in batches of the
app's size and stores the new position only after the app accepted them. Before sending, the end
of the batch is stored (`sending_until`), so a crash or a retry resends exactly the same batch with
the same delivery keys, and apps that take them (and webhook receivers) drop the repeat.

One drain per connection runs at a time (the advisory lock in `services.connection_lock`), so the
app's rate limits are kept in one place.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from customers.models import Customer
from groups import feed
from groups.feed import Position
from groups.models import Membership, MembershipChange

from . import services
from .models import Connection, GroupSync, RemoteContact, SyncBatch, SyncSkip
from .providers.base import Contact, Provider, RemoteMember

READ_LIMIT = 5000  # changes read per step
STEPS_PER_TASK = 20  # then the task queues itself again, so other syncs get their turn


class Outcome(enum.Enum):
    DONE = "done"  # nothing more to send now
    MORE = "more"  # more to send: run again
    WAITING = "waiting"  # changes committed but not yet settled in the feed: run again shortly
    BUSY = "busy"  # another drain holds the connection: run again shortly


def drain(sync_id: int, *, steps: int = STEPS_PER_TASK) -> Outcome:
    """Send what the sync has not sent yet. ProviderError propagates (the task retries or stops)."""
    sync = GroupSync.objects.filter(pk=sync_id).select_related("connection").first()
    if sync is None:
        return Outcome.DONE
    with services.connection_lock(sync.connection_id) as held:
        if not held:
            return Outcome.BUSY
        GroupSync.objects.filter(pk=sync_id).update(drain_queued=False)
        sync = GroupSync.objects.select_related("connection", "group").get(pk=sync_id)
        if not _should_run(sync):
            return Outcome.DONE
        provider = services.provider_for(sync.connection)
        try:
            outcome = _drain_locked(sync, provider, steps)
        except services.ProviderError as exc:
            services.record_sync_error(sync, exc)
            raise
        services.record_connection_success(sync.connection_id)
        return outcome


def _should_run(sync: GroupSync) -> bool:
    return (
        sync.is_running and sync.group.sync_enabled and sync.connection.status != Connection.Status.DISABLED
    )  # fmt: skip


def _drain_locked(sync: GroupSync, provider: Provider, steps: int) -> Outcome:
    if sync.state == GroupSync.State.BACKFILLING:
        _backfill(sync, provider)
    if sync.remote_id and sync.remote_name != sync.group.name:
        provider.delivery_key = f"sync{sync.pk}:rename:{sync.group.name}"
        sync.remote_id = provider.rename_list(sync.remote_id, sync.group.name) or sync.remote_id
        GroupSync.objects.filter(pk=sync.pk).update(remote_id=sync.remote_id, remote_name=sync.group.name)
        sync.remote_name = sync.group.name
    try:
        for _ in range(steps):
            if not _step(sync, provider):
                break
        else:
            return Outcome.MORE
    except _Stopped:
        return Outcome.DONE
    GroupSync.objects.filter(pk=sync.pk).update(last_error="", failure_count=0)
    # A change whose transaction committed while an older one is still open is not in the feed
    # yet; nothing else would wake this sync when the older one ends without touching groups.
    unsettled = MembershipChange.objects.filter(group_id=sync.group_id, xact_id__gte=feed.head().xact).exists()
    return Outcome.WAITING if unsettled else Outcome.DONE


# --- backfill ------------------------------------------------------------------------------------


def _backfill(sync: GroupSync, provider: Provider) -> None:
    if not sync.position:
        members, position = feed.members_and_position(sync.group_id)
        sync.position, sync.backfill_members, sync.backfill_sent = str(position), members, 0
        GroupSync.objects.filter(pk=sync.pk).update(position=sync.position, backfill_members=members,
                                                    backfill_sent=0, sending_until="")  # fmt: skip
    if not sync.remote_id:
        provider.delivery_key = f"sync{sync.pk}:create:{sync.position}"
        sync.remote_id = provider.ensure_list(sync.group.name, "")
        sync.remote_name = sync.group.name
        GroupSync.objects.filter(pk=sync.pk).update(remote_id=sync.remote_id, remote_name=sync.remote_name)
    size = provider.limits.batch_size
    end = Position.parse(sync.position)
    while sync.backfill_sent < len(sync.backfill_members):
        chunk = sync.backfill_members[sync.backfill_sent : sync.backfill_sent + size]
        contacts, skipped = contacts_for(sync, provider, chunk)
        if contacts:
            provider.delivery_key = _key(sync, f"backfill:{sync.position}:{sync.backfill_sent}", contacts)
            contacts = _accepted(sync, contacts, provider.add_members(sync.remote_id, contacts), skipped)
        with transaction.atomic():
            _record(sync, SyncBatch.Kind.BACKFILL, end, [c.customer_id for c in contacts], [], skipped)
            sync.backfill_sent += len(chunk)
            GroupSync.objects.filter(pk=sync.pk).update(backfill_sent=sync.backfill_sent)
    GroupSync.objects.filter(pk=sync.pk).update(state=GroupSync.State.IN_SYNC, backfill_members=[], backfill_sent=0)
    sync.state, sync.backfill_members, sync.backfill_sent = GroupSync.State.IN_SYNC, [], 0


# --- following the feed --------------------------------------------------------------------------


def _step(sync: GroupSync, provider: Provider) -> bool:
    """Send one read of the feed; whether there may be more to read."""
    after = Position.parse(sync.position)
    changes, end = feed.read([sync.group_id], after, limit=READ_LIMIT)
    if sync.sending_until:  # a batch that was being sent: the same changes again, no more
        end = Position.parse(sync.sending_until)
        changes = [c for c in changes if _order(c.position) <= _order(end)]
    if not changes:
        if end != after:
            _advance(sync, after, end)
        return False
    last: dict[int, str] = {}
    for change in changes:
        last[change.customer_id] = change.change
    joining = [cid for cid, change in last.items() if change == MembershipChange.Change.ADDED]
    leaving = [cid for cid, change in last.items() if change == MembershipChange.Change.REMOVED]
    if not sync.sending_until:
        sync.sending_until = str(end)
        GroupSync.objects.filter(pk=sync.pk).update(sending_until=sync.sending_until)
    adds, skipped = contacts_for(sync, provider, joining)
    # A customer never sent (skipped for consent) needs no removal.
    never_sent = set(SyncSkip.objects.filter(sync=sync, customer_id__in=leaving).values_list("customer_id", flat=True))
    removes = removal_contacts(sync, [cid for cid in leaving if cid not in never_sent])
    size = provider.limits.batch_size
    accepted = []
    for start in range(0, len(adds), size):
        batch = adds[start : start + size]
        provider.delivery_key = _key(sync, f"feed:{sync.position}:add:{start}", batch)
        accepted += _accepted(sync, batch, provider.add_members(sync.remote_id, batch), skipped)
    for start in range(0, len(removes), size):
        batch = removes[start : start + size]
        provider.delivery_key = _key(sync, f"feed:{sync.position}:remove:{start}", batch)
        provider.remove_members(sync.remote_id, batch)
    adds = accepted
    with transaction.atomic():
        SyncSkip.objects.filter(sync=sync, customer_id__in=list(never_sent)).delete()
        _record(sync, SyncBatch.Kind.FEED, end, [c.customer_id for c in adds], [c.customer_id for c in removes],
                skipped)  # fmt: skip
        _advance(sync, after, end)
    return True


class _Stopped(Exception):
    """Staff paused or turned off the sync while this drain was sending."""


def _advance(sync: GroupSync, after: Position, end: Position) -> None:
    # Only from the position this drain read, and only while still running: a sync paused or
    # turned off meanwhile keeps what staff set (a paused one resends this batch when resumed).
    moved = GroupSync.objects.filter(pk=sync.pk, position=str(after), state__in=GroupSync.RUNNING).update(
        position=str(end), sending_until="", last_synced_at=timezone.now()
    )
    if not moved:
        raise _Stopped
    sync.position, sync.sending_until = str(end), ""


def _order(position: Position) -> tuple[int, int]:
    return position.xact, position.change_id


def _key(sync: GroupSync, label: str, contacts: Sequence[Contact]) -> str:
    digest = hashlib.sha256(",".join(str(c.customer_id) for c in contacts).encode()).hexdigest()[:16]
    return f"sync{sync.pk}:{label}:{digest}"


def _accepted(sync: GroupSync, sent: list[Contact], returned: dict[int, str], skipped: dict) -> list[Contact]:
    """The contacts the app took (no longer skipped, if they were); the others are recorded as skipped."""
    _remember(sync, returned)
    SyncSkip.objects.filter(sync=sync, customer_id__in=[c.customer_id for c in sent if c.customer_id in returned]
                            ).delete()  # fmt: skip
    for contact in sent:
        if contact.customer_id not in returned:
            skipped[contact.customer_id] = "refused by the app"
    return [c for c in sent if c.customer_id in returned]


def _remember(sync: GroupSync, remote_ids: dict[int, str]) -> None:
    """Keep the app's ids of the customers it just accepted."""
    known = {cid: rid for cid, rid in remote_ids.items() if rid}
    if not known:
        return
    RemoteContact.objects.bulk_create(
        [RemoteContact(connection_id=sync.connection_id, customer_id=cid, remote_id=rid) for cid, rid in known.items()],
        update_conflicts=True, unique_fields=["connection", "customer_id"], update_fields=["remote_id"],
    )  # fmt: skip


def _record(sync: GroupSync, kind: str, end: Position, added: list[int], removed: list[int],
            skipped: dict[int, str]) -> None:  # fmt: skip
    now = timezone.now()
    SyncBatch.objects.create(sync=sync, kind=kind, end_xact=end.xact, end_change_id=end.change_id,
                             added=len(added), removed=len(removed), skipped=len(skipped), sent_at=now)  # fmt: skip
    if skipped:
        SyncSkip.objects.bulk_create(
            [SyncSkip(sync=sync, customer_id=cid, reason=reason, skipped_at=now) for cid, reason in skipped.items()],
            update_conflicts=True, unique_fields=["sync", "customer_id"], update_fields=["reason", "skipped_at"],
        )  # fmt: skip


# --- contacts and consent ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Customer:
    contact: Contact
    email_consent: bool
    sms_consent: bool


def _load(sync: GroupSync, customer_ids: Iterable[int]) -> dict[int, _Customer]:
    ids = list(customer_ids)
    remote = dict(
        RemoteContact.objects.filter(connection_id=sync.connection_id, customer_id__in=ids).values_list(
            "customer_id", "remote_id"
        )
    )
    rows = Customer.objects.filter(pk__in=ids).values_list(
        "pk", "email", "phone", "first_name", "last_name", "external_id", "email_consent", "sms_consent"
    )
    return {
        pk: _Customer(Contact(pk, email, phone, first, last, external_id, remote.get(pk, "")), email_ok, sms_ok)
        for pk, email, phone, first, last, external_id, email_ok, sms_ok in rows
    }


def skip_reason(connection: Connection, provider: Provider, customer: _Customer) -> str:
    """Why this customer may not be sent to this connection's app, or "" when they may."""
    if connection.consent == Connection.Consent.EMAIL and not customer.email_consent:
        return "no email consent"
    if connection.consent == Connection.Consent.SMS and not customer.sms_consent:
        return "no SMS consent"
    needed = provider.identified_by
    if needed and not any(getattr(customer.contact, name) for name in needed):
        return "no " + " or ".join(name.replace("_", " ") for name in needed) + " on file"
    return ""


def contacts_for(sync: GroupSync, provider: Provider, customer_ids: Sequence[int]) -> tuple[list[Contact], dict]:
    """The contacts to send for these customers, and the reason each of the others is skipped."""
    loaded = _load(sync, customer_ids)
    contacts, skipped = [], {}
    for cid in customer_ids:
        customer = loaded.get(cid)
        reason = skip_reason(sync.connection, provider, customer) if customer else "customer deleted"
        if reason:
            skipped[cid] = reason
        else:
            contacts.append(customer.contact)
    return contacts, skipped


def removal_contacts(sync: GroupSync, customer_ids: Sequence[int]) -> list[Contact]:
    """Who to remove: a deleted customer is still removed, by the app's id for them."""
    loaded = _load(sync, customer_ids)
    remote = dict(
        RemoteContact.objects.filter(connection_id=sync.connection_id, customer_id__in=list(customer_ids)).values_list(
            "customer_id", "remote_id"
        )
    )
    return [
        loaded[cid].contact if cid in loaded else Contact(cid, remote_id=remote.get(cid, "")) for cid in customer_ids
    ]


# --- reconcile -----------------------------------------------------------------------------------


class ReconcileUnavailable(Exception):
    pass


def reconcile(sync_id: int, *, remove_remote_only: bool = False) -> dict | None:
    """Compare the app's list or tag with the group and repair the difference; None when busy.

    Members the group never had (added in the app by hand) are reported, and removed only when
    `remove_remote_only`. The report is kept on the sync.
    """
    sync = GroupSync.objects.select_related("connection", "group").get(pk=sync_id)
    with services.connection_lock(sync.connection_id) as held:
        if not held:
            return None
        provider = services.provider_for(sync.connection)
        try:
            _drain_locked(sync, provider, steps=10_000)
            try:
                remote = list(provider.list_members(sync.remote_id))
            except NotImplementedError:
                raise ReconcileUnavailable(f"{provider.label} cannot list a list's members, so it cannot be "
                                           "reconciled.") from None  # fmt: skip
            report = _repair(sync, provider, remote, remove_remote_only)
        except services.ProviderError as exc:
            services.record_sync_error(sync, exc)
            raise
    GroupSync.objects.filter(pk=sync.pk).update(last_reconcile_at=timezone.now(), last_reconcile=report)
    return report


def _repair(sync: GroupSync, provider: Provider, remote: list, remove_remote_only: bool) -> dict:
    by_remote_id = dict(
        RemoteContact.objects.filter(connection_id=sync.connection_id).values_list("remote_id", "customer_id")
    )
    emails = {m.email.lower() for m in remote if m.email and m.remote_id not in by_remote_id}
    by_email = dict(
        Customer.objects.filter(email__in=list(emails)).values_list("email", "pk")
    ) if emails else {}  # fmt: skip
    by_email = {email.lower(): pk for email, pk in by_email.items()}
    on_remote: dict[int, RemoteMember] = {}
    unknown = []
    for member in remote:
        cid = by_remote_id.get(member.remote_id) or by_email.get(member.email.lower())
        if cid:
            on_remote[cid] = member
        else:
            unknown.append(member)
    members = set(Membership.objects.filter(group_id=sync.group_id).values_list("customer_id", flat=True))
    wanted, _ = contacts_for(sync, provider, sorted(members))
    wanted_ids = {c.customer_id for c in wanted}
    ever = set(
        MembershipChange.objects.filter(group_id=sync.group_id, customer_id__in=list(on_remote))
        .values_list("customer_id", flat=True)
        .distinct()
    )
    to_add = [c for c in wanted if c.customer_id not in on_remote]
    stale = [cid for cid in on_remote if cid not in wanted_ids and cid in ever]
    by_hand = [cid for cid in on_remote if cid not in wanted_ids and cid not in ever]
    # Removed by the id the app just listed them under, which is the one it knows.
    to_remove = [Contact(cid, email=on_remote[cid].email, remote_id=on_remote[cid].remote_id) for cid in stale]
    remote_only = [Contact(0, email=m.email, remote_id=m.remote_id) for m in unknown]
    remote_only += [Contact(cid, email=on_remote[cid].email, remote_id=on_remote[cid].remote_id) for cid in by_hand]
    if remove_remote_only:
        to_remove += remote_only
    stamp = timezone.now().isoformat()
    size = provider.limits.batch_size
    for start in range(0, len(to_add), size):
        batch = to_add[start : start + size]
        provider.delivery_key = _key(sync, f"reconcile:{stamp}:add:{start}", batch)
        _accepted(sync, batch, provider.add_members(sync.remote_id, batch), {})
    for start in range(0, len(to_remove), size):
        batch = to_remove[start : start + size]
        provider.delivery_key = _key(sync, f"reconcile:{stamp}:remove:{start}", batch)
        provider.remove_members(sync.remote_id, batch)
    return {
        "added": len(to_add),
        "removed": len(to_remove),
        "left_alone": len(wanted_ids & set(on_remote)),
        "remote_only": len(remote_only),
        "remote_only_removed": remove_remote_only,
        "remote_only_examples": [c.email or c.remote_id for c in remote_only[:10]],
    }
