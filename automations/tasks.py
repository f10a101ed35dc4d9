"""Celery tasks for automations: thin wrappers that take ids and call the services."""

from __future__ import annotations

from celery import shared_task

from . import firings, sends
from .models import Trigger

# Changes are handed out once every older transaction on the server has finished; until then the
# task looks again shortly, and after that the minute sweep carries on.
SETTLE_RETRY_SECONDS = 1
SETTLE_RETRIES = 30


@shared_task(name="automations.run_trigger")
def run_trigger(trigger_id: int, attempt: int = 0) -> None:
    """Record the trigger's new firings, then act on its due ones."""
    firings.consume(trigger_id)
    firings.execute_due(trigger_id)
    if firings.has_unsettled_changes(trigger_id) and attempt < SETTLE_RETRIES:
        run_trigger.apply_async((trigger_id, attempt + 1), countdown=SETTLE_RETRY_SECONDS)


@shared_task(name="automations.sweep")
def sweep() -> None:
    """The safety net: read every active trigger's feed, and act on every due firing (minimum times that
    have passed, quiet hours that ended, retries, firings a killed worker left pending)."""
    for trigger_id in Trigger.objects.filter(is_active=True).values_list("pk", flat=True):
        firings.consume(trigger_id)
    firings.execute_due()
    for send_id in sends.due_and_running():
        deliver_send.delay(send_id)


@shared_task(name="automations.deliver_send")
def deliver_send(send_id: int) -> None:
    """Start the send if its time has come, then send to its pending recipients."""
    sends.start(send_id)
    sends.deliver(send_id)
