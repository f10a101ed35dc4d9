"""Groups: CRUD through the services, and everything under a group (members, history, runs, refresh,
query, preview, explain, export, members at a past moment)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from config.celery import app as celery_app
from customers.models import Customer, Event
from groups import services
from groups.models import CustomerGroup, Membership, MembershipChange, RefreshRun

pytestmark = pytest.mark.django_db(transaction=True)

CUSTOMERS_RULE = {"field": "role", "op": "eq", "value": "customer"}
STAFF_RULE = {"field": "role", "op": "eq", "value": "staff"}


def members(group_id) -> set[int]:
    return set(Membership.objects.filter(group_id=group_id).values_list("customer_id", flat=True))


@pytest.fixture
def people():
    return {
        "ann": Customer.objects.create(email="ann@example.com", role="customer", external_id="ann"),
        "bob": Customer.objects.create(email="bob@example.com", role="staff", external_id="bob"),
        "cy": Customer.objects.create(email="=cmd|' /C calc'!A0", role="Customer"),
    }


def create_group(api, **fields):
    response = api.post("/api/groups/", {"name": "Customers", "rules": CUSTOMERS_RULE, **fields}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_creating_a_dynamic_group_fills_it_before_the_call_returns(api, people):
    body = create_group(api, tags=["Team", "Retail"], description="Role is customer")
    assert body["slug"] == "customers" and sorted(body["tags"]) == ["Retail", "Team"]
    assert body["member_count"] == 2 and body["last_run_status"] == "succeeded"
    assert members(body["id"]) == {people["ann"].pk, people["cy"].pk}
    assert create_group(api, name="Customers!")["slug"] == "customers-2"
    taken = api.post("/api/groups/", {"name": "customers", "rules": CUSTOMERS_RULE}, format="json")
    assert taken.status_code == 400 and taken.json() == {"name": ["another group is already named 'customers'"]}


def test_invalid_rules_are_400_in_the_rule_language_shape(api):
    response = api.post(
        "/api/groups/",
        {
            "name": "Bad",
            "rules": {
                "all": [{"field": "emial", "op": "eq", "value": "x"}, {"field": "email", "op": "gt", "value": 3}]
            },
        },
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()["rules"]
    assert {e["path"] for e in errors} == {"/all/0/field", "/all/1/op"}
    assert all(set(e) == {"path", "message"} for e in errors)
    assert "did you mean 'email'" in errors[0]["message"]
    assert not CustomerGroup.objects.exists()


def test_a_nul_character_in_the_rules_is_400_at_its_path_in_the_rule_language_shape(api):
    response = api.post(
        "/api/groups/",
        {"name": "Nul", "rules": {"all": [{"field": "email", "op": "eq", "value": "a\u0000b"}]}},
        format="json",
    )
    assert response.status_code == 400
    assert [e["path"] for e in response.json()["rules"]] == ["/all/0/value"]
    assert "NUL" in response.json()["rules"][0]["message"]
    assert not CustomerGroup.objects.exists()


def test_a_dynamic_group_needs_rules_and_a_manual_group_has_none(api):
    no_rules = api.post("/api/groups/", {"name": "X"}, format="json")
    assert no_rules.status_code == 400 and no_rules.json()["rules"][0]["path"] == ""
    manual_with_rules = api.post(
        "/api/groups/", {"name": "X", "kind": "manual", "rules": CUSTOMERS_RULE}, format="json"
    )
    assert manual_with_rules.status_code == 400 and "rules" in manual_with_rules.json()


def test_schedule_is_validated_and_kept_as_a_beat_task(api):
    bad = api.post(
        "/api/groups/",
        {
            "name": "S",
            "rules": CUSTOMERS_RULE,
            "refresh_mode": "events_and_schedule",
            "schedule": {"frequency": "daily", "time": "25:00"},
            "time_zone": "Mars/Olympus",
        },
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["schedule"][0]["path"] == "/time" and "time_zone" in bad.json()
    body = create_group(
        api,
        refresh_mode="events_and_schedule",
        schedule={"frequency": "daily", "time": "06:00"},
        time_zone="Europe/Paris",
    )
    assert body["next_scheduled_run_at"] is not None
    assert PeriodicTask.objects.filter(name=f"groups.refresh:{body['id']}", enabled=True).exists()
    switched = api.patch(f"/api/groups/{body['id']}/", {"refresh_mode": "events"}, format="json")
    assert switched.status_code == 200
    assert not PeriodicTask.objects.filter(name=f"groups.refresh:{body['id']}").exists()


def test_changing_rules_refreshes_by_the_new_rules(api, people):
    body = create_group(api)
    response = api.patch(f"/api/groups/{body['id']}/", {"rules": STAFF_RULE}, format="json")
    assert response.status_code == 200 and response.json()["rule_version"] == 2
    assert members(body["id"]) == {people["bob"].pk}
    reasons = set(MembershipChange.objects.filter(group_id=body["id"]).values_list("reason", flat=True))
    assert "rule_change" in reasons


def test_deactivating_empties_the_group_and_activating_fills_it(api, people):
    body = create_group(api)
    assert api.patch(f"/api/groups/{body['id']}/", {"is_active": False}, format="json").json()["member_count"] == 0
    assert members(body["id"]) == set()
    assert api.patch(f"/api/groups/{body['id']}/", {"is_active": True}, format="json").json()["member_count"] == 2


def test_kind_cannot_change_and_a_slug_must_be_free(api):
    body = create_group(api)
    assert "kind" in api.patch(f"/api/groups/{body['id']}/", {"kind": "manual"}, format="json").json()
    other = create_group(api, name="Other")
    clash = api.patch(f"/api/groups/{other['id']}/", {"slug": body["slug"]}, format="json")
    assert clash.status_code == 400 and "slug" in clash.json()


def test_list_filter_retrieve_put_and_delete(api):
    body = create_group(api, tags=["Team"])
    create_group(api, name="Manual", kind="manual", rules={})
    assert api.get("/api/groups/").json()["count"] == 2
    assert [g["name"] for g in api.get("/api/groups/?kind=manual").json()["results"]] == ["Manual"]
    assert api.get("/api/groups/?tags__name=Team").json()["count"] == 1
    put = api.put(f"/api/groups/{body['id']}/", {"name": "Renamed", "rules": CUSTOMERS_RULE}, format="json")
    assert put.status_code == 200 and put.json()["name"] == "Renamed"
    assert api.delete(f"/api/groups/{body['id']}/").status_code == 204
    assert api.get(f"/api/groups/{body['id']}/").status_code == 404


def test_members_are_paginated_with_the_customer_fields(api, people):
    body = create_group(api)
    response = api.get(f"/api/groups/{body['id']}/members/")
    assert response.status_code == 200 and len(response.json()["results"]) == 2 and response.json()["next"] is None
    first = response.json()["results"][0]
    assert set(first) == {"id", "external_id", "email", "added_at"} and first["external_id"] == "ann"
    assert api.get("/api/groups/999999/members/").status_code == 404


def test_manual_groups_are_edited_by_hand_and_dynamic_ones_refuse(api, people):
    manual = create_group(api, name="VIP list", kind="manual", rules={})
    added = api.post(
        f"/api/groups/{manual['id']}/members/add/",
        {"customer_ids": [people["bob"].pk], "external_ids": ["ann"]},
        format="json",
    )
    assert added.status_code == 200 and added.json() == {"changed": 2, "member_count": 2}
    removed = api.post(f"/api/groups/{manual['id']}/members/remove/", {"external_ids": ["ann"]}, format="json")
    assert removed.json() == {"changed": 1, "member_count": 1}
    unknown = api.post(f"/api/groups/{manual['id']}/members/add/", {"customer_ids": [999999]}, format="json")
    assert unknown.status_code == 400 and "999999" in unknown.json()["customer_ids"][0]
    dynamic = create_group(api)
    refused = api.post(f"/api/groups/{dynamic['id']}/members/add/", {"customer_ids": [people["bob"].pk]}, format="json")
    assert refused.status_code == 400 and "dynamic" in refused.json()["detail"]


def test_history_lists_each_change_with_the_customer_and_an_empty_sync(api, people):
    body = create_group(api)
    Customer.objects.filter(pk=people["ann"].pk).update(role="staff")
    history = api.get(f"/api/groups/{body['id']}/history/").json()
    assert len(history["results"]) == 3 and history["next"] is None
    newest = history["results"][0]
    assert newest["change"] == "removed" and newest["customer"] == {
        "id": people["ann"].pk,
        "external_id": "ann",
        "email": "ann@example.com",
    }
    assert newest["reason"] == "event" and newest["sync"] == {}
    assert len(api.get(f"/api/groups/{body['id']}/history/?change=added").json()["results"]) == 2
    oldest_first = api.get(f"/api/groups/{body['id']}/history/?ordering=changed_at").json()["results"]
    assert oldest_first[0]["change"] == "added"
    ann_only = api.get(f"/api/groups/{body['id']}/history/?customer={people['ann'].pk}").json()
    assert len(ann_only["results"]) == 2


@pytest.fixture
def eager_celery():
    """Run queued tasks at once, in the test, through Celery's own dispatch."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def test_refresh_is_accepted_queued_through_celery_and_listed_in_runs(api, people, eager_celery):
    body = create_group(api)
    response = api.post(f"/api/groups/{body['id']}/refresh/")
    assert response.status_code == 202
    run = response.json()
    assert run["reason"] == "manual_refresh" and run["status"] in {"queued", "running", "succeeded"}
    assert RefreshRun.objects.get(pk=run["id"]).status == "succeeded"
    runs = api.get(f"/api/groups/{body['id']}/runs/").json()
    assert runs["results"][0]["id"] == run["id"] and runs["results"][0]["status"] == "succeeded"
    assert api.get(f"/api/groups/{body['id']}/runs/?status=failed").json()["count"] == 0


