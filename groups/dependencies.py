"""Group dependencies: a dynamic group whose rules read another group's membership (`in_group`).

Who depends on whom, the order and levels in which groups are evaluated so that a group comes after
the groups it reads, and the cycle check the rules are validated with, all in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from .models import CustomerGroup
from .rules import rule_dependencies


def reads(group_id: int) -> set[int]:
    """The ids of the groups a group's rules read; a manual group reads none, whatever rules it holds
    (its members are kept by hand)."""
    rules = CustomerGroup.objects.dynamic().filter(pk=group_id).values_list("rules", flat=True).first()
    return rule_dependencies(rules) if rules else set()


def exists(group_id: int) -> bool:
    return CustomerGroup.objects.filter(pk=group_id).exists()


def dependants_among(group_ids: Iterable[int], groups: Sequence[CustomerGroup]) -> list[CustomerGroup]:
    """The groups among `groups` whose rules read any of `group_ids`, directly or through each other,
    nearest first (the groups of `group_ids` themselves are left out)."""
    start = set(group_ids)
    found: dict[int, CustomerGroup] = {}
    frontier = start
    while frontier:
        step = [g for g in groups if g.pk not in found and g.pk not in start and rule_dependencies(g.rules) & frontier]
        found.update((g.pk, g) for g in step)
        frontier = {g.pk for g in step}
    return list(found.values())


def dependants_of(group: CustomerGroup) -> list[CustomerGroup]:
    """Active dynamic groups whose rules read this group's membership, directly or through others."""
    return dependants_among([group.pk], list(CustomerGroup.objects.active_dynamic().exclude(pk=group.pk)))


def dependency_levels(groups: Sequence[CustomerGroup]) -> list[list[CustomerGroup]]:
    """Split groups into levels so that a group comes after the groups its rules read (in_group)."""
    by_id = {g.pk: g for g in groups}
    depth: dict[int, int] = {}

    def depth_of(group_id: int, seen: frozenset = frozenset()) -> int:
        if group_id in depth:
            return depth[group_id]
        group = by_id[group_id]
        inner = [d for d in rule_dependencies(group.rules) if d in by_id and d not in seen]
        depth[group_id] = 1 + max((depth_of(d, seen | {group_id}) for d in inner), default=-1)
        return depth[group_id]

    levels: dict[int, list[CustomerGroup]] = {}
    for group in groups:
        levels.setdefault(depth_of(group.pk), []).append(group)
    return [levels[k] for k in sorted(levels)]


def dependency_order(groups: Sequence[CustomerGroup]) -> list[CustomerGroup]:
    """The groups, each after the groups it reads."""
    return [g for level in dependency_levels(groups) for g in level]


def chain(start: int, target: int, reads: Callable[[int], set[int]] = reads) -> list[int] | None:
    """The groups from `start` to `target` along in_group references, None when `start` does not reach it.

    A group that would read `start` makes a cycle exactly when this finds a chain back to it.
    """
    parents: dict[int, int | None] = {start: None}
    stack = [start]
    while stack:
        current = stack.pop()
        for nxt in reads(current):
            if nxt == target:
                found = [current]
                while parents[found[-1]] is not None:
                    found.append(parents[found[-1]])  # type: ignore[arg-type]
                return list(reversed(found))
            if nxt not in parents:
                parents[nxt] = current
                stack.append(nxt)
    return None
