"""Customers by membership of a group: one condition for the customer list in the admin and in the API."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q

from .models import Membership


def in_group(group_id: int) -> Q:
    """Current members of the group. EXISTS rather than a join: one row per customer, served by the
    membership's unique (group, customer) index."""
    return Q(Exists(Membership.objects.filter(group_id=group_id, customer_id=OuterRef("pk"))))


def not_in_group(group_id: int) -> Q:
    return ~in_group(group_id)
