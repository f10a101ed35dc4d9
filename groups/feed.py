"""The feed: every committed membership change, once and in order, for consumers outside the engine.

Sync and automations read history after the fact, each keeping its own `Position`. History ids are
assigned when rows are inserted, but transactions commit in another order, so "ids above the last one
read" would skip a change whose transaction commits late. Each change instead carries the id of the
transaction that wrote it (set by PostgreSQL, `MembershipChange.xact_id`), and the feed only hands out
changes of transactions older than the horizon (the oldest transaction of this database still in
progress): every transaction before it has committed or rolled back, so no change can appear
behind a position later.

A consumer reads with `read`, acts, and only then stores the position it was given; a crash in
between repeats the batch, never skips it. `changes_committed` tells consumers that a transaction
changed some groups, after it committed, so they need not poll to stay current.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.dispatch import Signal

# Sent after commit with `group_ids`: a transaction added or removed members of these groups.
changes_committed = Signal()

# Changes of transactions below this id are settled: committed or rolled back. It is the oldest
# transaction still in progress, leaving out those that positively belong to another database of
# the server (transaction ids are server-wide, and a long load elsewhere must not hold this feed
# back); a transaction not found in pg_stat_activity counts as this database's.
_HORIZON = """(SELECT COALESCE(
    (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s.snap) x
     WHERE mod(x::text::bigint, 4294967296) NOT IN (
        SELECT backend_xid::text::bigint FROM pg_stat_activity
        WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database())),
    pg_snapshot_xmax(s.snap)::text::bigint)
  FROM (SELECT pg_current_snapshot() AS snap) s)"""


@dataclass(frozen=True, order=True)
class Position:
    """A place in the feed: every change before it has been read.

    Changes are ordered by writing transaction, then by id within it. `snapshot`, when set, also
    counts as read every change of a transaction visible in that snapshot: the point right after a
    backfill that read the members in it (see `members_and_position`).
    """

    xact: int
    change_id: int = 0
    snapshot: str = ""

    def __str__(self) -> str:
        return f"{self.xact}:{self.change_id}" + (f":{self.snapshot}" if self.snapshot else "")

    @classmethod
    def parse(cls, text: str) -> Position:
        xact, change_id, *snapshot = text.split(":", 2)
        return cls(int(xact), int(change_id), snapshot[0] if snapshot else "")

    def _without_passed_snapshot(self) -> Position:
        # A snapshot only matters until the position passes its xmax (no transaction after it is
        # visible in it).
        if self.snapshot and self.xact >= int(self.snapshot.split(":")[1]):
            return Position(self.xact, self.change_id)
        return self


@dataclass(frozen=True)
class FeedChange:
    id: int
    group_id: int
    customer_id: int
    change: str  # "added" or "removed"
    changed_at: datetime
    reason: str
    position: Position  # the position right after this change


def head() -> Position:
    """The position after every change committed so far: where a consumer with no past starts."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {_HORIZON}")
        return Position(cursor.fetchone()[0])


def read(group_ids: Sequence[int], after: Position, *, limit: int = 1000) -> tuple[list[FeedChange], Position]:
    """The changes of these groups after `after`, oldest first, at most `limit`, and the position to store
    once they have been acted on (past every settled change when fewer than `limit` came back)."""
    condition, params = _after(after)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT h.id, h.group_id, h.customer_id, h.change, h.changed_at, h.reason, h.xact_id, horizon.xact
            FROM (SELECT {_HORIZON} AS xact) horizon
            LEFT JOIN groups_membershipchange h
              ON h.group_id = ANY(%s) AND {condition} AND h.xact_id < horizon.xact
            ORDER BY h.xact_id, h.id
            LIMIT {int(limit)}
            """,
            [list(group_ids), *params],
        )
        rows = cursor.fetchall()
    horizon = rows[0][7]
    changes = [
        FeedChange(id_, group_id, customer_id, change, changed_at, reason, Position(xact, id_, after.snapshot))
        for id_, group_id, customer_id, change, changed_at, reason, xact, _ in rows
        if id_ is not None
    ]
    if len(changes) == limit:
        end = changes[-1].position
    elif horizon > after.xact:
        end = Position(horizon, 0, after.snapshot)
    else:
        end = changes[-1].position if changes else after
    return changes, end._without_passed_snapshot()


def members_and_position(group_id: int) -> tuple[list[int], Position]:
    """The group's current members and the feed position right after them, read in one snapshot:
    a consumer that starts from these members and then follows the feed from that position sees every
    later change exactly once."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT pg_current_snapshot()::text,
                   COALESCE((SELECT array_agg(customer_id ORDER BY customer_id)
                             FROM groups_membership WHERE group_id = %s), '{}')
            """,
            [group_id],
        )
        snapshot, members = cursor.fetchone()
    xmin = int(snapshot.split(":")[0])
    return members, Position(xmin, 0, snapshot)._without_passed_snapshot()


def pending(group_ids: Sequence[int], after: Position) -> tuple[int, datetime | None]:
    """How many settled changes of these groups lie after `after`, and when the oldest was made."""
    condition, params = _after(after)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*), min(h.changed_at) FROM groups_membershipchange h
            WHERE h.group_id = ANY(%s) AND {condition} AND h.xact_id < {_HORIZON}
            """,
            [list(group_ids), *params],
        )
        count, oldest = cursor.fetchone()
    return count, oldest


def _after(after: Position) -> tuple[str, list]:
    """The condition on history rows `h` for the changes after a position."""
    # The first term bounds the scan of the (group, xact_id, id) index to the changes after the position.
    condition = "h.xact_id >= %s AND (h.xact_id, h.id) > (%s, %s)"
    params: list = [after.xact, after.xact, after.change_id]
    if after.snapshot:
        condition += " AND NOT pg_visible_in_snapshot(h.xact_id::text::xid8, %s::pg_snapshot)"
        params.append(after.snapshot)
    return condition, params


def announce(group_ids) -> None:
    """Tell consumers, once the current transaction commits, that these groups' members changed."""
    ids = sorted({int(g) for g in group_ids})
    if ids:
        transaction.on_commit(lambda: changes_committed.send(sender=None, group_ids=ids))
