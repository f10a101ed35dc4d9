"""The cast of the admin tests: a superuser, a viewer who may look but not act, customers and two groups."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from customers.models import Customer, Event
from groups import services
from groups.models import CustomerGroup

VIEW_PERMISSIONS = ["view_customergroup", "view_customer", "view_event", "view_account", "view_membershipchange",
                    "view_refreshrun", "view_tag"]  # fmt: skip


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def viewer(django_user_model):
    user = django_user_model.objects.create_user("viewer", "viewer@example.com", "a-long-test-password", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=VIEW_PERMISSIONS))
    return user


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def customers(db):
    people = [
        Customer(email="ann@example.com", first_name="Ann", role="customer", external_id="C-1"),
        Customer(email="bob@example.com", first_name="Bob", role="staff", external_id="C-2"),
        Customer(email="cat@example.com", first_name="Cat", role="customer", external_id="C-3"),
    ]
    for person in people:
        person.save()
    Event.objects.create(customer=people[0], name="purchase", occurred_at="2026-01-05T10:00:00Z", amount=30)
    return people


@pytest.fixture
def dynamic_group(customers):
    group = CustomerGroup.objects.create(
        name="Customers", slug="customers", rules={"field": "role", "op": "eq", "value": "customer"}
    )
    services.refresh(group)
    group.refresh_from_db()
    return group


@pytest.fixture
def manual_group(customers):
    return CustomerGroup.objects.create(name="Tasting panel", slug="tasting-panel", kind=CustomerGroup.Kind.MANUAL)
