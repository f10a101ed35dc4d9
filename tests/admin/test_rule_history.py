"""The Settings tab keeps every version of a group's rules: who saved it and when, what changed, and restore."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from groups import services
from groups.models import CustomerGroup, RuleVersion

pytestmark = pytest.mark.django_db

STAFF = {"field": "role", "op": "eq", "value": "staff"}


def settings_tab(client, group, query=""):
    return client.get(reverse("admin:groups_customergroup_change", args=[group.pk]) + "?tab=settings" + query)


def save_rules(client, group, rules):
    from tests.admin.test_group_actions import form_data

    saved = CustomerGroup.objects.get(pk=group.pk)
    url = reverse("admin:groups_customergroup_change", args=[group.pk])
    assert client.post(url, form_data(saved, rules=json.dumps(rules))).status_code == 302


def test_each_rule_change_is_kept_with_who_and_when_and_the_difference_reads_in_words(
    admin_client, staff_user, dynamic_group
):
    save_rules(admin_client, dynamic_group, STAFF)
    versions = list(RuleVersion.objects.filter(group=dynamic_group).values_list("version", "rules", "created_by"))
    # v1 was made before the history existed (no one recorded); v2 by the person who saved it.
    assert versions == [(2, STAFF, staff_user.pk), (1, dynamic_group.rules, None)]
    html = settings_tab(admin_client, dynamic_group).content.decode()
    assert 'id="rule-version-2"' in html and "(current)" in html and "staff</td>" in html
    assert "What changed from v1 to v2" in html
    assert "− whose role is &#x27;customer&#x27;" in html and "+ whose role is &#x27;staff&#x27;" in html


def test_restoring_a_version_is_a_rule_change_that_refreshes_the_group(admin_client, staff_user, dynamic_group):
    save_rules(admin_client, dynamic_group, STAFF)
    response = admin_client.post(
        reverse("admin:groups_customergroup_restore_rules", args=[dynamic_group.pk, 1]), follow=True
    )
    html = response.content.decode()
    assert "Version 1 restored as version 3: 2 entered and 1 left" in html
    dynamic_group.refresh_from_db()
    assert dynamic_group.rule_version == 3 and dynamic_group.member_count == 2
    restored = RuleVersion.objects.get(group=dynamic_group, version=3)
    assert restored.rules == {"field": "role", "op": "eq", "value": "customer"} and restored.restored_from == 1
    assert restored.created_by == staff_user
    assert "restored from v1" in html
    assert set(dynamic_group.runs.filter(rule_version=3).values_list("reason", flat=True)) == {"rule_change"}


def test_comparing_any_two_versions_and_restoring_the_current_one_is_refused(admin_client, dynamic_group):
    save_rules(admin_client, dynamic_group, STAFF)
    save_rules(admin_client, dynamic_group, {"all": [STAFF, {"field": "email", "op": "contains", "value": "bob"}]})
    html = settings_tab(admin_client, dynamic_group, "&with=1&compare=3").content.decode()
    assert "What changed from v1 to v3" in html
    assert "+ All of these:" in html and "+     whose email contains &#x27;bob&#x27;" in html
    response = admin_client.post(
        reverse("admin:groups_customergroup_restore_rules", args=[dynamic_group.pk, 3]), follow=True
    )
    assert "Version 3 is already the rules of" in response.content.decode()
    assert CustomerGroup.objects.get(pk=dynamic_group.pk).rule_version == 3


def test_a_viewer_sees_the_rule_history_but_cannot_restore(viewer_client, dynamic_group):
    services.change_rules(dynamic_group, STAFF)
    html = settings_tab(viewer_client, dynamic_group).content.decode()
    assert 'id="rule-version-1"' in html and "Restore this version" not in html
    url = reverse("admin:groups_customergroup_restore_rules", args=[dynamic_group.pk, 1])
    assert viewer_client.post(url).status_code == 403


def test_a_new_group_and_its_copy_start_their_history_with_who_made_them(admin_client, staff_user, dynamic_group):
    copy = services.duplicate_group(dynamic_group, initiated_by=staff_user)
    assert list(copy.rule_versions.values_list("version", "created_by")) == [(1, staff_user.pk)]
    assert "not changed since the group was made" in settings_tab(admin_client, copy).content.decode()
