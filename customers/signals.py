"""One announcement for every write that touches customers, so groups can re-evaluate them.

`customers` never imports `groups`: writes call `announce(ids)` (model saves do it through the
receivers below; bulk paths that bypass model signals call it themselves) and `groups` listens to
`customers_touched`. Announcements made inside a transaction are collected and sent once, after
commit, so a batch is evaluated once and only data that really exists is evaluated; a transaction
that rolls back announces nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal, receiver

from .models import Account, AccountMembership, Customer, Event

# Sent with `customer_ids` (a sorted list of ints), `reason` ("event" or "import") and `events`: for
# each customer, the names of the events recorded for it when new events are all that changed, so
# only the groups that read those events need evaluating, or None where anything may have changed.
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
    names = None if events is None else frozenset(events)
    connection = connections[using]
    if not connection.in_atomic_block:
        _send(dict.fromkeys(ids, names), reason)
        return
    _open_batch(connection, reason).add(ids, names)


class _Batch:
    """What one transaction announced with one reason, sent once after it commits."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.events: dict[int, frozenset[str] | None] = {}

    def add(self, ids: set[int], events: frozenset[str] | None) -> None:
        for customer_id in ids:
            known = self.events.get(customer_id, frozenset())
            # Anything-may-have-changed (None) wins over a list of event names.
            self.events[customer_id] = None if known is None or events is None else known | events

    def send(self) -> None:
        _send(self.events, self.reason)


def _open_batch(connection, reason: str) -> _Batch:
    """The batch of the current transaction, registered to be sent when it commits.

    A batch whose transaction rolled back is gone from Django's commit callbacks, so its ids are
    dropped with it and the next transaction starts a new batch.
    """
    batches = connection.__dict__.setdefault("customer_announcements", {})
    batch = batches.get(reason)
    if batch is None or not any(callback == batch.send for _, callback, _ in connection.run_on_commit):
        batch = batches[reason] = _Batch(reason)
        transaction.on_commit(batch.send, using=connection.alias)
    return batch


def _send(events: dict[int, frozenset[str] | None], reason: str) -> None:
    if events:
        customers_touched.send(sender=Customer, customer_ids=sorted(events), reason=reason, events=events)


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
