"""Content-Security-Policy on every page, the schema's error answers, and refused requests logged in one line."""

from __future__ import annotations

import logging

import pytest

from groups.models import CustomerGroup

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/admin/login/", "/api/docs/", "/api/docs/redoc/"])
def test_pages_carry_a_content_security_policy_without_inline_scripts(client, url):
    answer = client.get(url)
    assert answer.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in answer["Content-Security-Policy"].split(";") if part.strip())
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"


def test_the_swagger_page_loads_its_script_from_the_app_not_inline(client):
    page = client.get("/api/docs/").content.decode()
    assert "<script>" not in page


def test_the_schema_declares_error_answers_for_every_operation(client):
    schema = client.get("/api/schema/?format=json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            answers = operation["responses"]
            assert {"400", "401", "403", "429"} <= set(answers), (method, path)
            if "{" in path:
                assert "404" in answers, (method, path)


def test_the_preview_400_keeps_to_its_declared_shape(api):
    group = CustomerGroup.objects.create(name="Hand", slug="hand", kind="manual")
    for body in ({}, {"rules": {"field": "nope", "op": "eq", "value": 1}}, []):
        answer = api.post(f"/api/groups/{group.pk}/preview/", body, format="json")
        assert answer.status_code == 400
        problems = answer.json()["rules"]
        assert problems and all(set(p) == {"path", "message"} for p in problems), problems


@pytest.fixture
def api(staff_user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff_user).key}")
    return client


def test_a_refused_admin_request_is_logged_without_a_traceback(client, django_user_model, caplog):
    viewer = django_user_model.objects.create_user("viewer", "v@example.com", "a-long-test-password", is_staff=True)
    group = CustomerGroup.objects.create(name="Hand", slug="hand", kind="manual")
    client.force_login(viewer)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        answer = client.post(f"/admin/groups/customergroup/{group.pk}/refresh/")
    assert answer.status_code == 403
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert "Forbidden" in record.getMessage()
    assert record.exc_info is None and not record.exc_text
