"""What the group form offers where typing would be guesswork: time zones, event names and common values."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from customers.models import AttributeDefinition, Customer, Event

pytestmark = pytest.mark.django_db


def builder_catalogue(html: str) -> dict:
    found = re.search(r'<script id="id_rules_catalogue" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def values(client, field, entity="customer"):
    response = client.get(reverse("admin:groups_customergroup_values"), {"entity": entity, "field": field})
    return response.status_code, response.json() if response.status_code == 200 else None


def test_time_zone_is_picked_from_the_list_of_names(admin_client, customers):
    html = admin_client.get(reverse("admin:groups_customergroup_add")).content.decode()
    assert 'list="id_time_zone_names"' in html and '<datalist id="id_time_zone_names">' in html
    assert '<option value="Europe/Paris">' in html and '<option value="America/New_York">' in html


def test_event_names_are_offered_from_the_events_that_exist(admin_client, customers):
    Event.objects.create(customer=customers[1], name="check_in", occurred_at="2026-01-06T10:00:00Z")
    Event.objects.create(customer=customers[2], name="check_in", occurred_at="2026-01-07T10:00:00Z")
    html = admin_client.get(reverse("admin:groups_customergroup_add")).content.decode()
    assert builder_catalogue(html)["event_names"] == ["check_in", "purchase"]


def test_text_fields_offer_their_most_common_values_with_counts(admin_client, customers):
    Customer.objects.create(email="dee@example.com", role="Staff", attributes={"tier": "gold"})
    Customer.objects.create(email="eve@example.com", role="Staff", attributes={"tier": "gold"})
    Customer.objects.create(email="gus@example.com", role="Staff")
    Customer.objects.create(email="fay@example.com", role="staff", attributes={"tier": 3})
    # "Staff" three times, "customer" twice, "staff" twice (Bob and Fay): each spelling is shown.
    assert values(admin_client, "role") == (200, {"values": [["Staff", 3], ["customer", 2], ["staff", 2]]})
    assert values(admin_client, "attributes.tier") == (200, {"values": [["gold", 2]]})  # strings only
    assert values(admin_client, "email") == (200, {"values": []})  # no one shares an email: nothing offered
    assert values(admin_client, "birthdate") == (200, {"values": []})  # not a text field
    AttributeDefinition.objects.create(entity="customer", key="tier", type="number")
    assert values(admin_client, "attributes.tier") == (200, {"values": []})
    assert values(admin_client, "role", entity="nope") == (200, {"values": []})


def test_common_values_need_the_right_to_see_customers(client, django_user_model, customers):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("groups-only", password="a-long-test-password", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_customergroup"))
    client.force_login(user)
    assert values(client, "role")[0] == 403
