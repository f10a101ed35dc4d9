"""The feed of committed membership changes: every change once, in order, whatever the commit order."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection, transaction

from customers.models import Customer
from groups import feed, services
from groups.feed import Position
from groups.models import CustomerGroup

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def group():
    return CustomerGroup.objects.create(name="Picked by hand", slug="picked", kind=CustomerGroup.Kind.MANUAL)


@pytest.fixture
def people():
    return [Customer.objects.create(email=f"p{i}@example.com") for i in range(6)]


@pytest.fixture
def other_connection():
    """A second, independent session on the test database, to hold a transaction open."""
    settings = connection.settings_dict
    conn = psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
    )
    yield conn
    conn.rollback()
    conn.close()


def add_by_hand(conn, group, customer) -> None:
    """What a manual add writes, in the given session's open transaction."""
    conn.execute(
        "INSERT INTO groups_membership (group_id, customer_id, added_at) VALUES (%s, %s, now())",
        [group.pk, customer.pk],
    )
    conn.execute(
        """INSERT INTO groups_membershipchange (group_id, customer_id, change, changed_at, reason)
           VALUES (%s, %s, 'added', now(), 'manual')""",
        [group.pk, customer.pk],
    )


def drain(group, position: Position, *, limit: int = 1000) -> tuple[list[int], Position]:
    """Every customer id the feed hands out from a position, in order, reading until it is empty."""
    seen = []
    while True:
        changes, position = feed.read([group.pk], position, limit=limit)
        seen.extend(c.customer_id for c in changes)
        if len(changes) < limit:
            return seen, position


def test_a_change_that_commits_after_a_later_one_is_not_skipped(group, people, other_connection):
    start = feed.head()
    # The first transaction inserts its change first (the lower history id) and commits last.
    add_by_hand(other_connection, group, people[0])
    services.add_members(group, [people[1].pk])  # a later change, committed at once

    seen, position = drain(group, start)
    assert seen == []  # handed out only once the older transaction has settled

    other_connection.commit()
    seen, position = drain(group, position)
    assert seen == [people[0].pk, people[1].pk]
    assert drain(group, position)[0] == []


def test_a_transaction_that_writes_late_but_began_early_is_not_skipped(group, people, other_connection):
    start = feed.head()
    other_connection.execute("SELECT pg_current_xact_id()")  # an older transaction, not yet writing
    services.add_members(group, [people[0].pk])
    add_by_hand(other_connection, group, people[1])  # a higher history id, an older transaction
    other_connection.commit()

    seen, _ = drain(group, start)
    assert sorted(seen) == [people[0].pk, people[1].pk]
    assert len(seen) == 2


def test_rolled_back_changes_are_never_handed_out(group, people, other_connection):
    start = feed.head()
    add_by_hand(other_connection, group, people[0])
    other_connection.rollback()
    services.add_members(group, [people[1].pk])
    assert drain(group, start)[0] == [people[1].pk]


def test_reading_in_small_batches_hands_out_each_change_once_in_order(group, people):
    start = feed.head()
    for person in people:
        services.add_members(group, [person.pk])
    services.remove_members(group, [people[0].pk])

    seen, position = drain(group, start, limit=2)
    assert seen == [p.pk for p in people] + [people[0].pk]
    changes, _ = feed.read([group.pk], start, limit=100)
    assert [c.change for c in changes] == ["added"] * 6 + ["removed"]
    assert {c.reason for c in changes} == {"manual"}
    assert feed.pending([group.pk], start) == (7, changes[0].changed_at)
    assert feed.pending([group.pk], position) == (0, None)


def test_only_the_groups_asked_for_are_read(group, people):
    other = CustomerGroup.objects.create(name="Others", slug="others", kind=CustomerGroup.Kind.MANUAL)
    start = feed.head()
    services.add_members(other, [people[0].pk])
    services.add_members(group, [people[1].pk])
    assert drain(group, start)[0] == [people[1].pk]


def test_members_and_position_give_every_later_change_exactly_once(group, people, other_connection):
    services.add_members(group, [people[0].pk])
    # An older transaction is still open while a newer one commits and the backfill reads: the newer
    # one's change is in the members, the older one's is not.
    other_connection.execute("SELECT pg_current_xact_id()")
    services.add_members(group, [people[1].pk])
    members, position = feed.members_and_position(group.pk)
    assert members == [people[0].pk, people[1].pk]
    assert position.snapshot  # the in-flight transaction is remembered

    add_by_hand(other_connection, group, people[2])
    other_connection.commit()
    services.remove_members(group, [people[0].pk])

    changes, position = feed.read([group.pk], position)
    assert [(c.customer_id, c.change) for c in changes] == [(people[2].pk, "added"), (people[0].pk, "removed")]
    assert position.snapshot == ""  # past every transaction the snapshot knew
    assert feed.read([group.pk], position)[0] == []


def test_positions_survive_being_stored_as_text():
    for position in [Position(12, 0), Position(12, 345), Position(12, 0, "10:14:10,12")]:
        assert Position.parse(str(position)) == position


def test_changes_are_announced_after_commit_and_not_on_rollback(group, people):
    heard = []

    def listener(sender, group_ids, **kwargs):
        heard.append(group_ids)

    feed.changes_committed.connect(listener)
    try:
        with transaction.atomic():
            services.add_members(group, [people[0].pk])
            assert heard == []
        assert heard == [[group.pk]]

        with pytest.raises(RuntimeError), transaction.atomic():
            services.add_members(group, [people[1].pk])
            raise RuntimeError("rolled back")
        assert heard == [[group.pk]]
    finally:
        feed.changes_committed.disconnect(listener)


def test_the_engine_announces_and_feeds_the_changes_of_a_customer_write():
    group = CustomerGroup.objects.create(name="Customers", slug="c", rules={"field": "role", "op": "eq", "value": "x"})
    services.fill_new_group(group)
    heard = []

    def listener(sender, group_ids, **kwargs):
        heard.append(group_ids)

    start = feed.head()
    feed.changes_committed.connect(listener)
    try:
        customer = Customer.objects.create(email="new@example.com", role="x")
    finally:
        feed.changes_committed.disconnect(listener)
    assert [group.pk] in heard
    changes, _ = feed.read([group.pk], start)
    assert [(c.customer_id, c.change, c.reason) for c in changes] == [(customer.pk, "added", "event")]


def test_a_transaction_open_in_another_database_does_not_hold_the_feed_back(group, people):
    settings = connection.settings_dict
    elsewhere = psycopg.connect(dbname="postgres", user=settings["USER"], password=settings["PASSWORD"] or None,
                                host=settings["HOST"] or None, port=settings["PORT"] or None)  # fmt: skip
    try:
        elsewhere.execute("SELECT pg_current_xact_id()")  # holds a server-wide transaction id open
        start = feed.head()
        services.add_members(group, [people[0].pk])
        assert drain(group, start)[0] == [people[0].pk]
    finally:
        elsewhere.rollback()
        elsewhere.close()
