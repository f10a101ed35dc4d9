"""Hostile input is a 400 (or 413) in JSON that says what is wrong and where, never a 500."""

from __future__ import annotations

import json

import pytest

from customers.models import AttributeDefinition, Customer, Event

pytestmark = pytest.mark.django_db


def post(api, path: str, body: str):
    return api.post(path, body, content_type="application/json")


def deep(levels: int, inner: str = "1") -> str:
    return '{"a": ' * levels + inner + "}" * levels


@pytest.fixture
def ann(db):
    return Customer.objects.create(external_id="ann", email="ann@example.com")


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/events/", '{"customer": "ann", "name": "visit", "occurred_at": "2026-01-01T00:00:00Z", '
                         '"properties": ' + deep(1000) + "}"),
        ("/api/customers/identify/", '{"external_id": "ann", "attributes": ' + deep(1000) + "}"),
        ("/api/groups/", '{"name": "Deep", "kind": "manual", "schedule": ' + deep(1000) + "}"),
        ("/api/groups/", "[" * 100_000 + "]" * 100_000),
    ],
)  # fmt: skip
def test_json_nested_too_deep_is_a_400(api, ann, path, body):
    answer = post(api, path, body)
    assert answer.status_code == 400, answer.content[:300]
    assert answer["Content-Type"] == "application/json"
    assert "nested" in answer.json()["detail"]


@pytest.mark.parametrize(
    "path, body, where",
    [
        ("/api/events/", '{"customer": "ann", "name": "visit", "occurred_at": "2026-01-01T00:00:00Z", '
                         '"properties": {"note": "\\ud800"}}', "/properties/note"),
        ("/api/customers/identify/", '{"external_id": "ann", "attributes": {"x\\udfff": "y"}}', "/attributes"),
        ("/api/customers/identify/", '{"external_id": "ann", "first_name": "\\ud800"}', "/first_name"),
    ],
)  # fmt: skip
def test_a_lone_surrogate_is_a_400_that_says_where(api, ann, path, body, where):
    answer = post(api, path, body)
    assert answer.status_code == 400, answer.content[:300]
    assert where in answer.json()["detail"]
    assert Event.objects.count() == 0


def test_a_lone_surrogate_in_a_rule_value_is_a_400(api):
    rules = '{"field": "first_name", "op": "eq", "value": "\\ud800"}'
    answer = post(api, "/api/groups/", '{"name": "Odd", "rules": ' + rules + "}")
    assert answer.status_code == 400
    assert "/rules/value" in answer.json()["detail"]


@pytest.mark.parametrize(
    "query",
    [
        "/api/customers/?created_after=0001-01-01T00:00:00%2B01:00",
        "/api/customers/?created_before=9999-12-31T23:59:59-12:00",
    ],
)
def test_extreme_dates_in_filters_are_a_400_naming_the_filter(api, query):
    answer = api.get(query)
    assert answer.status_code == 400
    name = query.split("?")[1].split("=")[0]
    assert name in answer.json()


def test_extreme_dates_in_history_filters_are_a_400(api):
    group = post(api, "/api/groups/", '{"name": "Hand", "kind": "manual"}').json()
    answer = api.get(f"/api/groups/{group['id']}/history/?changed_after=0001-01-01T00:00:00%2B01:00")
    assert answer.status_code == 400
    assert "changed_after" in answer.json()


def test_a_datetime_attribute_beyond_the_calendar_is_a_400(api, ann):
    AttributeDefinition.objects.create(key="renews_at", type="datetime", entity="customer")
    answer = post(
        api,
        "/api/customers/identify/",
        json.dumps({"external_id": "ann", "attributes": {"renews_at": "9999-12-31T23:59:59-12:00"}}),
    )
    assert answer.status_code == 400
    assert "renews_at" in answer.json()["attributes"]


def test_a_full_batch_of_1000_events_with_properties_fits_the_body_limit(api, ann):
    event = {
        "customer": "ann",
        "name": "purchase",
        "occurred_at": "2026-01-01T10:00:00Z",
        "amount": "12.50",
        "properties": {"note": "x" * 4000, "items": [{"sku": f"SKU-{n}", "qty": n} for n in range(20)]},
    }
    body = json.dumps({"events": [event] * 1000})
    assert len(body) > 4 * 1024 * 1024
    answer = post(api, "/api/events/batch/", body)
    assert answer.status_code == 201, answer.content[:300]
    assert Event.objects.count() == 1000


def test_a_body_over_the_limit_is_refused_in_json(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    answer = post(api, "/api/events/batch/", json.dumps({"events": [{"name": "x" * 2000}]}))
    assert answer.status_code == 413
    assert answer["Content-Type"] == "application/json"
    assert "1000 bytes" in answer.json()["detail"]


def test_an_unknown_api_path_and_a_server_error_answer_json(client, settings):
    settings.DEBUG = False
    answer = client.get("/api/no-such-thing/")
    assert answer.status_code == 404
    assert answer["Content-Type"] == "application/json"
    from config import errors

    server_error = errors.server_error(_request("/api/groups/"))
    assert server_error.status_code == 500
    assert json.loads(server_error.content) == {"detail": "server error: the problem has been logged"}
    assert b"<html" in errors.server_error(_request("/admin/")).content.lower()


def _request(path):
    from django.test import RequestFactory

    return RequestFactory().get(path)
