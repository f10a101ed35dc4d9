"""The rule as a sentence a shop manager reads."""

from __future__ import annotations

import pytest

from groups.rules import Catalogue, describe_rules

CATALOGUE = Catalogue(customer={"tier": "text"}, labels={("customer", "tier"): "loyalty tier"})


@pytest.mark.parametrize(
    "doc, sentence",
    [
        (
            {
                "all": [
                    {"field": "role", "op": "eq", "value": "customer"},
                    {"event": "purchase", "window": {"last": {"days": 90}}, "count": {"op": "gte", "value": 3}},
                ]
            },
            "Customers whose role is 'customer' and who made at least 3 purchases in the last 90 days",
        ),
        ({"field": "email", "op": "is_empty"}, "Customers whose email is empty"),
        (
            {"field": "first_name", "op": "not_contains", "value": "tea"},
            "Customers whose first name does not contain 'tea'",
        ),
        (
            {"field": "attributes.tier", "op": "in", "value": ["gold", "platinum"]},
            "Customers whose loyalty tier is one of 'gold', 'platinum'",
        ),
        ({"field": "attributes.size", "op": "between", "value": [1, 5]}, "Customers whose size is between 1 and 5"),
        (
            {"field": "birthdate", "op": "anniversary_within_next", "value": {"days": 7}},
            "Customers whose birthday is within the next 7 days",
        ),
        (
            {"field": "created_at", "op": "within_last", "value": {"days": 1}},
            "Customers whose created at is within the last 1 day",
        ),
        ({"field": "email_consent", "op": "is_true"}, "Customers whose email consent is true"),
        (
            {
                "event": "purchase",
                "where": [{"property": "category", "op": "eq", "value": "Chinese tea"}],
                "window": {"last": {"days": 90}},
            },
            "Customers who made at least 1 purchase where category is 'Chinese tea' in the last 90 days",
        ),
        (
            {
                "event": "purchase",
                "window": {"calendar": "last_month"},
                "sum": {"property": "amount", "op": "gte", "value": 500},
            },
            "Customers whose total amount of purchases last month is at least 500",
        ),
        (
            {"event": "check_in", "window": {"last": {"days": 60}}, "count": {"op": "eq", "value": 0}},
            "Customers who made no check ins in the last 60 days",
        ),
        (
            {
                "event": "purchase",
                "window": {"between": ["2024-01-01", "2024-01-31"]},
                "count": {"op": "eq", "value": 1},
            },
            "Customers who made exactly 1 purchase between 2024-01-01 and 2024-01-31",
        ),
        (
            {"not": {"event": "purchase", "window": {"calendar": "this_year"}, "count": {"op": "gte", "value": 2}}},
            "Customers who made fewer than 2 purchases this year",
        ),
        (
            {"not": {"event": "purchase", "count": {"op": "between", "value": [2, 4]}}},
            "Customers who made fewer than 2 or more than 4 purchases",
        ),
        (
            {
                "account": {
                    "all": [
                        {"field": "kind", "op": "eq", "value": "household"},
                        {"field": "attributes.subscription_status", "op": "eq", "value": "active"},
                    ]
                }
            },
            "Customers who belong to an account whose kind is 'household' and whose subscription status is 'active'",
        ),
        ({"not": {"account": {"all": []}}}, "Customers who belong to no account"),
        ({"in_group": 12}, "Customers who are members of the group 'Tea lovers'"),
        ({"in_group": 13}, "Customers who are members of group 13"),
        # not is pushed down to the conditions (De Morgan), with exact negations.
        (
            {
                "not": {
                    "all": [
                        {"field": "role", "op": "eq", "value": "staff"},
                        {"any": [{"in_group": 13}, {"field": "email_consent", "op": "is_true"}]},
                    ]
                }
            },
            "Customers whose role is not 'staff' or "
            "(who are not members of group 13 and whose email consent is not true)",
        ),
        ({"not": {"field": "attributes.tier", "op": "neq", "value": "gold"}}, "Customers whose loyalty tier is 'gold'"),
        ({"all": []}, "All customers"),
        ({"any": []}, "No customers"),
        ({"not": {"all": []}}, "No customers"),
    ],
)
def test_rules_read_as_a_sentence(doc, sentence):
    assert describe_rules(doc, catalogue=CATALOGUE, group_names={12: "Tea lovers"}) == sentence


def test_describe_needs_no_catalogue():
    assert (
        describe_rules({"field": "attributes.loyalty_tier", "op": "eq", "value": "gold"})
        == "Customers whose loyalty tier is 'gold'"
    )
