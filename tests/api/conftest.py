"""The API's cast: a client with a staff token, one with a token but no permissions, and an anonymous one."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def api(staff_user) -> APIClient:
    return client_for(staff_user)


@pytest.fixture
def no_perms_api(django_user_model) -> APIClient:
    return client_for(django_user_model.objects.create_user("clerk", "clerk@example.com", "a-long-test-password"))


@pytest.fixture
def viewer_api(django_user_model) -> APIClient:
    """Can read customers and groups, and change nothing."""
    user = django_user_model.objects.create_user("viewer", "viewer@example.com", "a-long-test-password")
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return client_for(user)


@pytest.fixture
def anonymous_api() -> APIClient:
    return APIClient()