def test_query_gives_the_sentence_and_the_sql(api):
    body = create_group(api)
    query = api.get(f"/api/groups/{body['id']}/query/").json()
    assert query["sentence"].startswith("Customers")
    assert "customers_customer" in query["sql"] and "'customer'" in query["sql"]


def test_preview_counts_samples_and_compares_with_the_current_members(api, people):
    body = create_group(api)
    response = api.post(
        f"/api/groups/{body['id']}/preview/",
        {"rules": {"field": "email", "op": "contains", "value": "example"}},
        format="json",
    )
    assert response.status_code == 200
    result = response.json()
    assert (result["count"], result["would_enter"], result["would_leave"]) == (2, 1, 1)
    assert {c["id"] for c in result["sample"]} == {people["ann"].pk, people["bob"].pk}
    bad = api.post(
        f"/api/groups/{body['id']}/preview/", {"rules": {"field": "nope", "op": "eq", "value": 1}}, format="json"
    )
    assert bad.status_code == 400 and bad.json()["rules"][0]["path"] == "/field"


def test_explain_says_why_a_customer_is_in_or_out(api, people):
    body = create_group(api)
    explained = api.get(f"/api/groups/{body['id']}/explain/{people['ann'].pk}/").json()
    assert explained["holds"] is True and explained["member"] is True and explained["value"] == "customer"
    assert api.get(f"/api/groups/{body['id']}/explain/{people['bob'].pk}/").json()["holds"] is False
    assert api.get(f"/api/groups/{body['id']}/explain/999999/").status_code == 404


