"""A group's rule versions for the Settings tab: each in words, one line per condition, and what changed between two.

The difference is taken between the two outlines, so staff read "− whose role is 'staff'" rather
than a change of JSON.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from .models import CustomerGroup, RuleVersion
from .rules import Catalogue, describe_rules, rule_dependencies
from .rules.describe import Describer

INDENT = "    "


@dataclass
class Line:
    change: str  # "added", "removed" or "same"
    text: str


def outline(rules, *, catalogue: Catalogue, group_names: dict[int, str]) -> list[str]:
    """The rules as indented lines: "All of:" / "Any of:" headings, one condition per line, in words."""
    describer = Describer(catalogue, group_names)
    lines: list[str] = []

    def walk(node, depth: int, negated: bool = False) -> None:
        pad = INDENT * depth
        if "all" in node or "any" in node:
            children = node.get("all", node.get("any"))
            kind = "All" if "all" in node else "Any"
            lines.append(f"{pad}{'Not: ' if negated else ''}{kind} of these{':' if children else ' (none)'}")
            for child in children:
                walk(child, depth + 1)
        elif "not" in node:
            walk(node["not"], depth, not negated)
        else:  # kept versions were valid when saved, so each is a condition the describer reads
            lines.append(pad + describer.phrase(node, negated=negated))

    walk(rules, 0)
    return lines


def difference(older, newer, *, catalogue: Catalogue, group_names: dict[int, str]) -> list[Line]:
    """Every line of both outlines, marked as removed (only in `older`), added (only in `newer`) or the same."""
    before = outline(older, catalogue=catalogue, group_names=group_names)
    after = outline(newer, catalogue=catalogue, group_names=group_names)
    lines = []
    for item in difflib.ndiff(before, after):
        mark, text = item[:2], item[2:]
        if mark == "? ":
            continue
        lines.append(Line({"- ": "removed", "+ ": "added"}.get(mark, "same"), text))
    return lines


def names_for(*documents) -> dict[int, str]:
    """{id: name} of every group the documents' rules read."""
    ids = {pk for document in documents for pk in rule_dependencies(document)}
    return dict(CustomerGroup.objects.filter(pk__in=ids).values_list("pk", "name"))


def history_context(group: CustomerGroup, params) -> dict:
    """The Settings tab's rule history: the versions, newest first, and the difference the query string asks for."""
    versions = list(RuleVersion.objects.filter(group=group).select_related("created_by"))
    if not versions:
        return {"rule_versions": []}
    catalogue = Catalogue.load()
    names = names_for(*(v.rules for v in versions))
    for version in versions:
        version.sentence = describe_rules(version.rules, catalogue=catalogue, group_names=names)
        version.is_current = version.version == group.rule_version
    by_number = {v.version: v for v in versions}
    # Default: the newest change, i.e. the current version against the one before it.
    newer = by_number.get(_number(params.get("compare")), versions[0])
    older = by_number.get(_number(params.get("with")))
    if older is None:
        older = next((v for v in versions if v.version < newer.version), None)
    context = {"rule_versions": versions, "compare_newer": newer, "compare_older": older}
    if older is not None:
        if older.version > newer.version:
            older, newer = newer, older
            context |= {"compare_newer": newer, "compare_older": older}
        context["rule_difference"] = difference(older.rules, newer.rules, catalogue=catalogue, group_names=names)
    return context


def _number(text) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None
