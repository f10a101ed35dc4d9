"""Checks a rules document against the rule language and lists every problem with where it is."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from customers.fields import DATE, DATETIME, NUMBER, TEXT
from customers.values import is_number, parse_day

from .fields import ACCOUNT, CUSTOMER, JSON, Catalogue
from .limits import MAX_CONDITIONS, MAX_DEPTH, MAX_DURATION, MAX_IN_VALUES, MAX_TEXT_LENGTH, MAX_YEAR, MIN_YEAR
from .operators import AGGREGATE_OPS, ALL_OPERATORS, CALENDAR_WINDOWS, DATE_OPS, DURATION_UNITS, NO_VALUE_OPS, OPERATORS

BOOLEAN_KEYS = ("all", "any", "not")
CONDITION_KEYS = ("field", "event", "account", "in_group")
FIELD_KEYS = ("field", "op", "value")
EVENT_KEYS = ("event", "where", "window", "count", "sum")
WHERE_KEYS = ("property", "op", "value")


class RulesInvalid(ValueError):
    """A rules document that breaks the rule language; `errors` lists each problem as {path, message}."""

    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        summary = "; ".join(f"{error['path'] or '/'}: {error['message']}" for error in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"invalid rules: {summary}{more}")


def validate_rules(
    doc: Any,
    *,
    catalogue: Catalogue,
    group_id: int | None = None,
    group_exists: Callable[[int], bool] | None = None,
    group_dependencies: Callable[[int], set[int]] | None = None,
) -> list[dict]:
    """Every problem of the document at once, each {"path": JSON pointer, "message": sentence}; [] = valid.

    `group_exists` and `group_dependencies` default to reading groups from the database.
    """
    checker = _Checker(catalogue)
    checker.rule(doc, "", depth=1, entity=CUSTOMER)
    if checker.conditions > MAX_CONDITIONS:
        checker.error("", f"the rules have {checker.conditions} conditions; at most {MAX_CONDITIONS} are allowed")
    if checker.in_groups:
        from groups import dependencies  # reads groups from the database; the rest of this module does not

        exists = group_exists or dependencies.exists
        reads = group_dependencies or dependencies.reads
        for path, target in checker.in_groups:
            if group_id is not None and target == group_id:
                checker.error(path, "a group cannot depend on itself; choose another group")
            elif not exists(target):
                checker.error(path, f"group {target} does not exist")
            elif group_id is not None:
                chain = dependencies.chain(target, group_id, reads)
                if chain is not None:
                    through = " -> ".join(str(gid) for gid in chain)
                    checker.error(
                        path,
                        f"group {target} already depends on this group ({through} -> this group), "
                        "so using it here would make a cycle",
                    )
    return checker.errors


def ensure_valid_rules(
    doc: Any,
    *,
    catalogue: Catalogue,
    group_id: int | None = None,
    group_exists: Callable[[int], bool] | None = None,
    group_dependencies: Callable[[int], set[int]] | None = None,
) -> None:
    """Raise RulesInvalid listing every problem when the document is not valid."""
    errors = validate_rules(
        doc,
        catalogue=catalogue,
        group_id=group_id,
        group_exists=group_exists,
        group_dependencies=group_dependencies,
    )
    if errors:
        raise RulesInvalid(errors)


def rule_dependencies(doc: Any) -> set[int]:
    """The ids of the groups a document's in_group conditions refer to (tolerates invalid documents)."""
    return {
        node["in_group"]
        for node in _nodes(doc)
        if isinstance(node.get("in_group"), int) and not isinstance(node["in_group"], bool)
    }


def events_read(doc: Any) -> set[str]:
    """The event names a document's event conditions count (tolerates invalid documents)."""
    return {node["event"] for node in _nodes(doc) if isinstance(node.get("event"), str)}


def _nodes(doc: Any) -> Iterator[dict]:
    pending = [doc]
    while pending:
        node = pending.pop()
        if not isinstance(node, dict):
            continue
        yield node
        for key in ("all", "any"):
            if isinstance(node.get(key), list):
                pending.extend(node[key])
        for key in ("not", "account"):
            if key in node:
                pending.append(node[key])


