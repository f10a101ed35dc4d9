"""Hostile rules documents (deep, wide, odd Unicode, wrong types): the validator never raises, every problem
has a path and a sentence, and whatever it accepts keeps to rules.md and compiles to SQL PostgreSQL accepts."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from groups.rules import Catalogue, compile_rules, validate_rules

CATALOGUE = Catalogue(customer={"tier": "text", "score": "number", "vip": "boolean", "renewal": "date",
                                "last_login": "datetime"}, account={"plan": "text"})  # fmt: skip
WORDS = ["all", "any", "not", "field", "op", "value", "event", "where", "window", "count", "sum", "property",
         "account", "in_group", "last", "days", "hours", "weeks", "calendar", "between", "kind", "name"]  # fmt: skip
FIELDS = ["email", "role", "birthdate", "created_at", "email_consent", "attributes.tier", "attributes.score",
          "attributes.vip", "attributes.renewal", "attributes.last_login", "attributes.x y", "nope"]  # fmt: skip
OPS = ["eq", "neq", "in", "not_in", "contains", "starts_with", "gt", "lte", "between", "is_empty", "is_true",
       "before", "on", "within_last", "more_than_ago", "anniversary_within_next", "sum", "bogus"]  # fmt: skip

odd_text = st.one_of(
    st.text(max_size=20),
    st.text(st.characters(categories=["Cs", "Cc", "Zl", "Zp", "Mn", "So"]), max_size=8),  # lone surrogates, NUL
    st.sampled_from(
        [
            "\x00",
            "\ud800",
            "a\udfffb",
            "'; DROP TABLE customers_customer; --",
            "%s",
            "%(x)s",
            "x" * 1001,
            "2024-02-30",
            "9999-12-31",
            "0001-01-01",
            "\u202eevil",
            "😀",
        ]
    ),  # fmt: skip
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False), odd_text)  # fmt: skip
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=3),
                      max_leaves=8)  # fmt: skip
conditions = st.one_of(
    st.fixed_dictionaries({"field": st.sampled_from(FIELDS) | odd_text, "op": st.sampled_from(OPS)},
                          optional={"value": values}),
    st.fixed_dictionaries({"event": odd_text | st.just("purchase")}, optional={
        "where": st.lists(st.fixed_dictionaries({"property": odd_text, "op": st.sampled_from(OPS), "value": values}),
                          max_size=3),
        "window": st.sampled_from([{"last": {"days": 3}}, {"calendar": "last_month"}, {"between": ["2024-01-01",
                                   "2023-01-01"]}, {"last": {"days": -1}}, {"last": {"days": 10**12}}]) | values,
        "count": st.fixed_dictionaries({"op": st.sampled_from(OPS), "value": values}),
    }),
    st.fixed_dictionaries({"in_group": st.integers(min_value=-5, max_value=2**64) | odd_text}),
    st.fixed_dictionaries({"account": st.just({"all": []}) | values}),
    st.dictionaries(st.sampled_from(WORDS) | odd_text, values, max_size=3),
)  # fmt: skip


def rules(inner):
    return st.one_of(
        st.fixed_dictionaries({st.sampled_from(["all", "any"]): st.lists(inner, max_size=5)}).map(lambda d: d),
        st.builds(lambda r: {"not": r}, inner),
        st.lists(inner, max_size=3),
    )


documents = st.one_of(
    st.recursive(conditions, rules, max_leaves=20),
    st.builds(lambda depth, leaf: _nest(depth, leaf), st.integers(min_value=1, max_value=400), conditions),
    st.builds(lambda n, leaf: {"any": [leaf] * n}, st.integers(min_value=190, max_value=260), conditions),
    values,
)


def _nest(depth: int, leaf: dict) -> dict:
    for index in range(depth):
        leaf = {"not": leaf} if index % 2 else {"all": [leaf]}
    return leaf


def _strings(value):
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _depth(rule) -> int:
    if isinstance(rule, dict) and ("all" in rule or "any" in rule):
        return 1 + max((_depth(r) for r in rule.get("all", rule.get("any"))), default=0)
    if isinstance(rule, dict) and "not" in rule:
        return 1 + _depth(rule["not"])
    return 0


@pytest.mark.django_db
@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])  # fmt: skip
@given(doc=documents)
def test_hostile_documents_are_refused_with_paths_or_compile_to_valid_sql(doc):
    problems = validate_rules(doc, catalogue=CATALOGUE, group_exists=lambda pk: pk == 1,
                              group_dependencies=lambda pk: set())  # fmt: skip
    assert isinstance(problems, list)
    for problem in problems:
        assert set(problem) == {"path", "message"}
        assert problem["path"] == "" or problem["path"].startswith("/")
        assert problem["message"] and _is_unicode(problem["message"]) and _is_unicode(problem["path"])
    if problems:
        return
    # Accepted: it keeps to the limits of rules.md and PostgreSQL can store and plan every part of it.
    assert _depth(doc) <= 10
    for text in _strings(doc):
        assert "\x00" not in text and _is_unicode(text) and len(text) <= 1000
    condition, params = compile_rules(doc, now=dt.datetime(2026, 5, 4, tzinfo=dt.UTC),
                                      tz=zoneinfo.ZoneInfo("Europe/Paris"), catalogue=CATALOGUE, alias="c")  # fmt: skip
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN SELECT c.id FROM customers_customer c WHERE {condition}", params)  # noqa: S608


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
