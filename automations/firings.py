"""Firings: read each trigger's changes from the feed, record each once, act on it when due.

`consume` records a Firing per change (keyed by trigger and change, so a change fires a trigger at most
once) in the same transaction that moves the trigger's feed position: a crash repeats the read and the
keys drop the repeats. `execute_due` then acts on due firings one at a time, each in its own transaction
holding the firing's row lock while the action runs, and checks the policy at that moment (still in the
group, re-entry, cooldown, suppression, consent, quiet hours).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from customers.models import Customer
from groups import feed
from groups.feed import Position
from groups.models import CustomerGroup, Membership, MembershipChange, Reason

from . import unsubscribe
from .actions import ActionError, Delivery, action_class
from .models import Firing, Trigger

# Changes that come from setting a group up rather than from what a customer did. Group creation has
# its own reason where the groups app records one.
BACKFILL_REASONS = frozenset(
    reason.value
    for reason in Reason
    if reason.name in {"GROUP_CREATED", "RULE_CHANGE", "ACTIVATION", "DEACTIVATION", "IMPORT"}  # fmt: skip
)
READ_BATCH = 5000
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)


def consume(trigger_id: int) -> int:
    """Record the firings of every change after the trigger's position; returns how many were recorded."""
    recorded = 0
    while True:
        with transaction.atomic():
            # One reader per trigger at a time; a second waits and then reads from the moved position.
            trigger = Trigger.objects.select_for_update().filter(pk=trigger_id, is_active=True).first()
            if trigger is None:
                return recorded
            after = Position.parse(trigger.position) if trigger.position else feed.head()
            changes, end = feed.read([trigger.group_id], after, limit=READ_BATCH)
            wanted = (
                MembershipChange.Change.ADDED if trigger.on == Trigger.On.ENTER else MembershipChange.Change.REMOVED
            )
            firings = [_firing(trigger, change) for change in changes if change.change == wanted]
            # A batch read again after a crash finds its firings recorded: the key keeps them once.
            known = set(
                Firing.objects.filter(trigger=trigger, change_id__in=[f.change_id for f in firings]).values_list(
                    "change_id", flat=True
                )
            )
            firings = [f for f in firings if f.change_id not in known]
            Firing.objects.bulk_create(firings, ignore_conflicts=True)
            recorded += len(firings)
            Trigger.objects.filter(pk=trigger.pk).update(position=str(end))
        if len(changes) < READ_BATCH:
            return recorded


def has_unsettled_changes(trigger_id: int) -> bool:
    """Whether the trigger's group has committed changes the feed does not hand out yet (an older
    transaction somewhere on the server is still open)."""
    trigger = Trigger.objects.filter(pk=trigger_id, is_active=True).first()
    if trigger is None or not trigger.position:
        return False
    after = Position.parse(trigger.position)
    return MembershipChange.objects.filter(group_id=trigger.group_id, xact_id__gte=after.xact).exists()


def _firing(trigger: Trigger, change: feed.FeedChange) -> Firing:
    due = change.changed_at + (trigger.minimum_time or timedelta())
    firing = Firing(trigger=trigger, customer_id=change.customer_id, change_id=change.id, reason=change.reason,
                    changed_at=change.changed_at, due_at=due)  # fmt: skip
    backfill = change.reason in BACKFILL_REASONS
    if trigger.origin == Trigger.Origin.ORGANIC and backfill:
        firing.status, firing.finished_at = Firing.Status.SKIPPED, timezone.now()
        firing.detail = f"Backfill ({Reason(change.reason).label.lower()}): this trigger acts on organic changes only"
    elif trigger.origin == Trigger.Origin.BACKFILL and not backfill:
        firing.status, firing.finished_at = Firing.Status.SKIPPED, timezone.now()
        firing.detail = "Organic change: this trigger acts on backfill only"
    return firing


def execute_due(trigger_id: int | None = None, *, now: datetime | None = None, limit: int | None = None) -> int:
    """Act on pending firings that are due (of one trigger, or all); returns how many were handled."""
    handled = 0
    while limit is None or handled < limit:
        with transaction.atomic():
            due = Firing.objects.filter(status=Firing.Status.PENDING, due_at__lte=now or timezone.now())
            if trigger_id is not None:
                due = due.filter(trigger_id=trigger_id)
            # Workers share the queue: each takes a firing no one else holds. A killed worker's lock
            # goes with its connection, and the firing is still pending for the next one.
            firing = (
                due.select_for_update(skip_locked=True, of=("self",))
                .select_related("trigger__group", "customer")
                .order_by("due_at", "id")
                .first()
            )
            if firing is None:
                return handled
            act(firing, now=now)
        handled += 1
    return handled


def act(firing: Firing, *, now: datetime | None = None) -> None:
    """Decide and do one firing (called holding its row lock)."""
    now = now or timezone.now()
    trigger = firing.trigger
    with connection.cursor() as cursor:
        # Re-entry and cooldown look at this customer's earlier firings of the trigger: one at a time.
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [trigger.pk % 2**31, firing.customer_id % 2**31])
    action = action_class(trigger.action)(trigger.settings)
    reason = skip_reason(firing, action, now)
    if reason:
        _finish(firing, Firing.Status.SKIPPED, reason, now)
        return
    if action.channel and trigger.has_quiet_hours:
        until = quiet_until(trigger, now)
        if until is not None:
            local = f"{until.astimezone(trigger.group.zone):%Y-%m-%d %H:%M %Z}"
            Firing.objects.filter(pk=firing.pk).update(due_at=until, detail=f"Held for quiet hours until {local}")
            return
    try:
        detail = action.perform(delivery_for(firing, action))
    except ActionError as exc:
        _failed(firing, exc, now)
        return
    except Exception as exc:  # an unexpected error is retried like a transient one, and shown
        _failed(firing, ActionError(f"{type(exc).__name__}: {exc}", permanent=False), now)
        return
    _finish(firing, Firing.Status.SENT, detail, now)
    Trigger.objects.filter(pk=trigger.pk).update(last_fired_at=now, failure_count=0, last_error="")


