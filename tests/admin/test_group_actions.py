"""Buttons and list actions on groups: each goes through the services and ends with a message."""

from __future__ import annotations

import json

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from groups import tasks
from groups.models import CustomerGroup, Membership, RefreshRun

pytestmark = pytest.mark.django_db

LIST = "admin:groups_customergroup_changelist"


@pytest.fixture
def sent(monkeypatch):
    """The refresh tasks handed to Celery (the worker itself is the e2e tests' business)."""
    calls = []
    monkeypatch.setattr(tasks.refresh_group, "delay", lambda *args: calls.append(args))
    return calls


def test_refresh_now_queues_a_run_and_sends_the_task(
    admin_client, dynamic_group, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:groups_customergroup_refresh", args=[dynamic_group.pk]))
    assert response.status_code == 302 and response["Location"].endswith("?tab=settings")
    run = RefreshRun.objects.filter(status="queued").get()
    assert run.status == RefreshRun.Status.QUEUED
    assert sent == [(dynamic_group.pk, "manual_refresh", run.pk)]


def test_refresh_is_post_only(admin_client, dynamic_group):
    assert admin_client.get(reverse("admin:groups_customergroup_refresh", args=[dynamic_group.pk])).status_code == 405


def test_refresh_all_queues_every_active_dynamic_group(
    admin_client, dynamic_group, manual_group, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:groups_customergroup_refresh_all"), follow=True)
    assert "Refresh queued for 1 active dynamic groups" in response.content.decode()
    assert [call[0] for call in sent] == [dynamic_group.pk]


def act(client, action, groups, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [g.pk for g in groups], **extra}
    return client.post(reverse(LIST), data)


def test_deactivate_and_activate_actions_go_through_the_services(admin_client, dynamic_group):
    act(admin_client, "deactivate_groups", [dynamic_group])
    dynamic_group.refresh_from_db()
    assert not dynamic_group.is_active and dynamic_group.member_count == 0
    act(admin_client, "activate_groups", [dynamic_group])
    dynamic_group.refresh_from_db()
    assert dynamic_group.is_active and dynamic_group.member_count == 2


def test_duplicate_copies_rules_tags_and_fills_the_copy(admin_client, dynamic_group):
    dynamic_group.tags.create(name="Team")
    act(admin_client, "duplicate_groups", [dynamic_group])
    copy = CustomerGroup.objects.get(name="Copy of Customers")
    assert copy.rules == dynamic_group.rules and copy.member_count == 2
    assert list(copy.tags.values_list("name", flat=True)) == ["Team"]


def test_export_action_streams_the_members(admin_client, dynamic_group):
    response = act(admin_client, "export_groups", [dynamic_group])
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines()[0] == "id,external_id,email,phone,first_name,last_name,email_consent,sms_consent"
    assert "ann@example.com" in body and "bob@example.com" not in body


def test_export_view_takes_the_chosen_columns(admin_client, dynamic_group):
    url = reverse("admin:groups_customergroup_export", args=[dynamic_group.pk]) + "?columns=email,role"
    body = b"".join(admin_client.get(url).streaming_content).decode()
    assert body.splitlines() == ["email,role", "ann@example.com,customer", "cat@example.com,customer"]


def test_delete_asks_first_and_lists_what_goes(admin_client, dynamic_group):
    page = act(admin_client, "delete_groups", [dynamic_group])
    html = page.content.decode()
    assert page.status_code == 200 and "its 2 memberships" in html and "no synced lists or tags" in html
    assert CustomerGroup.objects.filter(pk=dynamic_group.pk).exists()
    act(admin_client, "delete_groups", [dynamic_group], post="yes")
    assert not CustomerGroup.objects.filter(pk=dynamic_group.pk).exists()
    assert not Membership.objects.exists()


def test_delete_view_of_one_group_uses_the_same_confirmation(admin_client, dynamic_group):
    url = reverse("admin:groups_customergroup_delete", args=[dynamic_group.pk])
    assert "no synced lists or tags" in admin_client.get(url).content.decode()
    admin_client.post(url, {"post": "yes"})
    assert not CustomerGroup.objects.exists()


def preview(client, rules, group=None):
    body = {"rules": rules, "group_id": group.pk if group else None}
    return client.post(reverse("admin:groups_customergroup_preview"), json.dumps(body), content_type="application/json")


def test_preview_counts_and_says_who_would_enter_and_leave(admin_client, dynamic_group):
    response = preview(admin_client, {"field": "role", "op": "eq", "value": "staff"}, dynamic_group)
    counts = {key: response.json()[key] for key in ("count", "would_enter", "would_leave")}
    assert counts == {"count": 1, "would_enter": 1, "would_leave": 2}
    assert preview(admin_client, {"all": []}).json()["count"] == 3


def test_preview_returns_every_problem_with_its_path(admin_client, customers):
    response = preview(
        admin_client,
        {"all": [{"field": "emial", "op": "eq", "value": "x"}, {"field": "email", "op": "gt", "value": 1}]},
    )
    assert response.status_code == 400
    assert {error["path"] for error in response.json()["errors"]} >= {"/all/0/field", "/all/1/op"}


def test_saving_changed_rules_goes_through_change_rules(admin_client, dynamic_group):
    data = form_data(dynamic_group, rules=json.dumps({"field": "role", "op": "eq", "value": "staff"}))
    response = admin_client.post(reverse("admin:groups_customergroup_change", args=[dynamic_group.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    dynamic_group.refresh_from_db()
    assert dynamic_group.rule_version == 2 and dynamic_group.member_count == 1
    assert RefreshRun.objects.filter(group=dynamic_group, reason="rule_change").exists()


def test_invalid_rules_never_save_and_every_problem_is_listed(admin_client, dynamic_group):
    rules = {"all": [{"field": "emial", "op": "eq", "value": "x"}, {"event": ""}]}
    response = admin_client.post(
        reverse("admin:groups_customergroup_change", args=[dynamic_group.pk]),
        form_data(dynamic_group, rules=json.dumps(rules)),
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "/all/0/field" in html and "/all/1/event" in html
    dynamic_group.refresh_from_db()
    assert dynamic_group.rule_version == 1


def test_schedule_fields_are_checked_and_saved(admin_client, dynamic_group):
    url = reverse("admin:groups_customergroup_change", args=[dynamic_group.pk])
    bad = form_data(
        dynamic_group, refresh_mode="events_and_schedule", schedule_frequency="daily", schedule_time="25:00"
    )
    assert admin_client.post(url, bad).status_code == 200
    good = form_data(
        dynamic_group,
        refresh_mode="events_and_schedule",
        schedule_frequency="daily",
        schedule_time="07:30",
        time_zone="Europe/Paris",
    )
    assert admin_client.post(url, good).status_code == 302
    dynamic_group.refresh_from_db()
    assert dynamic_group.schedule == {"frequency": "daily", "time": "07:30"}


def form_data(group, **changes):
    data = {
        "name": group.name,
        "slug": group.slug,
        "description": group.description,
        "rules": json.dumps(group.rules),
        "refresh_mode": group.refresh_mode,
        "time_zone": group.time_zone,
        "is_active": "on",
        "schedule_frequency": "",
    }
    data.update(changes)
    return data


def test_a_manual_group_is_created_without_rules(admin_client, customers):
    data = {
        "name": "VIP tasting",
        "slug": "vip-tasting",
        "kind": "manual",
        "rules": "",
        "refresh_mode": "events",
        "time_zone": "",
        "is_active": "on",
        "schedule_frequency": "",
    }
    response = admin_client.post(reverse("admin:groups_customergroup_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    group = CustomerGroup.objects.get(slug="vip-tasting")
    assert group.kind == "manual" and group.rules == {} and not RefreshRun.objects.filter(group=group).exists()


def test_a_new_dynamic_group_fills_at_once(admin_client, customers):
    data = {
        "name": "Staff",
        "slug": "staff",
        "kind": "dynamic",
        "refresh_mode": "events",
        "time_zone": "",
        "rules": json.dumps({"field": "role", "op": "eq", "value": "staff"}),
        "is_active": "on",
        "schedule_frequency": "",
    }
    assert admin_client.post(reverse("admin:groups_customergroup_add"), data).status_code == 302
    assert CustomerGroup.objects.get(slug="staff").member_count == 1


def test_activation_schedule_is_saved_for_the_sweep(admin_client, dynamic_group):
    url = reverse("admin:groups_customergroup_change", args=[dynamic_group.pk])
    data = form_data(dynamic_group, deactivate_at_0="2030-01-31", deactivate_at_1="18:00:00")
    assert admin_client.post(url, data).status_code == 302
    dynamic_group.refresh_from_db()
    assert dynamic_group.deactivate_at is not None and dynamic_group.is_active


def test_deactivating_in_the_form_goes_through_set_active(admin_client, dynamic_group):
    url = reverse("admin:groups_customergroup_change", args=[dynamic_group.pk])
    data = form_data(dynamic_group)
    del data["is_active"]
    assert admin_client.post(url, data).status_code == 302
    dynamic_group.refresh_from_db()
    assert not dynamic_group.is_active and dynamic_group.member_count == 0
    assert RefreshRun.objects.filter(group=dynamic_group, reason="deactivation").exists()


@pytest.mark.parametrize("button, members", [("deactivate", 0), ("activate", 2)])
def test_activate_and_deactivate_say_the_member_count_after_the_change(admin_client, dynamic_group, button, members):
    if button == "activate":
        admin_client.post(reverse("admin:groups_customergroup_deactivate", args=[dynamic_group.pk]))
    response = admin_client.post(reverse(f"admin:groups_customergroup_{button}", args=[dynamic_group.pk]), follow=True)
    html = response.content.decode()
    assert f"{button}d; it now has {members} members" in html
    assert f'<strong id="member-count">{members}</strong>' in html


def test_the_first_fill_of_a_new_group_and_of_a_copy_is_recorded_as_group_created(admin_client, customers):
    data = {"name": "Staff", "slug": "staff", "kind": "dynamic", "refresh_mode": "events", "time_zone": "",
            "rules": json.dumps({"field": "role", "op": "eq", "value": "staff"}), "is_active": "on",
            "schedule_frequency": ""}  # fmt: skip
    admin_client.post(reverse("admin:groups_customergroup_add"), data)
    group = CustomerGroup.objects.get(slug="staff")
    admin_client.post(reverse("admin:groups_customergroup_duplicate", args=[group.pk]))
    copy = CustomerGroup.objects.get(name="Copy of Staff")
    for made in (group, copy):
        assert set(made.changes.values_list("reason", flat=True)) == {"group_created"}
        assert set(made.runs.values_list("reason", flat=True)) == {"group_created"}
    html = admin_client.get(reverse("admin:groups_customergroup_change", args=[copy.pk]) + "?tab=history").content
    assert "Group created" in html.decode()


def test_a_taken_name_is_said_on_the_name_and_a_clashing_slug_made_free(admin_client, dynamic_group):
    data = {"name": "customers", "slug": "customers", "kind": "dynamic", "refresh_mode": "events", "time_zone": "",
            "rules": json.dumps({"all": []}), "is_active": "on", "schedule_frequency": ""}  # fmt: skip
    response = admin_client.post(reverse("admin:groups_customergroup_add"), data)
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["name"] and "already named “customers”" in errors["name"][0]
    # Another name whose slug is the same: saved, with a slug of its own.
    response = admin_client.post(reverse("admin:groups_customergroup_add"), {**data, "name": "Customers!"})
    assert response.status_code == 302
    assert CustomerGroup.objects.get(name="Customers!").slug == "customers-2"


def test_renaming_makes_a_new_free_slug_unless_the_slug_was_typed(admin_client, dynamic_group, manual_group):
    url = reverse("admin:groups_customergroup_change", args=[dynamic_group.pk])

    def rename(**changes) -> str:
        saved = CustomerGroup.objects.get(pk=dynamic_group.pk)
        assert admin_client.post(url, form_data(saved, **changes)).status_code == 302
        return CustomerGroup.objects.get(pk=dynamic_group.pk).slug

    assert rename(name="Regulars") == "regulars"
    assert rename(name="Tasting panel!") == "tasting-panel-2"  # "tasting-panel" is the manual group's
    assert rename(slug="kept-by-hand") == "kept-by-hand"
    assert rename(name="Renamed") == "kept-by-hand"


def test_preview_problems_name_operators_as_the_builder_labels_them(admin_client, customers):
    response = preview(admin_client, {"field": "email", "op": "eq", "value": ""})
    assert response.json()["errors"] == [
        {"path": "/value", "message": "an empty text never matches; use “is empty” or “is not empty” instead"}
    ]


def test_preview_names_who_would_enter_and_leave_with_links_to_the_full_lists(admin_client, dynamic_group):
    answer = preview(admin_client, {"field": "role", "op": "eq", "value": "staff"}, dynamic_group).json()
    assert [c["first_name"] for c in answer["entering"]] == ["Bob"]
    assert [c["first_name"] for c in answer["leaving"]] == ["Ann", "Cat"]
    leaving = admin_client.get(answer["leaving_url"])
    html = leaving.content.decode()
    assert leaving.status_code == 200 and "Who would leave “Customers”" in html
    assert "ann@example.com" in html and "cat@example.com" in html and "bob@example.com" not in html
    assert "Customers whose role is &#x27;staff&#x27;" in html
    entering = admin_client.get(answer["entering_url"]).content.decode()
    assert "bob@example.com" in entering and "ann@example.com" not in entering


def test_the_full_list_of_a_preview_says_what_is_wrong_with_rules_it_cannot_run(admin_client, dynamic_group):
    url = reverse("admin:groups_customergroup_preview_changes", args=[dynamic_group.pk])
    response = admin_client.get(url, {"side": "enter", "rules": json.dumps({"field": "nope", "op": "eq"})})
    assert response.status_code == 400 and "unknown field &#x27;nope&#x27;" in response.content.decode()


def test_timed_activation_times_are_checked_in_the_form(admin_client, dynamic_group):
    url = reverse("admin:groups_customergroup_change", args=[dynamic_group.pk])
    past = admin_client.post(url, form_data(dynamic_group, deactivate_at_0="2001-01-31", deactivate_at_1="18:00:00"))
    assert past.context["adminform"].form.errors["deactivate_at"] == [
        "This time has passed; deactivate the group now instead."
    ]
    pointless = admin_client.post(url, form_data(dynamic_group, activate_at_0="2099-01-31", activate_at_1="18:00:00"))
    assert "already active" in pointless.context["adminform"].form.errors["activate_at"][0]


@pytest.mark.parametrize(
    ("rules", "chosen", "mode"),
    [
        ({"event": "check_in", "window": {"last": {"days": 30}}}, "", "always_current"),
        ({"field": "birthdate", "op": "anniversary_within_next", "value": {"days": 7}}, "", "always_current"),
        ({"field": "role", "op": "eq", "value": "staff"}, "", "events"),
        ({"event": "check_in", "window": {"last": {"days": 30}}}, "events", "events"),
    ],
    ids=["rolling window", "birthday", "no time", "chosen by staff"],
)
def test_a_new_group_whose_rules_change_with_time_is_always_current_unless_staff_choose(
    admin_client, customers, rules, chosen, mode
):
    data = {"name": "New", "slug": "new", "kind": "dynamic", "refresh_mode": chosen, "time_zone": "",
            "rules": json.dumps(rules), "is_active": "on", "schedule_frequency": ""}  # fmt: skip
    assert admin_client.post(reverse("admin:groups_customergroup_add"), data).status_code == 302
    assert CustomerGroup.objects.get(slug="new").refresh_mode == mode