def test_export_streams_chosen_columns_with_formulas_neutralised(api, people):
    body = create_group(api)
    response = api.get(f"/api/groups/{body['id']}/export.csv?columns=external_id,email,role&bom=true")
    assert response.status_code == 200 and response["Content-Disposition"] == 'attachment; filename="customers.csv"'
    content = b"".join(response.streaming_content)
    assert content.startswith(b"\xef\xbb\xbf")
    assert content.decode("utf-8-sig").splitlines() == [
        "external_id,email,role",
        "ann,ann@example.com,customer",
        ",'=cmd|' /C calc'!A0,Customer",
    ]
    bad = api.get(f"/api/groups/{body['id']}/export.csv?columns=email,password")
    assert bad.status_code == 400 and "'password'" in bad.json()["columns"][0]


def test_members_at_rebuilds_the_past_from_the_history(api, people):
    body = create_group(api)
    before = timezone.now()
    Customer.objects.filter(pk=people["ann"].pk).update(role="staff")
    past = api.get(f"/api/groups/{body['id']}/members-at/", {"at": before.isoformat()}).json()
    assert {c["id"] for c in past["results"]} == {people["ann"].pk, people["cy"].pk}
    now = api.get(f"/api/groups/{body['id']}/members-at/", {"at": (timezone.now() + timedelta(seconds=1)).isoformat()})
    assert {c["id"] for c in now.json()["results"]} == {people["cy"].pk}
    assert api.get(f"/api/groups/{body['id']}/members-at/?at=soon").status_code == 400


