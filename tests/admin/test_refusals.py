"""A refused page or API call says which permission was missing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db


def test_a_refused_admin_page_names_the_missing_permission(viewer_client, customers):
    response = viewer_client.get(reverse("admin:customers_customer_add"))
    assert response.status_code == 403
    assert "This needs the permission “Can add customer”." in response.content.decode()
    saved = viewer_client.post(reverse("admin:customers_customer_change", args=[customers[0].pk]), {"email": "x@y.z"})
    assert saved.status_code == 403 and "“Can change customer”" in saved.content.decode()


def test_a_page_the_user_may_not_even_view_names_the_view_permission(viewer_client):
    response = viewer_client.get(reverse("admin:integrations_connection_changelist"))
    assert response.status_code == 403 and "“Can view connection”" in response.content.decode()


def test_the_import_page_says_what_importing_needs(viewer_client):
    response = viewer_client.get(reverse("admin:customers_customer_import"))
    assert response.status_code == 403
    assert "“Can add customer” and “Can change customer”" in response.content.decode()


def test_a_refused_api_call_names_the_missing_permissions(viewer, customers):
    api = client_for(viewer)
    response = api.post("/api/customers/identify/", {"email": "new@example.com"}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "This needs the permissions “Can add customer” and “Can change customer”."
    export = api.get("/api/customers/export.csv")
    assert export.status_code == 403 and "“Can export customers and group members as CSV”" in export.json()["detail"]
