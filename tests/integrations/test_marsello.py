"""Marsello has no API: a group downloads as a tag CSV in Marsello's customer import format, and the
connection picker and the group's Settings tab say so and offer the Lightspeed route."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from customers.models import Customer
from groups import services as groups
from integrations.marsello import COLUMNS, tag_csv

pytestmark = pytest.mark.django_db


def rows(chunks) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(chunks).decode())))


def test_tag_csv_lists_members_in_marsellos_import_format_tagged_with_the_group(group):
    ann = Customer.objects.create(email="ann@example.com", first_name="Ann", last_name="Lee", phone="+6421000001")
    bob = Customer.objects.create(email="bob@example.com", first_name="=HYPERLINK()", phone="+1 (555) 0100")
    cat = Customer.objects.create(email="cat@example.com", first_name="Cat", phone="+cmd|' /C calc'!A0")
    no_email = Customer.objects.create(first_name="Cy", phone="+6421000003")
    no_name = Customer.objects.create(email="dee@example.com")
    Customer.objects.create(email="not-a-member@example.com", first_name="Eve")
    groups.add_members(group, [ann.pk, bob.pk, cat.pk, no_email.pk, no_name.pk])

    header, *members = rows(tag_csv(group))

    assert header == list(COLUMNS) == ["First Name", "Last Name", "Email Address", "Mobile", "Tags"]
    assert members == [
        ["Ann", "Lee", "ann@example.com", "+6421000001", "Regulars"],
        ["'=HYPERLINK()", "", "bob@example.com", "+1 (555) 0100", "Regulars"],  # a formula is defused
        ["Cat", "", "cat@example.com", "'+cmd|' /C calc'!A0", "Regulars"],  # and so is one posing as a mobile
    ]


def test_settings_tab_links_the_tag_csv_and_the_picker_explains_marsello(client, staff_user, group):
    client.force_login(staff_user)
    groups.add_members(group, [Customer.objects.create(email="ann@example.com", first_name="Ann").pk])

    settings = client.get(reverse("admin:groups_customergroup_change", args=[group.pk]) + "?tab=settings")
    url = reverse("admin:groups_customergroup_marsello_csv", args=[group.pk])
    assert f'href="{url}"' in settings.content.decode()
    download = client.get(url)
    assert download["Content-Disposition"] == 'attachment; filename="regulars-marsello.csv"'
    assert rows(download.streaming_content)[1] == ["Ann", "", "ann@example.com", "", "Regulars"]

    picker = client.get(reverse("admin:integrations_connection_add")).content.decode()
    assert "Marsello</strong> publishes no public API" in picker and "Lightspeed" in picker


def test_the_tag_csv_needs_permission_to_view_the_group(client, django_user_model, group):
    clerk = django_user_model.objects.create_user("clerk", password="a-long-test-password", is_staff=True)
    client.force_login(clerk)
    response = client.get(reverse("admin:groups_customergroup_marsello_csv", args=[group.pk]))
    assert response.status_code == 403
