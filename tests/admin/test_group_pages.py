"""The group list and the group page's tabs render what staff need, from the real database."""

from __future__ import annotations

import pytest
from django.urls import reverse

from groups.models import CustomerGroup, SizeSnapshot

pytestmark = pytest.mark.django_db


def change_url(group, tab=""):
    return reverse("admin:groups_customergroup_change", args=[group.pk]) + (f"?tab={tab}" if tab else "")


def test_group_list_shows_members_trend_status_and_tags(admin_client, dynamic_group):
    dynamic_group.tags.create(name="Team")
    page = admin_client.get(reverse("admin:groups_customergroup_changelist"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Customers" in html and "Team" in html and "Refresh all" in html
    assert '<svg class="sparkline"' in html and "✔ Succeeded" in html


def test_group_list_makes_failures_stand_out(admin_client, dynamic_group):
    CustomerGroup.objects.filter(pk=dynamic_group.pk).update(last_run_status="failed", last_error="boom")
    html = admin_client.get(reverse("admin:groups_customergroup_changelist")).content.decode()
    assert 'class="run-failed" title="boom"' in html


@pytest.mark.parametrize("query", ["status=failing", "kind__exact=dynamic", "refresh_mode__exact=events", "q=Cust"])
def test_group_list_filters_and_search(admin_client, dynamic_group, query):
    page = admin_client.get(reverse("admin:groups_customergroup_changelist") + "?" + query)
    assert page.status_code == 200


def test_members_tab_lists_members_with_chosen_columns_and_trend(admin_client, dynamic_group):
    page = admin_client.get(change_url(dynamic_group, "members") + "&columns=email&columns=role")
    html = page.content.decode()
    assert page.status_code == 200
    assert "ann@example.com" in html and "cat@example.com" in html and "bob@example.com" not in html
    assert "columns=email%2Crole" in html  # the export link carries the chosen columns
    assert 'class="trend-chart"' in html


def test_members_tab_search(admin_client, dynamic_group):
    html = admin_client.get(change_url(dynamic_group, "members") + "&q=ann").content.decode()
    assert "ann@example.com" in html and "cat@example.com" not in html


def test_history_tab_filters_and_members_on_a_date(admin_client, dynamic_group):
    html = admin_client.get(change_url(dynamic_group, "history") + "&change=added&q=ann").content.decode()
    assert "ann@example.com" in html and "+ Added" in html and "cat@example.com" not in html
    html = admin_client.get(change_url(dynamic_group, "history") + "&on=2000-01-01").content.decode()
    assert "<strong>0</strong> members at the end of 2000-01-01" in html
    html = admin_client.get(change_url(dynamic_group, "history") + "&on=2999-01-01").content.decode()
    assert "<strong>2</strong> members at the end of 2999-01-01" in html


def test_settings_tab_shows_builder_query_schedule_and_runs(admin_client, dynamic_group):
    html = admin_client.get(change_url(dynamic_group, "settings")).content.decode()
    assert "rule-builder" in html and "groups/rule_builder.js" in html
    assert "Customers whose role is" in html and "SELECT c.id" in html
    assert "Refreshes on events only" in html and "Processing history" in html and "Refresh now" in html


def test_add_page_renders(admin_client, customers):
    assert admin_client.get(reverse("admin:groups_customergroup_add")).status_code == 200


def test_trend_chart_draws_snapshots(admin_client, dynamic_group):
    SizeSnapshot.objects.create(group=dynamic_group, kind="run", taken_at="2026-01-01T00:00:00Z", member_count=1)
    html = admin_client.get(change_url(dynamic_group, "members") + "&range=365").content.decode()
    assert "<polyline" in html


def test_settings_tab_warns_when_a_scheduled_group_is_stale(admin_client, dynamic_group):
    from datetime import timedelta

    from django.utils import timezone

    long_ago = timezone.now() - timedelta(days=3)
    CustomerGroup.objects.filter(pk=dynamic_group.pk).update(
        refresh_mode="events_and_schedule",
        schedule={"frequency": "hourly", "minute": 0},
        time_zone="Europe/Paris",
        last_refreshed_at=long_ago,
        created_at=long_ago,
    )
    html = admin_client.get(change_url(dynamic_group, "settings")).content.decode()
    assert 'id="stale-warning"' in html and "Every hour at :00" in html
    assert html.count("CET") + html.count("CEST") >= 5  # next runs and the last time, in the group's zone
    assert "has not happened yet" in html


def test_a_manual_group_shows_no_refresh_settings_schedule_or_refresh_time(admin_client, manual_group):
    html = admin_client.get(change_url(manual_group, "settings")).content.decode()
    assert "never refreshed" not in html and "last refreshed" not in html
    assert 'name="refresh_mode"' not in html and 'name="schedule_frequency"' not in html
    assert "Schedule and health" not in html and "Processing history" not in html
    listed = admin_client.get(reverse("admin:groups_customergroup_changelist")).content.decode()
    for column in ("refresh", "last_refreshed", "next_run"):
        assert f'<td class="field-{column}">—</td>' in listed


def test_saving_a_manual_group_keeps_it_unscheduled(admin_client, manual_group):
    url = reverse("admin:groups_customergroup_change", args=[manual_group.pk])
    response = admin_client.post(
        url, {"name": "Tasting panel", "slug": "tasting-panel", "description": "Monthly", "is_active": "on"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    manual_group.refresh_from_db()
    assert manual_group.description == "Monthly" and manual_group.schedule == {} and manual_group.is_active


def test_an_inactive_group_lists_no_next_runs(admin_client, dynamic_group):
    CustomerGroup.objects.filter(pk=dynamic_group.pk).update(
        refresh_mode="events_and_schedule", schedule={"frequency": "daily", "time": "06:00"}
    )
    assert "Next runs:" in admin_client.get(change_url(dynamic_group, "settings")).content.decode()
    CustomerGroup.objects.filter(pk=dynamic_group.pk).update(is_active=False)
    html = admin_client.get(change_url(dynamic_group, "settings")).content.decode()
    assert "Next runs:" not in html and "runs no refreshes until it is activated" in html


def test_history_rows_and_runs_say_who_caused_them(admin_client, staff_user, dynamic_group, manual_group, customers):
    from groups import services

    services.set_active(dynamic_group, False, initiated_by=staff_user)
    services.add_members(manual_group, [customers[1].pk], initiated_by=staff_user)
    html = admin_client.get(change_url(dynamic_group, "history") + "&change=removed").content.decode()
    assert html.count("<td>staff</td>") == 2  # the two members let go on deactivation, by the person
    html = admin_client.get(change_url(dynamic_group, "history") + "&change=added").content.decode()
    assert "<td>staff</td>" not in html and html.count("<td>—</td>") == 2  # the fixture's refresh: no one
    assert "<td>staff</td>" in admin_client.get(change_url(manual_group, "history")).content.decode()
    runs = admin_client.get(change_url(dynamic_group, "settings")).content.decode()
    assert "Group deactivated</td>\n        <td>staff</td>" in runs


@pytest.mark.parametrize("tab", ["members", "history", "settings"])
def test_every_time_on_the_group_pages_says_its_zone(admin_client, settings, dynamic_group, tab):
    """Schedule times in the group's zone (New York), the rest in the site's (Paris), each labelled."""
    import re

    settings.TIME_ZONE = "Europe/Paris"
    CustomerGroup.objects.filter(pk=dynamic_group.pk).update(
        time_zone="America/New_York",
        refresh_mode="events_and_schedule",
        schedule={"frequency": "daily", "time": "06:00"},
    )
    html = admin_client.get(change_url(dynamic_group, tab) + "&columns=email&columns=added_at").content.decode()
    times = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)?(?: [A-Z]{2,5}\b)?", html)
    assert times and all(t.endswith((" CET", " CEST", " EST", " EDT")) for t in times), times
    if tab == "settings":
        assert re.search(r"Next runs: \w{3} \d{4}-\d\d-\d\d 06:00 E[SD]T", html)
        assert "In the site's time zone (Europe/Paris)" in html
    else:
        assert " EST" not in html and " EDT" not in html


def list_columns(client) -> list[str]:
    import re

    html = client.get(reverse("admin:groups_customergroup_changelist")).content.decode()
    return re.findall(r'<th scope="col" class="[^"]*\bcolumn-(\w+)', html)


def test_each_user_chooses_and_orders_the_group_list_columns(admin_client, viewer, dynamic_group):
    from django.test import Client

    url = reverse("admin:groups_customergroup_columns")
    default = list_columns(admin_client)
    assert default[:3] == ["name", "kind_short", "active"]
    order = default[1:]
    # Move "Members" up twice, hide the trend and the sync: nothing is kept until saved.
    page = admin_client.post(url, {"order": order, "shown": order, "move": "members:up"})
    assert "Not saved yet" in page.content.decode()
    moved = [c["name"] for c in page.context["columns"]]
    assert moved[:3] == ["kind_short", "members", "active"]
    page = admin_client.post(url, {"order": moved, "shown": order, "move": "members:up"})
    moved = [c["name"] for c in page.context["columns"]]
    assert list_columns(admin_client) == default
    shown = [c for c in moved if c not in ("trend", "sync")]
    response = admin_client.post(url, {"order": moved, "shown": shown, "save": "1"})
    assert response.status_code == 302
    assert list_columns(admin_client) == ["name", "members", "kind_short", "active", "refresh", "last_refreshed",
                                          "next_run", "tag_list"]  # fmt: skip
    # Kept for that user only; another sees the usual columns, and a reset brings them back.
    other = Client()
    other.force_login(viewer)
    assert list_columns(other) == default
    admin_client.post(url, {"reset": "1"})
    assert list_columns(admin_client) == default


def test_the_tag_filter_lists_only_the_groups_with_that_tag(admin_client, dynamic_group, manual_group):
    team = dynamic_group.tags.create(name="Team")
    manual_group.tags.create(name="Events")
    page = admin_client.get(reverse("admin:groups_customergroup_changelist"), {"tags__id__exact": team.pk})
    assert [g.name for g in page.context["cl"].result_list] == ["Customers"]
    html = page.content.decode()
    assert ">Customers</a>" in html and ">Tasting panel</a>" not in html


def test_a_running_refresh_shows_its_progress_against_the_last_runs(admin_client, dynamic_group):
    from datetime import timedelta

    from django.utils import timezone

    from groups.models import RefreshRun

    now = timezone.now()
    RefreshRun.objects.filter(group=dynamic_group).update(duration_ms=20_000)
    running = RefreshRun.objects.create(
        group=dynamic_group, reason="manual_refresh", status="running", started_at=now - timedelta(seconds=5)
    )
    html = admin_client.get(change_url(dynamic_group, "settings")).content.decode()
    assert 'id="refresh-progress"' in html and "its last refreshes took about 20 s" in html
    assert '<progress max="100" value="2' in html  # 5 of about 20 seconds: a quarter (and a little more)
    url = reverse("admin:groups_customergroup_progress", args=[dynamic_group.pk])
    answer = admin_client.get(url).json()["progress"]
    assert answer["run"] == running.pk and answer["status"] == "running" and 25 <= answer["percent"] < 50
    RefreshRun.objects.filter(pk=running.pk).update(status="succeeded", finished_at=now)
    assert admin_client.get(url).json() == {"progress": None}
    assert 'id="refresh-progress"' not in admin_client.get(change_url(dynamic_group, "settings")).content.decode()


def test_settings_tab_of_an_always_current_group_says_when_its_next_time_change_is_due(admin_client, customers):
    import datetime as dt

    from customers.models import Event
    from groups import services

    group = CustomerGroup.objects.create(
        name="Visited", slug="visited", rules={"event": "check_in", "window": {"last": {"days": 30}}},
        refresh_mode="always_current", time_zone="Europe/Paris",
    )  # fmt: skip
    services.fill_new_group(group)
    html = admin_client.get(change_url(group, "settings")).content.decode()
    assert "Always current" in html and "No customer's membership can change by time alone now" in html
    visit = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=2)
    for customer in customers:
        Event.objects.create(customer=customer, name="check_in", occurred_at=visit)
    services.refresh(group)
    html = admin_client.get(change_url(group, "settings")).content.decode()
    due = (visit + dt.timedelta(days=30)).astimezone(group.zone)
    assert f"Next time-based change due {due:%a %Y-%m-%d %H:%M}" in html
    assert f"{len(customers)} customers waiting for one" in html
