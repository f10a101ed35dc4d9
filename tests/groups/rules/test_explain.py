"""Why a customer is in or not in a group: each node of the rule, whether it holds, and the deciding values."""

from __future__ import annotations

import pytest

from groups.rules import explain_rules, render_sql
from groups.rules.compiler import compile_rules

from .conftest import CATALOGUE, NOW, PARIS, event, make_customer, make_group, matching_ids

pytestmark = pytest.mark.django_db


def explain(doc, customer, **kwargs):
    return explain_rules(doc, customer.pk, now=NOW, tz=PARIS, catalogue=CATALOGUE, **kwargs)


def test_explanation_mirrors_the_document_with_the_deciding_values():
    vip = make_group("VIP")
    customer = make_customer(
        fields={"role": "Customer"},
        attributes={"score": 12.5},
        events=[
            event("purchase", "2024-03-20T10:00:00+00:00", 300),
            event("purchase", "2024-03-21T10:00:00+00:00", 50),
            event("purchase", "2020-01-01T10:00:00+00:00", 1000),
        ],
        accounts=[{"name": "Smiths", "kind": "household"}, {"name": "Acme", "kind": "business"}],
    )
    doc = {
        "all": [
            {"field": "role", "op": "eq", "value": "customer"},
            {"field": "attributes.score", "op": "gt", "value": 20},
            {
                "event": "purchase",
                "window": {"last": {"days": 90}},
                "sum": {"property": "amount", "op": "gte", "value": 300},
            },
            {"account": {"all": [{"field": "kind", "op": "eq", "value": "household"}]}},
            {"not": {"in_group": vip.pk}},
        ]
    }
    tree = explain(doc, customer, group_names={vip.pk: "VIP"})
    assert tree["holds"] is False
    assert tree["kind"] == "all" and tree["path"] == ""
    assert tree["description"].startswith("Customers whose role is 'customer' and ")
    role, score, purchases, account, not_vip = tree["children"]
    assert role == {
        "path": "/all/0",
        "kind": "field",
        "field": "role",
        "holds": True,
        "value": "Customer",
        "description": "whose role is 'customer'",
    }
    assert (score["holds"], score["value"]) == (False, 12.5)
    assert score["description"] == "whose score is greater than 20"
    assert (purchases["holds"], purchases["count"], purchases["sum"]) == (True, 2, 350)
    assert account["holds"] is True
    assert account["accounts_matched"] == [{"id": account["accounts"][0]["id"], "name": "Smiths"}]
    assert [item["name"] for item in account["accounts"]] == ["Smiths", "Acme"]
    assert not_vip["kind"] == "not" and not_vip["holds"] is True
    assert not_vip["children"][0] == {
        "path": "/all/4/not",
        "kind": "in_group",
        "group": vip.pk,
        "holds": False,
        "member": False,
        "description": "who are members of the group 'VIP'",
    }


def test_explanation_agrees_with_membership_for_every_customer():
    doc = {
        "any": [
            {"field": "attributes.tier", "op": "neq", "value": "gold"},
            {"event": "check_in", "window": {"calendar": "this_month"}, "count": {"op": "eq", "value": 0}},
        ]
    }
    customers = [
        make_customer(attributes={"tier": "gold"}, events=[event("check_in", "2024-03-02T00:00:00+00:00")]),
        make_customer(attributes={"tier": "gold"}),
        make_customer(attributes={}),
        make_customer(attributes={"tier": "GOLD"}, events=[event("check_in", "2024-02-02T00:00:00+00:00")]),
    ]
    members = matching_ids(doc)
    for customer in customers:
        tree = explain(doc, customer)
        assert tree["holds"] is (customer.pk in members)
    assert [explain(doc, customer)["holds"] for customer in customers] == [False, True, True, True]
    empty_tier = explain(doc, customers[2])["children"][0]
    assert empty_tier["value"] is None and empty_tier["holds"] is True


def test_explanation_of_dates_is_plain_json():
    customer = make_customer(fields={"created_at": NOW}, attributes={"renewal": "2024-04-01"})
    tree = explain(
        {
            "all": [
                {"field": "created_at", "op": "on", "value": "2024-03-31"},
                {"field": "attributes.renewal", "op": "within_next", "value": {"days": 1}},
            ]
        },
        customer,
    )
    assert tree["children"][0]["value"] == "2024-03-31T10:00:00+00:00"
    assert tree["children"][1]["value"] == "2024-04-01"
    assert tree["holds"] is True


def test_explaining_an_unknown_customer_says_so():
    with pytest.raises(LookupError):
        explain_rules({"all": []}, 0, now=NOW, tz=PARIS, catalogue=CATALOGUE)


def test_render_sql_shows_the_query_as_it_runs():
    sql, params = compile_rules(
        {"field": "role", "op": "eq", "value": "o'brien"}, now=NOW, tz=PARIS, catalogue=CATALOGUE
    )
    assert render_sql(sql, params) == "COALESCE((lower(c.role) = lower('o''brien')), FALSE)"
