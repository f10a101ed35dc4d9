"""Invalid documents of every kind are refused with every problem listed: a JSON pointer and a sentence."""

from __future__ import annotations

import pytest

from groups.rules import Catalogue, RulesInvalid, ensure_valid_rules, rule_dependencies, validate_rules

CATALOGUE = Catalogue(
    customer={"tier": "text", "score": "number", "renewal": "date", "seen": "datetime"}, account={"plan": "text"}
)


def errors(doc, **kwargs) -> list[dict]:
    kwargs.setdefault("group_exists", lambda gid: gid < 100)
    kwargs.setdefault("group_dependencies", lambda gid: set())
    return validate_rules(doc, catalogue=CATALOGUE, **kwargs)


def only(doc, **kwargs) -> tuple[str, str]:
    found = errors(doc, **kwargs)
    assert len(found) == 1, found
    return found[0]["path"], found[0]["message"]


def field(name="email", op="eq", **extra):
    return {"field": name, "op": op, **extra}


VALID = [
    {"all": []},
    {"any": []},
    {"not": {"all": []}},
    {"field": "role", "op": "eq", "value": "customer"},
    {"field": "email", "op": "is_empty"},
    {"field": "attributes.tier", "op": "in", "value": ["gold", "platinum"]},
    {"field": "birthdate", "op": "anniversary_within_next", "value": {"days": 7}},
    {"field": "attributes.anything", "op": "eq", "value": 3},
    {"field": "attributes.anything", "op": "in", "value": ["a", 1, 2.5]},
    {"field": "attributes.anything", "op": "is_true"},
    {"field": "attributes.seen", "op": "within_last", "value": {"hours": 3}},
    {"field": "created_at", "op": "between", "value": ["2024-01-01", "2024-01-01"]},
    {
        "event": "purchase",
        "where": [{"property": "category", "op": "eq", "value": "Chinese tea"}],
        "window": {"last": {"days": 90}},
        "count": {"op": "gte", "value": 1},
    },
    {
        "event": "purchase",
        "window": {"calendar": "last_month"},
        "sum": {"property": "amount", "op": "gte", "value": 500},
    },
    {"event": "check_in", "window": {"last": {"days": 60}}, "count": {"op": "eq", "value": 0}},
    {
        "event": "purchase",
        "window": {"between": ["2024-01-01", "2024-12-31"]},
        "count": {"op": "between", "value": [1, 3]},
    },
    {
        "account": {
            "all": [
                {"field": "kind", "op": "eq", "value": "household"},
                {"field": "attributes.plan", "op": "eq", "value": "pro"},
            ]
        }
    },
    {"not": {"account": {"all": []}}},
    {"in_group": 12},
]


@pytest.mark.parametrize("doc", VALID)
def test_documents_from_the_rule_language_are_valid(doc):
    assert errors(doc) == []


