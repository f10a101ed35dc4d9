"""Puts a rules document into words a shop manager reads, e.g. on the group's Settings tab."""

from __future__ import annotations

from typing import Any

from .fields import ACCOUNT, CUSTOMER, Catalogue
from .operators import NEGATIONS

_WINDOW_WORDS = {
    "today": "today",
    "yesterday": "yesterday",
    "this_week": "this week",
    "last_week": "last week",
    "this_month": "this month",
    "last_month": "last month",
    "this_year": "this year",
    "last_year": "last year",
}
# Counts and sums are never empty, so their negation is the opposite comparison.
_OPPOSITE = {"eq": "neq", "neq": "eq", "gt": "lte", "lte": "gt", "gte": "lt", "lt": "gte"}
_POSITIVE = {positive: negative for negative, positive in NEGATIONS.items()}


def describe_rules(doc: dict, *, catalogue: Catalogue | None = None, group_names: dict[int, str] | None = None) -> str:
    """The whole document as one sentence starting with 'Customers'."""
    describer = Describer(catalogue or Catalogue(), group_names or {})
    if doc in ({"all": []}, {"not": {"any": []}}):
        return "All customers"
    if doc in ({"any": []}, {"not": {"all": []}}):
        return "No customers"
    return "Customers " + describer.phrase(doc)