def test_attribute_catalogue_crud(api):
    created = api.post("/api/attributes/", {"key": "tier", "type": "text", "label": "Tier"}, format="json")
    assert created.status_code == 201
    attribute_id = created.json()["id"]
    assert api.post("/api/attributes/", {"key": "bad key", "type": "colour"}, format="json").json().keys() >= {
        "key",
        "type",
    }
    assert api.patch(f"/api/attributes/{attribute_id}/", {"label": "Loyalty tier"}, format="json").status_code == 200
    assert api.get("/api/attributes/?entity=customer").json()["results"][0]["label"] == "Loyalty tier"
    assert api.delete(f"/api/attributes/{attribute_id}/").status_code == 204


def test_event_in_the_group_flow_end_to_end(api):
    body = create_group(api, name="Visitors", rules={"event": "check_in", "count": {"op": "gte", "value": 2}})
    ann = Customer.objects.create(external_id="ann")
    event = {"customer": "ann", "name": "check_in", "occurred_at": timezone.now().isoformat()}
    api.post("/api/events/batch/", {"events": [event, event]}, format="json")
    assert members(body["id"]) == {ann.pk} and Event.objects.count() == 2
    services.refresh(CustomerGroup.objects.get(pk=body["id"]))
    assert members(body["id"]) == {ann.pk}


def test_query_and_explain_of_rules_that_went_stale_say_what_is_wrong(api):
    other = create_group(api, name="Other")
    body = create_group(api, name="Dependant", rules={"in_group": other["id"]})
    CustomerGroup.objects.filter(pk=other["id"]).delete()
    query = api.get(f"/api/groups/{body['id']}/query/")
    assert query.status_code == 400 and query.json()["rules"][0]["path"] == "/in_group"
    ann = Customer.objects.create(email="ann@example.com")
    assert api.get(f"/api/groups/{body['id']}/explain/{ann.pk}/").status_code == 400


def test_preview_names_who_would_enter_and_leave_and_lists_them_all_page_by_page(api, people):
    body = create_group(api)  # ann and cy (role "Customer" matches, ignoring case)
    more = Customer.objects.bulk_create([Customer(email=f"s{i}@example.com", role="staff") for i in range(120)])
    staff = {"rules": STAFF_RULE}
    result = api.post(f"/api/groups/{body['id']}/preview/", staff, format="json").json()
    assert (result["would_enter"], result["would_leave"]) == (121, 2)
    assert [c["id"] for c in result["entering"]] == sorted([people["bob"].pk, *(c.pk for c in more)])[:20]
    assert {c["email"] for c in result["leaving"]} == {"ann@example.com", people["cy"].email}

    url = f"/api/groups/{body['id']}/preview/entering/"
    first = api.post(url, staff, format="json").json()
    assert len(first["results"]) == 100 and first["next_after"] == first["results"][-1]["id"]
    rest = api.post(url, {**staff, "after": first["next_after"]}, format="json").json()
    assert len(rest["results"]) == 21 and rest["next_after"] is None
    entering = {c["id"] for c in first["results"] + rest["results"]}
    assert entering == {people["bob"].pk, *(c.pk for c in more)}
    leaving = api.post(f"/api/groups/{body['id']}/preview/leaving/", staff, format="json").json()
    assert {c["id"] for c in leaving["results"]} == {people["ann"].pk, people["cy"].pk}
    bad = api.post(url, {"rules": {"field": "nope", "op": "eq", "value": 1}}, format="json")
    assert bad.status_code == 400 and bad.json()["rules"][0]["path"] == "/field"
    assert api.post(url, {}, format="json").json()["rules"][0]["path"] == ""