INVALID = [
    # (document, path, words the message must contain)
    (None, "", "must be an object"),
    ([], "", "must be an object"),
    ({}, "", "empty rule"),
    ({"al": []}, "", "did you mean 'all'"),
    ({"all": [], "any": []}, "/any", "put 'any' in a rule of its own"),
    ({"not": {"all": []}, "comment": "x"}, "/comment", "unknown key 'comment' in a Boolean node"),
    ({"all": {}}, "/all", "list of rules"),
    (
        {"all": [field(value="x"), field("emial", value="x")]},
        "/all/1/field",
        "unknown field 'emial'; did you mean 'email'?",
    ),
    (
        {"all": [{"all": []}, {"all": []}, field(op="gt", value=1)]},
        "/all/2/op",
        "operator 'gt' does not apply to text field 'email'",
    ),
    (field(op="eqq", value="x"), "/op", "did you mean 'eq'"),
    (field(value="x", colour="red"), "/colour", "unknown key 'colour'"),
    (field(), "/value", "needs a value"),
    ({"field": "email"}, "/op", "needs an op"),
    (field(op="is_empty", value="x"), "/value", "takes no value"),
    (field(value=3), "/value", "must be text"),
    (field(value=""), "/value", "use 'is_empty'"),
    (field(value="x" * 1001), "/value", "at most 1000 characters"),
    (field(op="in", value=[]), "/value", "list of 1 to 1000"),
    (field(op="in", value=["x"] * 1001), "/value", "at most 1000 values"),
    (field(op="in", value=["a", 2]), "/value/1", "must be text"),
    (field("attributes.score", "between", value=[5, 1]), "/value", "swap"),
    (field("attributes.score", "gt", value="5"), "/value", "must be a number"),
    (field("attributes.score", "gt", value=True), "/value", "must be a number"),
    (field("attributes.score", "contains", value="5"), "/op", "does not apply to number field 'attributes.score'"),
    (field("email_consent", "eq", value="yes"), "/value", "true or false"),
    (field("attributes.free", "before", value="2024-01-01"), "/op", "declared as a date or datetime"),
    (field("attributes.free", "in", value=[True]), "/value/0", "text or numbers"),
    (field("attributes.", "eq", value="x"), "/field", "name the attribute"),
    (field("birthdate", "before", value="01/02/2024"), "/value", "YYYY-MM-DD"),
    (field("birthdate", "before", value="2024-02-30"), "/value", "YYYY-MM-DD"),
    (field("birthdate", "between", value=["2024-02-01", "2024-01-01"]), "/value", "swap"),
    (field("birthdate", "before", value="0001-01-01"), "/value", "between 1000-01-01 and 8999-12-31"),
    (field("created_at", "between", value=["2024-01-01", "9999-12-31"]), "/value/1", "between 1000-01-01"),
    (field(value="a\x00b"), "/value", "NUL"),
    (field("attributes.a\x00b", value="x"), "/field", "NUL"),
    (field("attributes." + "k" * 1000, value="x"), "/field", "at most 1000 characters"),
    ({"event": "a\x00"}, "/event", "NUL"),
    ({"event": "purchase", "where": [{"property": "a\x00", "op": "is_empty"}]}, "/where/0/property", "NUL"),
    ({"in_group": 2**63}, "/in_group", "group id"),
    (field("birthdate", "within_last", value={"hours": 3}), "/value/hours", "'days' or 'weeks'"),
    (field("birthdate", "within_last", value={"days": -1}), "/value/days", "whole number"),
    (field("birthdate", "within_last", value={"days": 1.5}), "/value/days", "whole number"),
    (field("birthdate", "within_last", value={"days": 1, "weeks": 1}), "/value", "one duration"),
    (field("created_at", "anniversary_within_next", value={"days": 3}), "/op", "does not apply to datetime"),
    (field("birthdate", "anniversary_within_next", value={"weeks": 3}), "/value/weeks", "'days'"),
    (field("email_consent", "gt", value=1), "/op", "does not apply to boolean field"),
    ({"event": ""}, "/event", "event name"),
    ({"event": "purchase", "when": 1}, "/when", "unknown key 'when'"),
    ({"event": "purchase", "window": {"last": {"days": 3}, "calendar": "today"}}, "/window", "exactly one"),
    ({"event": "purchase", "window": {"calendar": "last_mnth"}}, "/window/calendar", "did you mean 'last_month'"),
    ({"event": "purchase", "window": {"recent": 3}}, "/window/recent", "unknown window"),
    ({"event": "purchase", "window": {"between": ["2024-01-02", "2024-01-01"]}}, "/window/between", "swap"),
    (
        {
            "event": "purchase",
            "count": {"op": "gte", "value": 1},
            "sum": {"property": "amount", "op": "gt", "value": 1},
        },
        "/sum",
        "not both",
    ),
    ({"event": "purchase", "count": {"op": "gte", "value": -1}}, "/count/value", "whole number"),
    ({"event": "purchase", "count": {"op": "has", "value": 1}}, "/count/op", "needs an op"),
    ({"event": "purchase", "count": {"op": "between", "value": [3]}}, "/count/value", "[low, high]"),
    ({"event": "purchase", "sum": {"op": "gt", "value": 1}}, "/sum/property", "needs a property"),
    ({"event": "purchase", "sum": {"property": "amount", "op": "gt", "value": "1"}}, "/sum/value", "number"),
    ({"event": "purchase", "where": {"property": "a"}}, "/where", "list of property conditions"),
    (
        {"event": "purchase", "where": [{"property": "amount", "op": "contains", "value": "1"}]},
        "/where/0/op",
        "does not apply to number property 'amount'",
    ),
    (
        {"event": "purchase", "where": [{"property": "day", "op": "before", "value": "2024-01-01"}]},
        "/where/0/op",
        "declared as a date",
    ),
    ({"event": "purchase", "where": [{"op": "eq", "value": 1}]}, "/where/0/property", "needs a property"),
    ({"account": {"all": [{"event": "purchase"}]}}, "/account/all/0", "only all, any, not and field"),
    ({"account": {"all": [field("email", value="x")]}}, "/account/all/0/field", "unknown account field 'email'"),
    ({"account": {"all": [field("attributes.plan", "gt", value=1)]}}, "/account/all/0/op", "text field"),
    ({"account": {"all": []}, "extra": 1}, "/extra", "unknown key 'extra'"),
    ({"in_group": "12"}, "/in_group", "group id"),
    ({"in_group": True}, "/in_group", "group id"),
    ({"in_group": 0}, "/in_group", "group id"),
    ({"in_group": 500}, "/in_group", "group 500 does not exist"),
    ({"field": "role", "event": "purchase"}, "", "mixes"),
]


@pytest.mark.parametrize("doc, path, words", INVALID)
def test_invalid_documents_name_the_place_and_the_problem(doc, path, words):
    found_path, message = only(doc)
    assert found_path == path
    assert words in message


