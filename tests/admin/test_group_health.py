"""The group health page lists stale groups (two scheduled refreshes missed) and failing ones."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from groups.models import CustomerGroup
from tests.groups.test_schedules import make_group

pytestmark = pytest.mark.django_db

HEALTH = "admin:groups_customergroup_health"


def test_stale_and_failing_groups_are_listed_and_healthy_ones_are_not(admin_client, customers):
    now = timezone.now()
    stale = make_group(name="Morning regulars", slug="morning", last_refreshed_at=now - timedelta(days=3))
    make_group(name="Fresh", slug="fresh", last_refreshed_at=now)
    make_group(name="Stale but inactive", slug="off", is_active=False, last_refreshed_at=now - timedelta(days=3))
    failing = CustomerGroup.objects.create(
        name="Broken rules", slug="broken", last_run_status="failing", failure_count=5,
        last_error="cannot compile the rules: unknown field 'tier'",
    )  # fmt: skip
    html = admin_client.get(reverse(HEALTH)).content.decode()
    stale_table = html[html.index('id="stale-groups"') : html.index("Failing: the latest")]
    assert stale.name in stale_table and "Fresh" not in stale_table and "Stale but inactive" not in stale_table
    assert "CET" in stale_table or "CEST" in stale_table  # the missed runs in the group's zone (Paris), labelled
    failing_table = html[html.index('id="failing-groups"') :]
    assert failing.name in failing_table and "unknown field" in failing_table and "Failing (paused" in failing_table


def test_a_healthy_back_office_says_so(admin_client, customers):
    make_group(name="Fresh", slug="fresh", last_refreshed_at=timezone.now())
    html = admin_client.get(reverse(HEALTH)).content.decode()
    assert 'id="no-stale-groups"' in html and 'id="no-failing-groups"' in html


def test_the_home_page_links_to_it_and_viewers_may_look(admin_client, viewer_client):
    link = f'href="{reverse(HEALTH)}"'
    assert link in admin_client.get(reverse("admin:index")).content.decode()
    assert link in viewer_client.get(reverse("admin:index")).content.decode()
    assert viewer_client.get(reverse(HEALTH)).status_code == 200


def test_staff_who_may_not_view_groups_are_refused(client, django_user_model):
    clerk = django_user_model.objects.create_user("clerk", password="a-long-test-password", is_staff=True)
    client.force_login(clerk)
    response = client.get(reverse(HEALTH))
    assert response.status_code == 403 and "“Can view customer group”" in response.content.decode()