def test_history_says_who_caused_each_change_and_rule_versions_are_listed(api, staff_user, people):
    body = create_group(api)
    api.patch(f"/api/groups/{body['id']}/", {"rules": STAFF_RULE}, format="json")
    api.patch(f"/api/customers/{people['bob'].pk}/", {"role": "owner"}, format="json")  # leaves on an event
    history = api.get(f"/api/groups/{body['id']}/history/").json()["results"]
    assert sorted((item["reason"], item["change"], item["initiated_by"]) for item in history) == [
        ("event", "removed", None),
        ("group_created", "added", staff_user.pk),
        ("group_created", "added", staff_user.pk),
        ("rule_change", "added", staff_user.pk),
        ("rule_change", "removed", staff_user.pk),
        ("rule_change", "removed", staff_user.pk),
    ]
    versions = api.get(f"/api/groups/{body['id']}/rule-versions/").json()["results"]
    assert [(v["version"], v["rules"], v["created_by"]) for v in versions] == [
        (2, STAFF_RULE, staff_user.pk),
        (1, CUSTOMERS_RULE, staff_user.pk),
    ]


def test_timed_activation_through_the_api_with_the_admins_checks(api, people):
    body = create_group(api)
    url = f"/api/groups/{body['id']}/"
    soon, later = timezone.now() + timedelta(hours=1), timezone.now() + timedelta(hours=2)
    paused = api.patch(url, {"deactivate_at": soon.isoformat(), "activate_at": later.isoformat()}, format="json")
    assert paused.status_code == 200, paused.content
    assert paused.json()["deactivate_at"] is not None and paused.json()["activate_at"] is not None

    past = api.patch(url, {"deactivate_at": (timezone.now() - timedelta(minutes=1)).isoformat()}, format="json")
    assert past.json() == {"deactivate_at": ["this time has passed; deactivate the group now instead"]}
    other = (later + timedelta(hours=1)).isoformat()
    pointless = api.patch(url, {"deactivate_at": None, "activate_at": other}, format="json")
    assert pointless.status_code == 400 and "already active" in pointless.json()["activate_at"][0]

    # The sweep applies the times as it does the admin's: here the deactivation comes due.
    services.apply_due_activations(now=soon + timedelta(seconds=1))
    group = api.get(url).json()
    assert not group["is_active"] and group["member_count"] == 0 and group["deactivate_at"] is None
    services.apply_due_activations(now=later + timedelta(seconds=1))
    assert api.get(url).json()["member_count"] == 2


def test_a_group_created_without_a_refresh_mode_is_always_current_when_its_rules_change_with_time(api, people):
    visited = {"event": "check_in", "window": {"last": {"days": 30}}}
    assert create_group(api, name="Visited", rules=visited)["refresh_mode"] == "always_current"
    assert create_group(api, name="Customers")["refresh_mode"] == "events"
    chosen = create_group(api, name="Visited by hand", rules=visited, refresh_mode="events")
    assert chosen["refresh_mode"] == "events"
    manual = api.post("/api/groups/", {"name": "Panel", "kind": "manual", "refresh_mode": "always_current"},
                      format="json")  # fmt: skip
    assert manual.status_code == 400 and "refresh_mode" in manual.json()
