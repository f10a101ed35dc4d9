"""A staff member who may view but not change groups can look at every page but act on none."""

from __future__ import annotations

import json

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from groups.models import CustomerGroup

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("tab", ["members", "history", "settings"])
def test_viewer_sees_every_tab_without_action_buttons(viewer_client, dynamic_group, tab):
    page = viewer_client.get(reverse("admin:groups_customergroup_change", args=[dynamic_group.pk]) + f"?tab={tab}")
    html = page.content.decode()
    assert page.status_code == 200
    for button in ('id="refresh-now"', 'id="deactivate"', 'id="duplicate"', 'id="delete-group"', 'name="_save"'):
        assert button not in html
    assert "Export CSV" not in html and 'id="export-link"' not in html  # looking is not downloading the members


def test_viewer_sees_the_list_without_refresh_all_or_actions(viewer_client, dynamic_group):
    html = viewer_client.get(reverse("admin:groups_customergroup_changelist")).content.decode()
    assert "Customers" in html and 'id="refresh-all"' not in html
    for action in ("refresh_groups", "deactivate_groups", "delete_groups", "duplicate_groups"):
        assert f'value="{action}"' not in html
    assert 'value="export_groups"' not in html  # exports take a permission of their own


@pytest.mark.parametrize("verb", ["refresh", "activate", "deactivate", "duplicate"])
def test_viewer_posts_are_refused(viewer_client, dynamic_group, verb):
    url = reverse(f"admin:groups_customergroup_{verb}", args=[dynamic_group.pk])
    assert viewer_client.post(url).status_code == 403
    dynamic_group.refresh_from_db()
    assert dynamic_group.is_active and CustomerGroup.objects.count() == 1


def test_viewer_cannot_refresh_all_edit_members_or_delete(viewer_client, dynamic_group, manual_group):
    assert viewer_client.post(reverse("admin:groups_customergroup_refresh_all")).status_code == 403
    edit = reverse("admin:groups_customergroup_edit_members", args=[manual_group.pk])
    assert viewer_client.post(edit, {"operation": "add", "identifiers": "ann@example.com"}).status_code == 403
    delete = reverse("admin:groups_customergroup_delete", args=[dynamic_group.pk])
    assert viewer_client.post(delete, {"post": "yes"}).status_code == 403
    assert CustomerGroup.objects.filter(pk=dynamic_group.pk).exists()


def test_viewer_cannot_save_the_form(viewer_client, dynamic_group):
    url = reverse("admin:groups_customergroup_change", args=[dynamic_group.pk])
    response = viewer_client.post(url, {"name": "Renamed", "rules": json.dumps({"all": []})})
    assert response.status_code == 403
    dynamic_group.refresh_from_db()
    assert dynamic_group.name == "Customers"


def test_viewer_cannot_run_change_actions_on_customers(viewer_client, customers, manual_group):
    response = viewer_client.post(
        reverse("admin:customers_customer_changelist"),
        {"action": "add_to_group", ACTION_CHECKBOX_NAME: [customers[0].pk], "apply": "1", "group": manual_group.pk},
    )
    assert response.status_code in (200, 302, 403)
    assert manual_group.memberships.count() == 0


def test_anonymous_is_sent_to_login(client, dynamic_group):
    response = client.get(reverse("admin:groups_customergroup_change", args=[dynamic_group.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_preview_needs_view_permission(client, django_user_model, customers):
    nobody = django_user_model.objects.create_user("nobody", password="a-long-test-password", is_staff=True)
    client.force_login(nobody)
    response = client.post(reverse("admin:groups_customergroup_preview"), "{}", content_type="application/json")
    assert response.status_code == 403


def test_the_export_permission_brings_the_group_exports(viewer_client, viewer, dynamic_group):
    from django.contrib.auth.models import Permission

    export = reverse("admin:groups_customergroup_export", args=[dynamic_group.pk])
    refused = viewer_client.get(export)
    assert refused.status_code == 403 and "Can export customers and group members as CSV" in refused.content.decode()
    viewer.user_permissions.add(Permission.objects.get(codename="export_customer"))
    page = viewer_client.get(reverse("admin:groups_customergroup_change", args=[dynamic_group.pk]) + "?tab=members")
    assert "Export CSV" in page.content.decode() and 'id="export-link"' in page.content.decode()
    assert b"ann@example.com" in b"".join(viewer_client.get(export).streaming_content)
    listing = viewer_client.get(reverse("admin:groups_customergroup_changelist")).content.decode()
    assert 'value="export_groups"' in listing
