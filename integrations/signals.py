"""How group changes reach the syncs: committed membership changes, renames and deletions."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from groups.feed import changes_committed
from groups.models import CustomerGroup

from . import services

logger = logging.getLogger(__name__)


@receiver(changes_committed)
def drain_changed_groups(sender, group_ids, **kwargs) -> None:
    # Sent after the writer's commit: a failure here must not fail the write (the sweep catches up).
    try:
        services.queue_drains(group_ids)
    except Exception:
        logger.exception("Could not queue the drains of groups %s; the periodic sweep will.", group_ids)


@receiver(post_save, sender=CustomerGroup)
def follow_group_settings(sender, instance: CustomerGroup, created: bool, **kwargs) -> None:
    # A rename (or sync switched back on) is sent by the group's next drain.
    if not created:
        transaction.on_commit(lambda: services.queue_drains([instance.pk]), robust=True)


@receiver(pre_delete, sender=CustomerGroup)
def remove_lists_of_deleted_group(sender, instance: CustomerGroup, **kwargs) -> None:
    # The syncs go with the group (cascade), so what the apps need is taken now, sent after commit.
    from .tasks import delete_remote_list

    for connection_id, remote_id in services.capture_remote_lists(instance):
        transaction.on_commit(lambda c=connection_id, r=remote_id: delete_remote_list.delay(c, r), robust=True)
