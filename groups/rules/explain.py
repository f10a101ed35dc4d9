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
    from django.db import connection

    alias = "c"
    compiler = RuleCompiler(tz=tz, catalogue=catalogue, alias=alias)
    describer = Describer(catalogue, group_names or {})
    columns: list[Sql] = []
    json_columns: set[int] = set()

    def column(sql: Sql, *, is_json: bool = False) -> int:
        if is_json:
            # Read JSON as text and decode it here: the driver's JSON loading is configured by Django, not us.
            sql = Sql(f"({sql.text})::text", sql.params)
            json_columns.add(len(columns))
        columns.append(sql)
        return len(columns) - 1

    def build(node: dict, path: str) -> dict:
        item: dict[str, Any] = {"path": path, "holds": column(compiler.rule(node, row=alias))}
        if "all" in node or "any" in node:
            kind = "all" if "all" in node else "any"
            item["kind"] = kind
            item["description"] = "every rule below holds" if kind == "all" else "at least one rule below holds"
            item["children"] = [build(child, f"{path}/{kind}/{index}") for index, child in enumerate(node[kind])]
        elif "not" in node:
            item["kind"] = "not"
            item["description"] = "the rule below does not hold"
            item["children"] = [build(node["not"], f"{path}/not")]
        else:
            item["description"] = describer.phrase(node, entity=CUSTOMER)
            if "field" in node:
                item["kind"] = "field"
                item["field"] = node["field"]
                source = compiler.source(node["field"], entity=CUSTOMER, row=alias)
                item["value"] = column(source.raw(), is_json=source.column is None)
            elif "event" in node:
                item["kind"] = "event"
                item["event"] = node["event"]
                for name, sql in compiler.event_values(node, row=alias).items():
                    item[name] = column(sql)
            elif "account" in node:
                item["kind"] = "account"
                for name, sql in compiler.account_values(node, row=alias).items():
                    item[name] = column(sql, is_json=True)
            else:
                item["kind"] = "in_group"
                item["group"] = node["in_group"]
                item["member"] = item["holds"]
        return item

    tree = build(doc, "")
    tree["description"] = describe_rules(doc, catalogue=catalogue, group_names=group_names)
    select = ", ".join(sql.text for sql in columns)
    params = resolve([param for sql in columns for param in sql.params], now) + [customer_id]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {select} FROM {CUSTOMER_TABLE} {alias} WHERE {alias}.id = %s", params)
        row = cursor.fetchone()
    if row is None:
        raise LookupError(f"customer {customer_id} does not exist")

    def fill(item: dict) -> dict:
        for key in ("holds", "value", "count", "sum", "accounts", "accounts_matched", "member"):
            if key in item:
                value = row[item[key]]
                if item[key] in json_columns and value is not None:
                    value = json.loads(value)
                item[key] = _plain(value)
        for child in item.get("children", []):
            fill(child)
        return item

    return fill(tree)


def _plain(value: Any) -> Any:
    """JSON-ready: numbers as int or float, days and instants as ISO 8601."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value
