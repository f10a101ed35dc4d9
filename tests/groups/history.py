"""Test helpers that read membership and rebuild it from history, independently of the engine."""

from __future__ import annotations

from groups.models import Membership, MembershipChange


def members(group) -> set[int]:
    return set(Membership.objects.filter(group=group).values_list("customer_id", flat=True))


def replay(group) -> set[int]:
    """Apply the group's history in order; the result must be its current membership."""
    current: set[int] = set()
    changes = MembershipChange.objects.filter(group=group).order_by("changed_at", "id")
    for customer_id, change in changes.values_list("customer_id", "change"):
        if change == "added":
            assert customer_id not in current, f"customer {customer_id} added twice in a row"
            current.add(customer_id)
        else:
            assert customer_id in current, f"customer {customer_id} removed while not a member"
            current.discard(customer_id)
    return current
