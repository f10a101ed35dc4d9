"""How a membership change is recorded: the one INSERT of history rows, for the engine and manual edits.

Every writer of `MembershipChange` rows builds its statement with `insert_changes`, so what a row
holds (its time from the statement's clock, its reason, rule version, run and the person who made
it) is decided here, and `xact_id` is always left to its database default: the feed
(groups/feed.py) orders changes by that writing transaction.
"""

from __future__ import annotations


def insert_changes(changes: str) -> str:
    """An INSERT of one history row per row of the query `changes`.

    `changes` selects `group_id, customer_id, change, rule_version` (its own ORDER BY, if any, is the
    order rows are written in). The statement's last three placeholders are the reason, the run id
    and the id of the user who made the change (None for a change made by rules).
    """
    return f"""
        INSERT INTO groups_membershipchange
            (group_id, customer_id, change, rule_version, changed_at, reason, run_id, initiated_by_id)
        SELECT ch.group_id, ch.customer_id, ch.change, ch.rule_version, statement_timestamp(),
               recorded.reason, recorded.run_id, recorded.initiated_by_id
        FROM ({changes}) ch
        CROSS JOIN (SELECT %s::varchar AS reason, %s::bigint AS run_id, %s::bigint AS initiated_by_id) recorded"""
