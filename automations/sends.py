"""One-off sends: a message to every current member of a group, with a record per recipient.

`start` writes the recipients in one transaction, set-based, from the members at that moment: those
suppressed or unreachable (no consent, no address) as skipped, the rest pending. `deliver` then claims
pending recipients a batch at a time, each by a session-level advisory lock on its id (its customer and
accounts loaded with the batch), and sends to them one at a time, recording each result as soon as the
message is out. A worker killed mid-send leaves the recipients it had not recorded pending (its locks
go with its connection) and every earlier one recorded: the next worker neither loses a message nor
repeats one it recorded. Several workers may deliver one send at once.
"""

from __future__ import annotations

from datetime import datetime

from django.core.mail import get_connection
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from customers.models import Customer
from groups.models import Membership

from . import previews
from .actions import ActionError, Delivery, action_class
from .firings import message_context
from .models import Send, SendRecipient

MAX_ATTEMPTS = 5


def action_for(send: Send):
    return action_class(send.channel)(send.settings)


def audience(send: Send):
    """The members who would receive it now: reachable on the channel and not suppressed."""
    members = Customer.objects.filter(pk__in=Membership.objects.filter(group_id=send.group_id).values("customer_id"))
    suppressed = Membership.objects.filter(group__in=send.suppressed_by.all()).values("customer_id")
    return action_for(send).reachable(members).exclude(pk__in=suppressed)


def preview(send: Send, customer: Customer | None = None) -> dict:
    """The message as one real member would get it (the first member unless one is named)."""
    if customer is None:
        customer = previews.find_member(send.group)
    if customer is None:
        return {"customer": None, "subject": "", "body": "", "error": "The group has no members to preview with."}
    shown = previews.render_for(send.channel, send.settings, send.group, customer)
    texts = {part["name"]: part["text"] for part in shown["parts"]}
    return {"customer": customer, "error": shown["error"], "parts": shown["parts"],
            "subject": texts.get("subject", ""), "body": texts.get("body", "")}  # fmt: skip


def schedule(send: Send, at: datetime | None) -> bool:
    """Queue the send to start now (at=None) or at a moment; only a draft or scheduled send can be."""
    from .tasks import deliver_send

    status = Send.Status.SCHEDULED
    changed = Send.objects.filter(pk=send.pk, status__in=[Send.Status.DRAFT, Send.Status.SCHEDULED]).update(
        status=status, scheduled_for=at or timezone.now()
    )
    if changed and at is None:
        transaction.on_commit(lambda: deliver_send.delay(send.pk))
    return bool(changed)


def cancel(send: Send) -> bool:
    """Cancel a send that has not started; False once it has (starting and cancelling cannot both win)."""
    return bool(
        Send.objects.filter(pk=send.pk, status__in=[Send.Status.DRAFT, Send.Status.SCHEDULED]).update(
            status=Send.Status.CANCELLED, finished_at=timezone.now()
        )
    )


def start(send_id: int, *, now: datetime | None = None) -> bool:
    """Start a scheduled send whose time has come: write its recipients. False if it was not due."""
    now = now or timezone.now()
    with transaction.atomic():
        started = Send.objects.filter(pk=send_id, status=Send.Status.SCHEDULED, scheduled_for__lte=now).update(
            status=Send.Status.RUNNING, started_at=now
        )
        if not started:
            return False
        send = Send.objects.get(pk=send_id)
        members = Membership.objects.filter(group_id=send.group_id).values("customer_id")
        suppressed = Membership.objects.filter(group__in=send.suppressed_by.all()).values("customer_id")
        channel = send.get_channel_display()
        # In this order, each member gets one row: suppressed, then pending for the reachable, then the rest.
        _insert(send, Customer.objects.filter(pk__in=members).filter(pk__in=suppressed), "skipped",
                "Suppressed by another group")  # fmt: skip
        _insert(send, audience(send), "pending", "")
        _insert(send, Customer.objects.filter(pk__in=members), "skipped", f"No {channel} consent or address")
    return True


