"""Token authentication and per-model permissions: 401 without a token, 403 without the permission."""

from __future__ import annotations

import pytest

from customers.models import Customer
from groups.models import CustomerGroup

pytestmark = pytest.mark.django_db

READS = ["/api/customers/", "/api/accounts/", "/api/attributes/", "/api/groups/", "/api/customers/export.csv"]


@pytest.mark.parametrize("url", READS)
def test_a_call_without_a_token_is_401_with_the_token_challenge(anonymous_api, url):
    response = anonymous_api.get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_write_without_a_token_is_401(anonymous_api):
    assert anonymous_api.post("/api/events/", {}, format="json").status_code == 401
    assert anonymous_api.post("/api/customers/identify/", {}, format="json").status_code == 401


def test_a_bad_token_is_401(anonymous_api):
    anonymous_api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert anonymous_api.get("/api/customers/").status_code == 401


@pytest.mark.parametrize("url", READS)
def test_a_user_without_the_view_permission_is_403(no_perms_api, url):
    assert no_perms_api.get(url).status_code == 403


def test_a_user_without_write_permissions_is_403_on_every_write(viewer_api):
    customer = Customer.objects.create(email="a@example.com")
    group = CustomerGroup.objects.create(name="Manual", slug="manual", kind="manual")
    assert viewer_api.get("/api/customers/").status_code == 200
    assert viewer_api.get(f"/api/groups/{group.pk}/members/").status_code == 200
    writes = [
        ("post", "/api/customers/", {"email": "b@example.com"}),
        ("patch", f"/api/customers/{customer.pk}/", {"role": "staff"}),
        ("post", "/api/customers/identify/", {"email": "a@example.com"}),
        ("post", "/api/accounts/identify/", {"external_id": "h1"}),
        ("post", "/api/events/", {"customer_id": customer.pk, "name": "x", "occurred_at": "2024-01-01T00:00:00Z"}),
        ("post", "/api/events/batch/", {"events": []}),
        ("post", "/api/groups/", {"name": "G", "kind": "manual"}),
        ("post", f"/api/groups/{group.pk}/refresh/", {}),
        ("post", f"/api/groups/{group.pk}/members/add/", {"customer_ids": [customer.pk]}),
        ("delete", f"/api/groups/{group.pk}/", None),
        ("post", "/api/attributes/", {"key": "tier", "type": "text"}),
    ]
    for method, url, body in writes:
        response = getattr(viewer_api, method)(url, body, format="json")
        assert response.status_code == 403, (method, url, response.status_code)
    assert Customer.objects.count() == 1 and CustomerGroup.objects.filter(pk=group.pk).exists()


def test_preview_reads_so_a_viewer_may_use_it(viewer_api):
    group = CustomerGroup.objects.create(name="C", slug="c", rules={"field": "role", "op": "eq", "value": "x"})
    response = viewer_api.post(f"/api/groups/{group.pk}/preview/", {"rules": {"all": []}}, format="json")
    assert response.status_code == 200