def skip_reason(firing: Firing, action, now: datetime) -> str:
    """Why the policy says not to act now, or ''."""
    trigger, customer = firing.trigger, firing.customer
    latest = (
        MembershipChange.objects.filter(group_id=trigger.group_id, customer_id=customer.pk)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    if latest != firing.change_id:
        # A later change of this customer in this group: they left (or came back) since, and the later
        # change has its own firing. This is what makes the minimum time stop flapping.
        return "No longer a member" if trigger.on == Trigger.On.ENTER else "Back in the group"
    earlier = Firing.objects.filter(trigger=trigger, customer=customer, status=Firing.Status.SENT).exclude(pk=firing.pk)
    if trigger.reentry == Trigger.Reentry.ONCE and earlier.exists():
        return "Already fired for this customer (re-entry: once per customer)"
    if trigger.cooldown:
        last = earlier.filter(finished_at__gt=now - trigger.cooldown).order_by("-finished_at").first()
        if last is not None:
            return f"Cooldown: fired for this customer at {timezone.localtime(last.finished_at):%Y-%m-%d %H:%M}"
    suppressing = (
        CustomerGroup.objects.filter(pk__in=trigger.suppressed_by.values("pk"))
        .filter(pk__in=Membership.objects.filter(customer_id=customer.pk).values("group_id"))
        .values_list("name", flat=True)
        .first()
    )
    if suppressing:
        return f"Suppressed: in “{suppressing}”"
    return action.skip_reason(customer)


def quiet_until(trigger: Trigger, now: datetime) -> datetime | None:
    """When the trigger's quiet hours end, if `now` is inside them, in the group's time zone."""
    zone = trigger.group.zone
    local = now.astimezone(zone)
    start, end, moment = trigger.quiet_start, trigger.quiet_end, local.time()
    if start < end:
        quiet, day = start <= moment < end, local.date()
    else:  # overnight, e.g. 21:00 to 09:00
        quiet = moment >= start or moment < end
        day = local.date() + timedelta(days=1) if moment >= start else local.date()
    if not quiet:
        return None
    # Combined in the zone, so a DST change overnight moves the end in UTC and not on the wall clock.
    return datetime.combine(day, end, tzinfo=zone).astimezone(now.tzinfo)


def delivery_for(firing: Firing, action) -> Delivery:
    trigger, customer = firing.trigger, firing.customer
    return Delivery(
        customer=customer,
        key=firing.idempotency_key,
        firing_id=firing.pk,
        context=message_context(
            customer,
            trigger.group,
            channel=action.channel,
            event_type="group.entered" if trigger.on == Trigger.On.ENTER else "group.left",
        ),  # fmt: skip
    )


def message_context(customer: Customer, group: CustomerGroup, *, channel: str = "", event_type: str = "") -> dict:
    """What templates see: the customer, the group, the customer's accounts and an unsubscribe link."""
    context = {"customer": customer, "group": group, "accounts": list(customer.accounts.all()),
               "event_type": event_type}  # fmt: skip
    if channel:
        context["unsubscribe_url"] = unsubscribe.link(customer, channel)
    return context


def _finish(firing: Firing, status: str, detail: str, now: datetime) -> None:
    Firing.objects.filter(pk=firing.pk).update(status=status, detail=detail, finished_at=now)


def _failed(firing: Firing, error: ActionError, now: datetime) -> None:
    trigger = firing.trigger
    message = error.message
    if error.code == "unsubscribed":
        # The person texted STOP to our number: they do not want SMS, from any trigger.
        customer = firing.customer
        customer.sms_consent = False
        customer.save(update_fields=["sms_consent", "updated_at"])
        message += " SMS consent cleared."
    attempts = firing.attempts + 1
    if error.permanent or attempts >= MAX_ATTEMPTS:
        Firing.objects.filter(pk=firing.pk).update(status=Firing.Status.FAILED, detail=message, attempts=attempts,
                                                   finished_at=now)  # fmt: skip
        Trigger.objects.filter(pk=trigger.pk).update(last_error=message, failure_count=F("failure_count") + 1)
        return
    wait = retry_delay(attempts, error.retry_after)
    Firing.objects.filter(pk=firing.pk).update(attempts=attempts, due_at=now + wait,
                                               detail=f"Attempt {attempts} failed, retrying: {message}")  # fmt: skip


def retry_delay(attempts: int, retry_after: float | None = None) -> timedelta:
    """Exponential backoff with jitter, and never sooner than the provider asked."""
    wait = FIRST_RETRY.total_seconds() * 2 ** (attempts - 1) * random.uniform(0.8, 1.2)  # noqa: S311
    return timedelta(seconds=max(wait, retry_after or 0))