class Describer:
    """Phrases for rule nodes; explain_rules uses the same phrases for each node of its tree."""

    def __init__(self, catalogue: Catalogue, group_names: dict[int, str]) -> None:
        self.catalogue = catalogue
        self.group_names = group_names

    def phrase(self, node: dict, *, negated: bool = False, entity: str = CUSTOMER, nested: bool = False) -> str:
        """A relative clause ('whose role is ...', 'who made ...'); `not` is pushed down to the conditions."""
        if "not" in node:
            return self.phrase(node["not"], negated=not negated, entity=entity, nested=nested)
        if "all" in node or "any" in node:
            is_all = ("all" in node) != negated  # De Morgan: not(all) = any(not)
            children = node.get("all", node.get("any"))
            if not children:
                # all [] always holds and any [] never does.
                return "who match anything" if is_all else "who match nothing"
            parts = [self.phrase(child, negated=negated, entity=entity, nested=True) for child in children]
            if len(parts) == 1:
                return parts[0]
            text = (" and " if is_all else " or ").join(parts)
            return f"({text})" if nested else text
        if "field" in node:
            return self.field(node, negated=negated, entity=entity)
        if "event" in node:
            return self.event(node, negated=negated)
        if "account" in node:
            return self.account(node, negated=negated)
        if "in_group" in node:
            name = self.group_names.get(node["in_group"])
            group = f"the group '{name}'" if name else f"group {node['in_group']}"
            return f"who are not members of {group}" if negated else f"who are members of {group}"
        return "(an unreadable rule)"

    # Fields ---------------------------------------------------------------------------------------------------

    def field(self, node: dict, *, negated: bool, entity: str) -> str:
        field = node["field"]
        label = self.catalogue.label(entity, field)
        op = node.get("op", "")
        if field == "birthdate" and op == "anniversary_within_next" and entity == CUSTOMER:
            return f"whose birthday is {'not ' if negated else ''}within the next {_duration(node.get('value'))}"
        return f"whose {label} {self.predicate(op, node.get('value'), negated=negated)}"

    def predicate(self, op: str, value: Any, *, negated: bool = False) -> str:
        """'is 'gold'', 'does not contain 'tea'', 'is within the last 30 days'."""
        if negated and op in NEGATIONS:
            op, negated = NEGATIONS[op], False
        elif negated and op in _POSITIVE:
            op, negated = _POSITIVE[op], False
        elif negated and op in ("is_empty", "is_not_empty"):
            op, negated = ("is_not_empty" if op == "is_empty" else "is_empty"), False
        no = "not " if negated else ""
        if op == "is_empty":
            return "is empty"
        if op == "is_not_empty":
            return "is not empty"
        if op == "eq":
            return f"is {no}{_value(value)}"
        if op == "neq":
            return f"is not {_value(value)}"
        if op == "in":
            return f"is {'none' if negated else 'one'} of {_values(value)}"
        if op == "not_in":
            return f"is none of {_values(value)}"
        if op == "contains":
            return f"{'does not contain' if negated else 'contains'} {_value(value)}"
        if op == "not_contains":
            return f"does not contain {_value(value)}"
        if op in ("starts_with", "ends_with"):
            verb = op.split("_")[0]
            return f"{'does not ' + verb[:-1] if negated else verb} with {_value(value)}"
        if op in ("gt", "gte", "lt", "lte"):
            words = {"gt": "greater than", "gte": "at least", "lt": "less than", "lte": "at most"}[op]
            return f"is {no}{words} {_value(value)}"
        if op == "between":
            return f"is {no}between {_value(value[0])} and {_value(value[1])}"
        if op in ("is_true", "is_false"):
            return f"is {no}{op[3:]}"
        if op in ("before", "after", "on"):
            return f"is {no}{op} {value}"
        if op == "within_last":
            return f"is {no}within the last {_duration(value)}"
        if op == "more_than_ago":
            return f"is {no}more than {_duration(value)} ago"
        if op == "within_next":
            return f"is {no}within the next {_duration(value)}"
        if op == "anniversary_within_next":
            return f"has {'no' if negated else 'its'} anniversary within the next {_duration(value)}"
        return f"{'does not match' if negated else 'matches'} '{op}'"

    # Events ---------------------------------------------------------------------------------------------------

    def event(self, node: dict, *, negated: bool) -> str:
        name = str(node["event"]).replace("_", " ")
        where = self.where(node.get("where") or [])
        window = self.window(node.get("window"))
        if "sum" in node:
            spec = node["sum"]
            op = _OPPOSITE.get(spec["op"], spec["op"]) if negated else spec["op"]
            outside = negated and spec["op"] == "between"
            prop = str(spec["property"]).replace("_", " ")
            return (
                f"whose total {prop} of {_plural(name, 2)}{where}{window} is "
                f"{_aggregate(op, spec['value'], outside=outside, amount=True)}"
            )
        spec = node.get("count") or {"op": "gte", "value": 1}
        op = _OPPOSITE.get(spec["op"], spec["op"]) if negated else spec["op"]
        outside = negated and spec["op"] == "between"
        bound = spec["value"]
        if op == "eq" and bound == 0 or op == "lt" and bound == 1 or op == "lte" and bound == 0:
            return f"who made no {_plural(name, 2)}{where}{window}"
        amount = _aggregate(op, bound, outside=outside)
        count = bound[1] if isinstance(bound, list) else bound
        return f"who made {amount} {_plural(name, count)}{where}{window}"

    def where(self, items: list[dict]) -> str:
        if not items:
            return ""
        parts = [
            f"{str(item['property']).replace('_', ' ')} {self.predicate(item['op'], item.get('value'))}"
            for item in items
        ]
        return " where " + " and ".join(parts)

    @staticmethod
    def window(window: dict | None) -> str:
        if not window:
            return ""
        ((kind, value),) = window.items()
        if kind == "last":
            return f" in the last {_duration(value)}"
        if kind == "calendar":
            return " " + _WINDOW_WORDS.get(value, str(value))
        return f" between {value[0]} and {value[1]}"

    # Accounts -------------------------------------------------------------------------------------------------

    def account(self, node: dict, *, negated: bool) -> str:
        inner = node["account"]
        if inner == {"all": []}:
            return "who belong to no account" if negated else "who belong to an account"
        clause = self.phrase(inner, entity=ACCOUNT)
        return f"who belong to {'no' if negated else 'an'} account {clause}"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


def _values(values: Any) -> str:
    values = list(values) if isinstance(values, list) else [values]
    shown = [_value(item) for item in values[:10]]
    more = f" and {len(values) - 10} more" if len(values) > 10 else ""
    return ", ".join(shown) + more


def _duration(value: Any) -> str:
    if not isinstance(value, dict) or len(value) != 1:
        return str(value)
    ((unit, amount),) = value.items()
    return f"{amount} {unit[:-1] if amount == 1 else unit}"


def _aggregate(op: str, bound: Any, *, outside: bool = False, amount: bool = False) -> str:
    if op == "between":
        if outside:
            return f"{'less' if amount else 'fewer'} than {_value(bound[0])} or more than {_value(bound[1])}"
        return f"between {_value(bound[0])} and {_value(bound[1])}"
    words = {
        "eq": "exactly",
        "neq": "other than",
        "gt": "more than",
        "gte": "at least",
        "lt": "less than" if amount else "fewer than",
        "lte": "at most",
    }[op]
    return f"{words} {_value(bound)}"


def _plural(noun: str, count: Any) -> str:
    if count == 1:
        return noun
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and len(noun) > 1 and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"
