"""Explains, for one customer, which parts of a rule hold and the values that decided each."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from decimal import Decimal
from typing import Any

from .compiler import CUSTOMER_TABLE, RuleCompiler, Sql, resolve
from .describe import Describer, describe_rules
from .fields import CUSTOMER, Catalogue


def explain_rules(
    doc: dict,
    customer_id: int,
    *,
    now: dt.datetime,
    tz: zoneinfo.ZoneInfo,
    catalogue: Catalogue,
    group_names: dict[int, str] | None = None,
) -> dict:
    """A tree mirroring the document: each node has path, kind, description and holds; conditions add the
    deciding values (field: value; event: count and sum; account: accounts and accounts_matched;
    in_group: member).

    Every node's `holds` is the compiler's own SQL for that node, evaluated for this customer in one query,
    so the explanation cannot disagree with the membership. Raises LookupError for an unknown customer.
    """
    explanation = _Explanation(tz, catalogue, group_names or {})
    tree = explanation.node(doc, "")
    tree["description"] = describe_rules(doc, catalogue=catalogue, group_names=group_names)
    return explanation.filled(tree, explanation.read(customer_id, now))


# The keys of a tree node that hold a column index until the customer's row is read.
_VALUE_KEYS = ("holds", "value", "count", "sum", "accounts", "accounts_matched", "member")
_ALIAS = "c"


class _Explanation:
    """Builds the tree with column indexes in place of values, then reads every column in one query."""

    def __init__(self, tz: zoneinfo.ZoneInfo, catalogue: Catalogue, group_names: dict[int, str]) -> None:
        self.compiler = RuleCompiler(tz=tz, catalogue=catalogue, alias=_ALIAS)
        self.describer = Describer(catalogue, group_names)
        self.columns: list[Sql] = []
        self.json_columns: set[int] = set()

    def column(self, sql: Sql, *, is_json: bool = False) -> int:
        if is_json:
            # Read JSON as text and decode it here: the driver's JSON loading is configured by Django, not us.
            sql = Sql(f"({sql.text})::text", sql.params)
            self.json_columns.add(len(self.columns))
        self.columns.append(sql)
        return len(self.columns) - 1

    def node(self, node: dict, path: str) -> dict:
        item: dict[str, Any] = {"path": path, "holds": self.column(self.compiler.rule(node, row=_ALIAS))}
        if "all" in node or "any" in node:
            kind = "all" if "all" in node else "any"
            item["kind"] = kind
            item["description"] = "every rule below holds" if kind == "all" else "at least one rule below holds"
            item["children"] = [self.node(child, f"{path}/{kind}/{index}") for index, child in enumerate(node[kind])]
        elif "not" in node:
            item["kind"] = "not"
            item["description"] = "the rule below does not hold"
            item["children"] = [self.node(node["not"], f"{path}/not")]
        else:
            item["description"] = self.describer.phrase(node, entity=CUSTOMER)
            item.update(self.condition(node, item["holds"]))
        return item

    def condition(self, node: dict, holds: int) -> dict[str, Any]:
        """The kind of a condition and the columns of the values that decide it."""
        if "field" in node:
            source = self.compiler.source(node["field"], entity=CUSTOMER, row=_ALIAS)
            return {
                "kind": "field",
                "field": node["field"],
                "value": self.column(source.raw(), is_json=source.column is None),
            }
        if "event" in node:
            values = self.compiler.event_values(node, row=_ALIAS)
            return {"kind": "event", "event": node["event"], **{name: self.column(sql) for name, sql in values.items()}}
        if "account" in node:
            values = self.compiler.account_values(node, row=_ALIAS)
            return {"kind": "account", **{name: self.column(sql, is_json=True) for name, sql in values.items()}}
        return {"kind": "in_group", "group": node["in_group"], "member": holds}

    def read(self, customer_id: int, now: dt.datetime) -> tuple:
        """Every column for this customer, in one query."""
        from django.db import connection

        select = ", ".join(sql.text for sql in self.columns)
        params = resolve([param for sql in self.columns for param in sql.params], now) + [customer_id]
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {select} FROM {CUSTOMER_TABLE} {_ALIAS} WHERE {_ALIAS}.id = %s", params)
            row = cursor.fetchone()
        if row is None:
            raise LookupError(f"customer {customer_id} does not exist")
        return row

    def filled(self, item: dict, row: tuple) -> dict:
        """The tree with each column index replaced by its value in `row`."""
        for key in _VALUE_KEYS:
            if key in item:
                value = row[item[key]]
                if item[key] in self.json_columns and value is not None:
                    value = json.loads(value)
                item[key] = _plain(value)
        for child in item.get("children", []):
            self.filled(child, row)
        return item


def _plain(value: Any) -> Any:
    """JSON-ready: numbers as int or float, days and instants as ISO 8601."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value