def test_every_problem_is_listed_at_once_in_the_documented_shape():
    doc = {"all": [field(value="x"), {"in_group": 5}, field(op="gt", value=1), field("emial", value="x")]}
    assert errors(doc) == [
        {"path": "/all/2/op", "message": "operator 'gt' does not apply to text field 'email'"},
        {"path": "/all/3/field", "message": "unknown field 'emial'; did you mean 'email'?"},
    ]


def test_ensure_valid_rules_raises_with_the_errors():
    with pytest.raises(RulesInvalid) as raised:
        ensure_valid_rules({"any": [field(op="gt", value=1)]}, catalogue=CATALOGUE)
    assert raised.value.errors == [
        {"path": "/any/0/op", "message": "operator 'gt' does not apply to text field 'email'"}
    ]
    assert isinstance(raised.value, ValueError)


def test_nesting_deeper_than_ten_levels_is_refused():
    ok = {"all": []}
    for _ in range(9):
        ok = {"not": ok}
    assert errors(ok) == []
    too_deep = {"not": ok}
    assert errors(too_deep) == [
        {"path": "/not" * 10, "message": "rules nest at most 10 levels deep; flatten this part"}
    ]


def test_absurd_nesting_does_not_recurse_without_end():
    doc: dict = {"all": []}
    for _ in range(5000):
        doc = {"not": doc}
    assert len(errors(doc)) == 1


def test_more_than_200_conditions_are_refused():
    assert errors({"all": [field(value="x")] * 200}) == []
    assert errors({"all": [field(value="x")] * 201}) == [
        {"path": "", "message": "the rules have 201 conditions; at most 200 are allowed"}
    ]


def test_a_group_cannot_depend_on_itself():
    assert only({"any": [{"in_group": 7}]}, group_id=7) == (
        "/any/0/in_group",
        "a group cannot depend on itself; choose another group",
    )


def test_a_group_cannot_depend_on_itself_through_other_groups():
    graph = {3: {4}, 4: {5}, 5: {7}}
    path, message = only({"in_group": 3}, group_id=7, group_dependencies=lambda gid: graph.get(gid, set()))
    assert path == "/in_group"
    assert (
        message == "group 3 already depends on this group (3 -> 4 -> 5 -> this group), so using it here would "
        "make a cycle"
    )


def test_dependencies_that_do_not_come_back_are_fine_even_with_cycles_elsewhere():
    graph = {3: {4}, 4: {3, 6}}
    assert errors({"in_group": 3}, group_id=7, group_dependencies=lambda gid: graph.get(gid, set())) == []


def test_rule_dependencies_lists_in_group_targets():
    doc = {"all": [{"in_group": 3}, {"not": {"any": [{"in_group": 4}, field(value="x")]}}, {"in_group": 3}]}
    assert rule_dependencies(doc) == {3, 4}
    assert rule_dependencies({"in_group": "x"}) == set()
    assert rule_dependencies(None) == set()


@pytest.mark.django_db
def test_groups_are_read_from_the_database_by_default():
    from groups.models import CustomerGroup

    first = CustomerGroup.objects.create(name="A", slug="a")
    second = CustomerGroup.objects.create(name="B", slug="b", rules={"in_group": first.pk})
    catalogue = Catalogue()
    assert validate_rules({"in_group": second.pk}, catalogue=catalogue) == []
    assert validate_rules({"in_group": second.pk + 100}, catalogue=catalogue)[0]["message"].endswith("does not exist")
    cycle = validate_rules({"in_group": second.pk}, catalogue=catalogue, group_id=first.pk)
    assert [error["path"] for error in cycle] == ["/in_group"]
    assert "cycle" in cycle[0]["message"]
    # A manual group's rules do not decide its members, so they make no dependency.
    CustomerGroup.objects.filter(pk=second.pk).update(kind=CustomerGroup.Kind.MANUAL)
    assert validate_rules({"in_group": second.pk}, catalogue=catalogue, group_id=first.pk) == []


@pytest.mark.django_db
def test_catalogue_loads_declared_attributes():
    from customers.models import AttributeDefinition

    AttributeDefinition.objects.create(entity="customer", key="tier", type="text", label="Loyalty tier")
    AttributeDefinition.objects.create(entity="account", key="seats", type="number")
    catalogue = Catalogue.load()
    assert catalogue.attribute_type("customer", "tier") == "text"
    assert catalogue.attribute_type("account", "seats") == "number"
    assert catalogue.attribute_type("customer", "seats") is None
    assert catalogue.label("customer", "attributes.tier") == "Loyalty tier"


def test_catalogue_refuses_unknown_types():
    with pytest.raises(ValueError, match="unknown type"):
        Catalogue(customer={"x": "money"})


def test_undeclared_attribute_suggestion_uses_the_catalogue():
    path, message = only(field("atributes.tier", value="x"))
    assert path == "/field"
    assert "did you mean 'attributes.tier'" in message
