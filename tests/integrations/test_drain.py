"""The drain against a real webhook receiver: backfill, following the feed, consent, rename, delete, off."""

from __future__ import annotations

import pytest

from groups import services as groups
from integrations import drain, services
from integrations.models import Connection, GroupSync, SyncSkip

from .conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def run(sync: GroupSync) -> GroupSync:
    """What the drain task does, until nothing is left to send."""
    while drain.drain(sync.pk) is drain.Outcome.MORE:
        pass
    sync.refresh_from_db()
    return sync


def test_a_new_sync_backfills_the_members_then_follows_the_feed(receiver, webhook, group, people):
    groups.add_members(group, [p.pk for p in people[:4]])
    sync = run(services.turn_on(group, webhook))
    assert sync.state == GroupSync.State.IN_SYNC
    assert receiver.lists[sync.remote_id].name == "Regulars"
    assert receiver.members(sync.remote_id) == {p.pk for p in people[:4]}

    groups.add_members(group, [people[5].pk])
    groups.remove_members(group, [people[0].pk])
    run(sync)
    assert receiver.members(sync.remote_id) == {p.pk for p in people[1:4]} | {people[5].pk}
    assert receiver.repeats == [] and receiver.rejected == []


def test_each_customers_changes_are_sent_as_their_last_one(receiver, webhook, group, people):
    sync = run(services.turn_on(group, webhook))
    groups.add_members(group, [people[0].pk, people[1].pk])
    groups.remove_members(group, [people[0].pk])
    groups.add_members(group, [people[0].pk])
    groups.remove_members(group, [people[0].pk])
    run(sync)
    # Four changes in the feed: one delivery each for the last add and the last remove.
    assert receiver.member_changes() == [("group.members_added", people[1].pk),
                                         ("group.members_removed", people[0].pk)]  # fmt: skip
    assert receiver.members(sync.remote_id) == {people[1].pk}


def test_customers_without_consent_are_skipped_with_the_reason(receiver, webhook, group, people):
    Connection.objects.filter(pk=webhook.pk).update(consent=Connection.Consent.EMAIL)
    groups.add_members(group, [p.pk for p in people[:4]])
    sync = run(services.turn_on(group, webhook))
    assert receiver.members(sync.remote_id) == {people[0].pk, people[2].pk}
    assert dict(SyncSkip.objects.filter(sync=sync).values_list("customer_id", "reason")) == {
        people[1].pk: "no email consent", people[3].pk: "no email consent"}  # fmt: skip
    groups.remove_members(group, [people[1].pk, people[2].pk])
    run(sync)
    # The one never sent is not "removed" from the app.
    assert receiver.member_changes()[-1:] == [("group.members_removed", people[2].pk)]
    assert not SyncSkip.objects.filter(sync=sync, customer_id=people[1].pk).exists()


def test_a_change_committed_after_a_later_one_still_reaches_the_app(receiver, webhook, group, people, other_session):
    sync = run(services.turn_on(group, webhook))
    # The other session inserts its change first (the lower history id) and commits last.
    other_session.execute("INSERT INTO groups_membership (group_id, customer_id, added_at) VALUES (%s, %s, now())",
                          [group.pk, people[0].pk])  # fmt: skip
    other_session.execute(
        "INSERT INTO groups_membershipchange (group_id, customer_id, change, changed_at, reason)"
        " VALUES (%s, %s, 'added', now(), 'manual')", [group.pk, people[0].pk])  # fmt: skip
    groups.add_members(group, [people[1].pk])
    assert drain.drain(sync.pk) is drain.Outcome.WAITING  # the later change waits for the earlier one
    assert receiver.members(sync.remote_id) == set()
    other_session.commit()
    run(sync)
    assert receiver.members(sync.remote_id) == {people[0].pk, people[1].pk}
    assert sorted(c for _, c in receiver.member_changes()) == sorted([people[0].pk, people[1].pk])


def test_rename_pause_off_and_delete_reach_the_app(receiver, webhook, group, people, worker):
    groups.add_members(group, [people[0].pk])
    sync = run(services.turn_on(group, webhook))
    group.name = "Best regulars"
    group.save()
    run(sync)
    assert receiver.lists[sync.remote_id].name == "Best regulars"

    services.pause(sync)
    groups.add_members(group, [people[1].pk])
    run(sync)
    assert receiver.members(sync.remote_id) == {people[0].pk}
    run(services.resume(sync))
    assert receiver.members(sync.remote_id) == {people[0].pk, people[1].pk}

    first_list = sync.remote_id
    services.turn_off(sync)
    wait_until(lambda: receiver.lists[first_list].deleted, what="the list deleted")
    sync = run(services.turn_on(group, webhook))
    assert sync.remote_id != first_list and receiver.members(sync.remote_id) == {people[0].pk, people[1].pk}

    group.delete()
    wait_until(lambda: receiver.lists[sync.remote_id].deleted, what="the deleted group's list deleted")