def _insert(send: Send, customers, status: str, detail: str) -> None:
    sql, params = customers.values_list("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO automations_sendrecipient (send_id, customer_id, status, detail, attempts, finished_at)
                SELECT %s, picked.id, %s, %s, 0, CASE WHEN %s = 'pending' THEN NULL ELSE now() END
                FROM ({sql}) picked(id)
                ON CONFLICT (send_id, customer_id) DO NOTHING""",  # noqa: S608 - Django's own SQL and parameters
            [send.pk, status, detail, status, *params],
        )


# Pending recipients a worker claims at once: one query locks them and one loads their customers and
# accounts, instead of both for every message.
CLAIM_BATCH = 100


def deliver(send_id: int, *, limit: int | None = None) -> int:
    """Send to pending recipients until none is left (or `limit`); returns how many were handled."""
    send = Send.objects.select_related("group").filter(pk=send_id, status=Send.Status.RUNNING).first()
    if send is None:
        return 0
    action = action_for(send)
    handled = 0
    reachable = True
    while reachable and (limit is None or handled < limit):
        ids = _claim(send_id, CLAIM_BATCH if limit is None else min(CLAIM_BATCH, limit - handled))
        if not ids:
            break
        # One mail server connection per batch: held open, it is not opened and closed per message,
        # and a server's limit of messages per connection is never reached.
        mail = get_connection() if send.channel == Send.Channel.EMAIL else None
        try:
            if mail is not None:
                mail.open()
            # Read after locking: a recipient another worker finished meanwhile is no longer pending.
            batch = (
                SendRecipient.objects.filter(pk__in=ids, status=SendRecipient.Status.PENDING)
                .select_related("customer")
                .prefetch_related("customer__accounts")
                .order_by("id")
            )
            for recipient in batch:
                if not _deliver_one(send, action, recipient, mail):
                    reachable = False  # the provider is unreachable: the sweep resumes later
                    break
                handled += 1
        except OSError:
            reachable = False  # the mail server cannot be reached: the sweep resumes later
        finally:
            _release(ids)
            if mail is not None:
                mail.close()
    finish(send_id)
    return handled


def _claim(send_id: int, count: int) -> list[int]:
    """Lock up to `count` pending recipients for this session; those another worker holds are passed over.

    The single-key (bigint) form of the lock, by recipient id, is apart from every two-key lock of the
    product. Candidates are read first, so only the rows returned are ever locked.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """WITH candidate AS MATERIALIZED (
                   SELECT id FROM automations_sendrecipient WHERE send_id = %s AND status = %s ORDER BY id LIMIT %s)
               SELECT id FROM candidate WHERE pg_try_advisory_lock(id) ORDER BY id""",
            [send_id, SendRecipient.Status.PENDING, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _release(ids: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(id) FROM unnest(%s::bigint[]) AS id", [ids])


def _deliver_one(send: Send, action, recipient: SendRecipient, mail) -> bool:
    customer = recipient.customer
    reason = action.skip_reason(customer)  # consent may have been withdrawn since the send started
    if reason:
        _record(recipient, SendRecipient.Status.SKIPPED, reason)
        return True
    delivery = Delivery(customer=customer, key=recipient.idempotency_key,
                        context=message_context(customer, send.group, channel=send.channel))  # fmt: skip
    try:
        detail = action.perform(delivery, connection=mail)
    except ActionError as exc:
        attempts = recipient.attempts + 1
        if exc.permanent or attempts >= MAX_ATTEMPTS:
            _record(recipient, SendRecipient.Status.FAILED, exc.message, attempts=attempts)
            return True
        SendRecipient.objects.filter(pk=recipient.pk).update(attempts=attempts, detail=f"Retrying: {exc.message}")
        return False
    _record(recipient, SendRecipient.Status.SENT, detail)
    return True


def _record(recipient: SendRecipient, status: str, detail: str, *, attempts: int | None = None) -> None:
    fields = {"status": status, "detail": detail, "finished_at": timezone.now()}
    if attempts is not None:
        fields["attempts"] = attempts
    SendRecipient.objects.filter(pk=recipient.pk).update(**fields)


def progress(send: Send) -> dict:
    """Recipients by result so far, with the total."""
    counts = dict(send.recipients.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    result = {status: counts.get(status, 0) for status in SendRecipient.Status.values}
    result["total"] = sum(result.values())
    result["done"] = result["total"] - result["pending"]
    return result


def finish(send_id: int) -> bool:
    """Close a running send with no pending recipient left, writing the final report."""
    with transaction.atomic():
        send = Send.objects.select_for_update().filter(pk=send_id, status=Send.Status.RUNNING).first()
        if send is None or send.recipients.filter(status=SendRecipient.Status.PENDING).exists():
            return False
        report = progress(send)
        report["failures"] = list(
            send.recipients.filter(status=SendRecipient.Status.FAILED).values_list("detail").annotate(n=Count("id"))
        )[:20]
        Send.objects.filter(pk=send_id).update(status=Send.Status.FINISHED, finished_at=timezone.now(), report=report)
    return True


def due_and_running() -> list[int]:
    """Sends the sweep should work on: scheduled ones whose time has come, and running ones."""
    now = timezone.now()
    scheduled = Send.objects.filter(status=Send.Status.SCHEDULED, scheduled_for__lte=now)
    return list(scheduled.values_list("pk", flat=True)) + list(
        Send.objects.filter(status=Send.Status.RUNNING).values_list("pk", flat=True)
    )