def pointer(path: str, key: str | int) -> str:
    """Extend a JSON pointer by one key or index (RFC 6901 escaping)."""
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


def _suggest(word: str, choices: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""


def _quoted(words: Iterable[str], conjunction: str = "or") -> str:
    words = [f"'{word}'" for word in words]
    return ", ".join(words[:-1]) + f" {conjunction} " + words[-1] if len(words) > 1 else words[0]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Checker:
    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.errors: list[dict] = []
        self.conditions = 0
        self.in_groups: list[tuple[str, int]] = []

    def error(self, path: str, message: str) -> None:
        # Paths and messages quote the document, which may hold lone surrogates: shown as escapes,
        # so that the answer itself is valid Unicode.
        self.errors.append({"path": _printable(path), "message": _printable(message)})

    def unknown_keys(self, node: dict, path: str, allowed: tuple[str, ...], what: str) -> None:
        for key in node:
            if key not in allowed:
                self.error(
                    pointer(path, key),
                    f"unknown key '{key}' in {what}{_suggest(str(key), allowed)}"
                    if _suggest(str(key), allowed)
                    else f"unknown key '{key}' in {what}; it takes {_quoted(allowed, 'and')}",
                )

    # Rules -----------------------------------------------------------------------------------------

    def rule(self, node: Any, path: str, *, depth: int, entity: str) -> None:
        if depth > MAX_DEPTH:
            self.error(path, f"rules nest at most {MAX_DEPTH} levels deep; flatten this part")
            return
        if not isinstance(node, dict):
            self.error(
                path, f'a rule must be an object such as {{"all": [...]}} or {{"field": ...}}, not {_shown(node)}'
            )
            return
        booleans = [key for key in BOOLEAN_KEYS if key in node]
        conditions = [key for key in CONDITION_KEYS if key in node]
        if booleans:
            self.boolean_node(node, path, booleans[0], depth=depth, entity=entity)
        elif not conditions:
            self.not_a_rule(node, path)
        elif len(conditions) > 1:
            self.error(path, f"a condition has one kind; this one mixes {_quoted(conditions)}")
        else:
            self.condition(conditions[0], node, path, depth=depth, entity=entity)

    def boolean_node(self, node: dict, path: str, key: str, *, depth: int, entity: str) -> None:
        for other in node:
            if other == key:
                continue
            if other in BOOLEAN_KEYS + CONDITION_KEYS:
                message = f"a Boolean node has exactly one key ('{key}'); put '{other}' in a rule of its own"
            else:
                message = f"unknown key '{other}' in a Boolean node; it has exactly one key ('{key}')"
            self.error(pointer(path, other), message)
        self.boolean(key, node[key], pointer(path, key), depth=depth, entity=entity)

    def not_a_rule(self, node: dict, path: str) -> None:
        """An object with neither a Boolean key nor a condition key."""
        if not node:
            self.error(path, 'an empty rule; write a condition, or {"all": []} to match every customer')
            return
        key = str(next(iter(node)))
        self.error(
            path,
            f"unknown rule key '{key}'"
            + (
                _suggest(key, BOOLEAN_KEYS + CONDITION_KEYS)
                or f"; a rule is one of {_quoted(BOOLEAN_KEYS + CONDITION_KEYS)}"
            ),
        )

    def condition(self, kind: str, node: dict, path: str, *, depth: int, entity: str) -> None:
        self.conditions += 1
        if entity == ACCOUNT and kind != "field":
            self.error(
                path, f"inside an account condition only all, any, not and field conditions are allowed, not '{kind}'"
            )
        elif kind == "field":
            self.field_condition(node, path, entity=entity)
        elif kind == "event":
            self.event_condition(node, path)
        elif kind == "account":
            self.unknown_keys(node, path, ("account",), "an account condition")
            self.rule(node["account"], pointer(path, "account"), depth=depth + 1, entity=ACCOUNT)
        else:
            self.in_group_condition(node, path)

    def in_group_condition(self, node: dict, path: str) -> None:
        self.unknown_keys(node, path, ("in_group",), "an in-group condition")
        target = node["in_group"]
        if isinstance(target, bool) or not isinstance(target, int) or not 0 < target < 2**63:
            self.error(
                pointer(path, "in_group"),
                f"in_group takes a group id (a positive whole number), not {_shown(target)}",
            )
        else:
            self.in_groups.append((pointer(path, "in_group"), target))

    def boolean(self, key: str, value: Any, path: str, *, depth: int, entity: str) -> None:
        if key == "not":
            self.rule(value, path, depth=depth + 1, entity=entity)
            return
        if not isinstance(value, list):
            self.error(path, f"'{key}' takes a list of rules, not {_shown(value)}")
            return
        for index, child in enumerate(value):
            self.rule(child, pointer(path, index), depth=depth + 1, entity=entity)

    # Field conditions ---------------------------------------------------------------------------------

    def field_condition(self, node: dict, path: str, *, entity: str) -> None:
        self.unknown_keys(node, path, FIELD_KEYS, "a field condition")
        field = node["field"]
        field_path = pointer(path, "field")
        if not isinstance(field, str) or not field:
            self.error(
                field_path, f"field must be a field name such as 'email' or 'attributes.tier', not {_shown(field)}"
            )
            return
        if len(field) > MAX_TEXT_LENGTH:
            self.error(field_path, f"a field name is at most {MAX_TEXT_LENGTH} characters")
            return
        if not self.no_nul(field, field_path):
            return
        type_ = self.catalogue.field_type(entity, field)
        if type_ is None:
            where = "account " if entity == ACCOUNT else ""
            if field == "attributes." or field == "attributes":
                self.error(field_path, "name the attribute after 'attributes.', e.g. 'attributes.tier'")
            else:
                suggestion = _suggest(field, self.catalogue.field_names(entity))
                self.error(
                    field_path,
                    f"unknown {where}field '{field}'"
                    + (suggestion or "; custom attributes are written 'attributes.<key>'"),
                )
            return
        noun = f"{type_} field '{field}'" if type_ != JSON else f"attribute '{field}'"
        self.operation(node, path, type_=type_, noun=noun, subject=field)

    def operation(self, node: dict, path: str, *, type_: str, noun: str, subject: str) -> None:
        """Check op and value of a field condition or an event's where-condition."""
        op_path = pointer(path, "op")
        if "op" not in node:
            self.error(op_path, f"the condition on '{subject}' needs an op, for example 'eq' or 'is_empty'")
            return
        op = node["op"]
        if not isinstance(op, str) or op not in ALL_OPERATORS:
            shown = op if isinstance(op, str) else _shown(op)
            self.error(op_path, f"unknown operator '{shown}'" + _suggest(str(op), OPERATORS[type_]))
            return
        if op not in OPERATORS[type_]:
            if type_ == JSON and (op in DATE_OPS or op == "anniversary_within_next"):
                self.error(
                    op_path,
                    f"operator '{op}' needs '{subject}' declared as a date or datetime "
                    f"attribute in the attribute catalogue",
                )
            else:
                self.error(op_path, f"operator '{op}' does not apply to {noun}")
            return
        value_path = pointer(path, "value")
        if op in NO_VALUE_OPS:
            if "value" in node:
                self.error(value_path, f"operator '{op}' takes no value; remove 'value'")
            return
        if "value" not in node:
            self.error(value_path, f"operator '{op}' needs a value")
            return
        self.operand(type_, op, node["value"], value_path)

    def operand(self, type_: str, op: str, value: Any, path: str) -> None:
        check = _OPERAND_CHECKS[op]
        if op == "between" and type_ not in (DATE, DATETIME):
            check = _Checker.number_range
        check(self, type_, op, value, path)

    def equality_operand(self, type_: str, op: str, value: Any, path: str) -> None:
        if type_ == TEXT:
            self.text(value, path)
        elif type_ == NUMBER:
            self.number(value, path)
        elif type_ == "boolean":
            if not isinstance(value, bool):
                self.error(path, f"'{op}' on a boolean takes true or false, not {_shown(value)}")
        elif isinstance(value, str):
            self.text(value, path)
        elif not (is_number(value) or isinstance(value, bool)):
            self.error(path, f"'{op}' takes text, a number, true or false, not {_shown(value)}")

    def list_operand(self, type_: str, op: str, value: Any, path: str) -> None:
        if not isinstance(value, list) or not value:
            self.error(path, f"'{op}' takes a list of 1 to {MAX_IN_VALUES} values, not {_shown(value)}")
            return
        if len(value) > MAX_IN_VALUES:
            self.error(path, f"'{op}' takes at most {MAX_IN_VALUES} values; this list has {len(value)}")
            return
        for index, item in enumerate(value):
            item_path = pointer(path, index)
            if type_ == TEXT or (type_ == JSON and isinstance(item, str)):
                self.text(item, item_path)
            elif type_ == NUMBER:
                self.number(item, item_path)
            elif not is_number(item):
                self.error(item_path, f"'{op}' values are text or numbers, not {_shown(item)}")

    def text_operand(self, type_: str, op: str, value: Any, path: str) -> None:
        self.text(value, path)

    def number_operand(self, type_: str, op: str, value: Any, path: str) -> None:
        self.number(value, path)

    def day_range_operand(self, type_: str, op: str, value: Any, path: str) -> None:
        self.day_range(value, path)

    def number_range(self, type_: str, op: str, value: Any, path: str) -> None:
        if not isinstance(value, list) or len(value) != 2:
            self.error(path, f"'between' takes [low, high], two numbers, not {_shown(value)}")
            return
        self.number(value[0], pointer(path, 0))
        self.number(value[1], pointer(path, 1))
        if is_number(value[0]) and is_number(value[1]) and value[0] > value[1]:
            self.error(path, f"'between' low {value[0]} is greater than high {value[1]}; swap them")

    def day_operand(self, type_: str, op: str, value: Any, path: str) -> None:
        self.day(value, path)

    def duration_operand(self, type_: str, op: str, value: Any, path: str) -> None:
        units = ("days", "weeks") if type_ == DATE else DURATION_UNITS
        self.duration(value, path, units=units, what=f"'{op}' on a {type_}")

    def anniversary_operand(self, type_: str, op: str, value: Any, path: str) -> None:
        self.duration(value, path, units=("days",), what="'anniversary_within_next'")

    # Events ---------------------------------------------------------------------------------------------

    def event_condition(self, node: dict, path: str) -> None:
        self.unknown_keys(node, path, EVENT_KEYS, "an event condition")
        name = node["event"]
        if not isinstance(name, str) or not name:
            self.error(pointer(path, "event"), f"event takes an event name such as 'purchase', not {_shown(name)}")
        elif len(name) > MAX_TEXT_LENGTH:
            self.error(pointer(path, "event"), f"an event name is at most {MAX_TEXT_LENGTH} characters")
        else:
            self.no_nul(name, pointer(path, "event"))
        if "where" in node:
            where, where_path = node["where"], pointer(path, "where")
            if not isinstance(where, list):
                self.error(where_path, f"'where' takes a list of property conditions, not {_shown(where)}")
            else:
                for index, item in enumerate(where):
                    self.where(item, pointer(where_path, index))
        if "window" in node:
            self.window(node["window"], pointer(path, "window"))
        if "count" in node and "sum" in node:
            self.error(pointer(path, "sum"), "an event condition takes count or sum, not both; remove one")
        if "count" in node:
            self.aggregate(node["count"], pointer(path, "count"), is_sum=False)
        if "sum" in node:
            self.aggregate(node["sum"], pointer(path, "sum"), is_sum=True)

    def where(self, item: Any, path: str) -> None:
        self.conditions += 1
        if not isinstance(item, dict):
            self.error(path, f'a where-condition is an object {{"property", "op", "value"}}, not {_shown(item)}')
            return
        self.unknown_keys(item, path, WHERE_KEYS, "a where-condition")
        prop = item.get("property")
        if not isinstance(prop, str) or not prop:
            self.error(
                pointer(path, "property"),
                "a where-condition needs a property: 'amount' or a key of the event's properties",
            )
            return
        if len(prop) > MAX_TEXT_LENGTH:
            self.error(pointer(path, "property"), f"a property name is at most {MAX_TEXT_LENGTH} characters")
            return
        if not self.no_nul(prop, pointer(path, "property")):
            return
        type_ = NUMBER if prop == "amount" else JSON
        noun = "number property 'amount'" if prop == "amount" else f"property '{prop}'"
        self.operation(item, path, type_=type_, noun=noun, subject=prop)

    def window(self, window: Any, path: str) -> None:
        if not isinstance(window, dict) or len(window) != 1:
            self.error(path, "a window has exactly one of 'last', 'calendar' or 'between'")
            return
        ((kind, value),) = window.items()
        inner = pointer(path, kind)
        if kind == "last":
            self.duration(value, inner, units=DURATION_UNITS, what="'last'")
        elif kind == "calendar":
            if value not in CALENDAR_WINDOWS:
                self.error(
                    inner,
                    f"unknown calendar window {_shown(value)}"
                    + (_suggest(value, CALENDAR_WINDOWS) if isinstance(value, str) else "")
                    + (
                        ""
                        if isinstance(value, str) and _suggest(value, CALENDAR_WINDOWS)
                        else f"; use one of {_quoted(CALENDAR_WINDOWS)}"
                    ),
                )
        elif kind == "between":
            self.day_range(value, inner)
        else:
            self.error(
                inner,
                f"unknown window '{kind}'"
                + (_suggest(str(kind), ("last", "calendar", "between")) or "; use 'last', 'calendar' or 'between'"),
            )

    def aggregate(self, value: Any, path: str, *, is_sum: bool) -> None:
        what = "sum" if is_sum else "count"
        keys = ("property", "op", "value") if is_sum else ("op", "value")
        if not isinstance(value, dict):
            self.error(path, f"'{what}' is an object with {_quoted(keys)}, not {_shown(value)}")
            return
        self.unknown_keys(value, path, keys, f"'{what}'")
        if is_sum:
            prop = value.get("property")
            if not isinstance(prop, str) or not prop:
                self.error(
                    pointer(path, "property"),
                    "'sum' needs a property to add up: 'amount' or a key of the event's properties",
                )
            elif len(prop) > MAX_TEXT_LENGTH:
                self.error(pointer(path, "property"), f"a property name is at most {MAX_TEXT_LENGTH} characters")
            else:
                self.no_nul(prop, pointer(path, "property"))
        op = value.get("op")
        if op not in AGGREGATE_OPS:
            shown = op if isinstance(op, str) else _shown(op)
            self.error(
                pointer(path, "op"),
                f"'{what}' needs an op among {_quoted(AGGREGATE_OPS)}, not '{shown}'"
                + (_suggest(op, AGGREGATE_OPS) if isinstance(op, str) else ""),
            )
            return
        value_path = pointer(path, "value")
        if "value" not in value:
            self.error(value_path, f"'{what}' needs a value")
            return

        def check(item: Any, item_path: str) -> bool:
            if is_sum:
                return self.number(item, item_path)
            if isinstance(item, bool) or not isinstance(item, int) or item < 0:
                self.error(item_path, f"a count is a whole number of 0 or more, not {_shown(item)}")
                return False
            return True

        bound = value["value"]
        if op == "between":
            if not isinstance(bound, list) or len(bound) != 2:
                self.error(value_path, f"'between' takes [low, high], not {_shown(bound)}")
            elif check(bound[0], pointer(value_path, 0)) & check(bound[1], pointer(value_path, 1)):
                if bound[0] > bound[1]:
                    self.error(value_path, f"'between' low {bound[0]} is greater than high {bound[1]}; swap them")
        else:
            check(bound, value_path)

    # Values ---------------------------------------------------------------------------------------------

    def text(self, value: Any, path: str) -> bool:
        if not isinstance(value, str):
            self.error(path, f"the value must be text, not {_shown(value)}")
            return False
        if value == "":
            self.error(path, "an empty text never matches; use 'is_empty' or 'is_not_empty' instead")
            return False
        if len(value) > MAX_TEXT_LENGTH:
            self.error(path, f"text values are at most {MAX_TEXT_LENGTH} characters; this one has {len(value)}")
            return False
        return self.no_nul(value, path)

    def no_nul(self, value: str, path: str) -> bool:
        # The database cannot hold a NUL character, so no stored value could ever match one.
        if "\x00" in value:
            self.error(path, "text cannot contain the NUL character (\\u0000)")
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.error(path, "text must be valid Unicode; it holds a lone surrogate (such as \\ud800)")
            return False
        return True

    def number(self, value: Any, path: str) -> bool:
        if not is_number(value):
            self.error(path, f"the value must be a number, not {_shown(value)}")
            return False
        return True

    def day(self, value: Any, path: str) -> bool:
        day = parse_day(value)
        if day is None:
            self.error(path, f"the value must be a day written YYYY-MM-DD, not {_shown(value)}")
            return False
        # Far from the calendar's ends, so the day before, the day after and local midnights always exist.
        if not MIN_YEAR <= day.year <= MAX_YEAR:
            self.error(path, f"the day must be between {MIN_YEAR}-01-01 and {MAX_YEAR}-12-31, not {value}")
            return False
        return True

    def day_range(self, value: Any, path: str) -> None:
        if not isinstance(value, list) or len(value) != 2:
            self.error(path, f'\'between\' takes two days ["YYYY-MM-DD", "YYYY-MM-DD"], not {_shown(value)}')
            return
        if self.day(value[0], pointer(path, 0)) & self.day(value[1], pointer(path, 1)):
            if parse_day(value[0]) > parse_day(value[1]):  # type: ignore[operator]
                self.error(path, f"the first day {value[0]} is after the second {value[1]}; swap them")

    def duration(self, value: Any, path: str, *, units: tuple[str, ...], what: str) -> None:
        if not isinstance(value, dict) or len(value) != 1:
            self.error(path, f'{what} takes one duration such as {{"{units[0]}": 30}}, using {_quoted(units)}')
            return
        ((unit, amount),) = value.items()
        if unit not in units:
            self.error(pointer(path, unit), f"{what} counts in {_quoted(units)}, not '{unit}'")
        elif isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_DURATION:
            self.error(
                pointer(path, unit),
                f"the number of {unit} must be a whole number from 0 to {MAX_DURATION}, not {_shown(amount)}",
            )


# How the value of each operator that takes one is checked ("between" on numbers: see operand).
_OPERAND_CHECKS: dict[str, Callable[..., None]] = {
    "eq": _Checker.equality_operand,
    "neq": _Checker.equality_operand,
    "in": _Checker.list_operand,
    "not_in": _Checker.list_operand,
    "contains": _Checker.text_operand,
    "not_contains": _Checker.text_operand,
    "starts_with": _Checker.text_operand,
    "ends_with": _Checker.text_operand,
    "gt": _Checker.number_operand,
    "gte": _Checker.number_operand,
    "lt": _Checker.number_operand,
    "lte": _Checker.number_operand,
    "between": _Checker.day_range_operand,
    "before": _Checker.day_operand,
    "after": _Checker.day_operand,
    "on": _Checker.day_operand,
    "within_last": _Checker.duration_operand,
    "more_than_ago": _Checker.duration_operand,
    "within_next": _Checker.duration_operand,
    "anniversary_within_next": _Checker.anniversary_operand,
}


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
