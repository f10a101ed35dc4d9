"""One announcement for every write that touches customers, so groups can re-evaluate them.

`customers` never imports `groups`: writes call `announce(ids)` (model saves do it through the
receivers below; bulk paths that bypass model signals call it themselves) and `groups` listens to
`customers_touched`. Announcements made inside a transaction are collected and sent once, after
commit, so a batch is evaluated once and only data that really exists is evaluated.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal, receiver

from .models import Account, AccountMembership, Customer, Event

# Sent with `customer_ids` (a sorted list of ints), `reason` ("event" or "import") and `events`:
# the names of the events recorded when new events are all that changed for these customers, so
# only the groups that read those events need evaluating; None when anything may have changed.
customers_touched = Signal()

_pending = threading.local()


@contextmanager
def announcing_as(reason: str) -> Iterator[None]:
    """Label the writes made inside (model saves included) with a reason, e.g. "import"."""
    previous = getattr(_pending, "reason", None)
    _pending.reason = reason
    try:
        yield
    finally:
        _pending.reason = previous


def announce(
    customer_ids: Iterable[int],
    *,
    reason: str | None = None,
    events: Iterable[str] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> None:
    """Announce that these customers changed; listeners run once the transaction commits.

    Pass `events` (their names) when the only change is that these events were recorded.
    """
    reason = reason or getattr(_pending, "reason", None) or "event"
    ids = {int(i) for i in customer_ids if i is not None}
    if not ids:
        return
    names = None if events is None else set(events)
    if not connections[using].in_atomic_block:
        _send(ids, reason, names)
        return
    if not hasattr(_pending, "batches"):
        _pending.batches = {}
    batch = _pending.batches.get((using, reason))
    if batch is None:
        _pending.batches[(using, reason)] = (ids, names)
    else:
        # Anything-may-have-changed (None) wins over a list of event names.
        batch[0].update(ids)
        _pending.batches[(using, reason)] = (batch[0], None if batch[1] is None or names is None else batch[1] | names)
    # Every call registers a flush; the first to run after commit sends the whole batch and the
    # others find it empty. Ids left over from a rolled-back transaction ride along with the next
    # batch: evaluating a customer again is always correct, just slightly more work.
    transaction.on_commit(lambda: _flush(using, reason), using=using)


def _flush(using: str, reason: str) -> None:
    ids, names = _pending.batches.pop((using, reason), (set(), None))
    _send(ids, reason, names)


def _send(ids: set[int], reason: str, events: set[str] | None) -> None:
    if ids:
        customers_touched.send(
            sender=Customer,
            customer_ids=sorted(ids),
            reason=reason,
            events=None if events is None else frozenset(events),
        )


@receiver(post_save, sender=Customer)
def _customer_written(sender, instance: Customer, **kwargs) -> None:
    # A deleted customer needs no announcement: memberships and history go with it (cascade).
    if not kwargs.get("raw"):
        announce([instance.pk])


@receiver(post_save, sender=Event)
@receiver(post_delete, sender=Event)
def _event_written(sender, instance: Event, **kwargs) -> None:
    if not kwargs.get("raw"):
        # A new event changes only what reads its name; an edit may have changed the name itself.
        announce([instance.customer_id], events=[instance.name] if kwargs.get("created") else None)


@receiver(post_save, sender=AccountMembership)
@receiver(post_delete, sender=AccountMembership)
def _account_membership_written(sender, instance: AccountMembership, **kwargs) -> None:
    if not kwargs.get("raw"):
        announce([instance.customer_id])


@receiver(post_save, sender=Account)
def _account_written(sender, instance: Account, **kwargs) -> None:
    # Account state (subscription, plan...) is read by account conditions of every member.
    if not kwargs.get("raw"):
        announce(AccountMembership.objects.filter(account=instance).values_list("customer_id", flat=True))
