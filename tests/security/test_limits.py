"""Limits on what one user can cost: a preview's statement time, API throttles, the admin login lockout."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from groups.models import CustomerGroup

pytestmark = pytest.mark.django_db


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def viewer(django_user_model):
    user = django_user_model.objects.create_user("viewer", "viewer@example.com", "a-long-test-password", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return user


@pytest.fixture
def many_events(db):
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO customers_customer (external_id, email, phone, first_name, last_name, status, role,
                signup_source, member_id, email_consent, sms_consent, attributes, created_at, updated_at)
            SELECT 'c' || n, '', '', '', '', '', 'customer', '', '', false, false, '{}', now(), now()
            FROM generate_series(1, 20000) n;
            INSERT INTO customers_event (customer_id, name, occurred_at, amount, properties, created_at)
            SELECT c.id, 'purchase', now() - (c.id % 300) * interval '1 day', c.id % 90,
                   jsonb_build_object('sku', 'S' || (c.id % 50)), now()
            FROM customers_customer c, generate_series(1, 3);
            ANALYZE;
            """
        )


def expensive_rules(conditions: int = 90) -> dict:
    return {"any": [{"event": "purchase", "where": [{"property": "sku", "op": "eq", "value": f"S{n}"}],
                     "window": {"last": {"days": n + 1}}, "count": {"op": "gte", "value": 2}}
                    for n in range(conditions)]}  # fmt: skip


@pytest.mark.django_db(transaction=True)  # as in production: the preview's transaction is its own
def test_a_preview_past_its_time_limit_is_a_400_that_says_it_is_too_expensive(viewer, many_events, settings):
    group = CustomerGroup.objects.create(name="Hand", slug="hand", kind="manual")
    api = token_client(viewer)
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        before = cursor.fetchone()[0]
    settings.PREVIEW_TIME_LIMIT_MS = 1
    answer = api.post(f"/api/groups/{group.pk}/preview/", {"rules": expensive_rules()}, format="json")
    assert answer.status_code == 400
    (problem,) = answer.json()["rules"]
    assert "too expensive to preview" in problem["message"]
    settings.PREVIEW_TIME_LIMIT_MS = 60_000
    cheap = {"field": "external_id", "op": "eq", "value": "c7"}
    answer = api.post(f"/api/groups/{group.pk}/preview/", {"rules": cheap}, format="json")
    assert answer.status_code == 200 and answer.json()["count"] == 1
    with connection.cursor() as cursor:  # the limit was for the preview's statements only
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == before


def test_the_admin_live_preview_has_the_same_limit(client, viewer, many_events, settings):
    client.force_login(viewer)
    settings.PREVIEW_TIME_LIMIT_MS = 1
    answer = client.post("/admin/groups/customergroup/preview/", {"rules": expensive_rules()},
                         content_type="application/json")  # fmt: skip
    assert answer.status_code == 400
    assert "too expensive to preview" in answer.json()["errors"][0]["message"]


def rates(settings, **rates):
    current = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**current, **rates}}


def test_each_token_is_throttled_with_a_429_and_retry_after(viewer, staff_user, settings):
    rates(settings, token="3/minute", user="100/minute")
    first, second = token_client(viewer), token_client(staff_user)
    answers = [first.get("/api/groups/").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    refused = first.get("/api/groups/")
    assert refused["Content-Type"] == "application/json" and int(refused["Retry-After"]) > 0
    assert second.get("/api/groups/").status_code == 200  # another token has its own allowance


def test_each_user_is_throttled_across_their_token_and_session(client, viewer, staff_user, settings):
    rates(settings, token="100/minute", user="3/minute")
    api = token_client(viewer)
    client.force_login(viewer)
    answers = [api.get("/api/groups/").status_code, client.get("/api/groups/").status_code,
               api.get("/api/groups/").status_code, client.get("/api/groups/").status_code]  # fmt: skip
    assert answers == [200, 200, 200, 429]
    assert token_client(staff_user).get("/api/groups/").status_code == 200


def test_the_admin_login_locks_out_after_repeated_failures(client, staff_user, settings):
    login = "/admin/login/?next=/admin/"
    answers = [client.post(login, {"username": "staff", "password": "wrong"}).status_code
               for _ in range(settings.AXES_FAILURE_LIMIT)]  # fmt: skip
    assert answers == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]  # the form again, then locked
    locked = client.post(login, {"username": "staff", "password": "a-long-test-password"})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    other = client.post(login, {"username": "someone", "password": "wrong"})
    assert other.status_code == 200  # the lockout is for that username from that address
