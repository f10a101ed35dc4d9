"""Triggers hear about membership changes as soon as they commit (the minute sweep catches the rest)."""

from __future__ import annotations

from django.dispatch import receiver

from groups.feed import changes_committed

from .models import Trigger


@receiver(changes_committed)
def run_triggers_of_changed_groups(sender, group_ids, **kwargs) -> None:
    from .tasks import run_trigger  # tasks import the services, which import this app's models

    for trigger_id in Trigger.objects.filter(group_id__in=group_ids, is_active=True).values_list("pk", flat=True):
        run_trigger.delay(trigger_id)
