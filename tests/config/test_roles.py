"""The staff roles: each signs in and tries every page, action, export and API call of the back office.

`setup_roles` makes the roles; the users here have nothing but their role. "Allowed" means the page
or call did its work (2xx, or a redirect after a change); "refused" means a 403 that names what was
missing, and nothing changed.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from config.roles import EDITOR, GROUP_ADMIN, VIEWER
from customers.models import AttributeDefinition, Customer
from groups import services
from groups.models import CustomerGroup

pytestmark = pytest.mark.django_db

ROLES = [VIEWER, EDITOR, GROUP_ADMIN]
RULES = {"field": "role", "op": "eq", "value": "customer"}


@pytest.fixture
def objects(db):
    call_command("setup_roles", stdout=StringIO())
    ann = Customer.objects.create(email="ann@example.com", first_name="Ann", role="customer", external_id="C-1")
    Customer.objects.create(email="bob@example.com", first_name="Bob", role="staff", external_id="C-2")
    group = CustomerGroup.objects.create(name="Customers", slug="customers", rules=RULES)
    services.refresh(group)
    manual = CustomerGroup.objects.create(name="Panel", slug="panel", kind=CustomerGroup.Kind.MANUAL)
    return {"ann": ann, "group": group, "manual": manual}


@pytest.fixture(params=ROLES)
def role(request, objects, django_user_model):
    user = django_user_model.objects.create_user(
        request.param.lower().replace(" ", "-"), password="a-long-test-password", is_staff=True
    )
    user.groups.add(Group.objects.get(name=request.param))
    client = Client()
    client.force_login(user)
    api = APIClient()
    api.force_authenticate(user)
    return request.param, client, api


def admin(name, *args):
    return reverse(f"admin:{name}", args=args)


def group_page(o, tab):
    return admin("groups_customergroup_change", o["group"].pk) + f"?tab={tab}"


# (what, how, who may: viewer, editor, group admin)
PAGES = [
    ("home page", lambda c, o: c.get(admin("index")), (True, True, True)),
    ("customer list", lambda c, o: c.get(admin("customers_customer_changelist")), (True, True, True)),
    ("customer page", lambda c, o: c.get(admin("customers_customer_change", o["ann"].pk)), (True, True, True)),
    ("customer page, why not", lambda c, o: c.get(admin("customers_customer_change", o["ann"].pk),
                                                 {"why_not": o["manual"].pk}), (True, True, True)),
    ("new customer form", lambda c, o: c.get(admin("customers_customer_add")), (False, True, True)),
    ("import page", lambda c, o: c.get(admin("customers_customer_import")), (False, True, True)),
    ("customer export", lambda c, o: c.get(admin("customers_customer_export")), (False, True, True)),
    ("accounts", lambda c, o: c.get(admin("customers_account_changelist")), (True, True, True)),
    ("events", lambda c, o: c.get(admin("customers_event_changelist")), (True, True, True)),
    ("attribute catalogue", lambda c, o: c.get(admin("customers_attributedefinition_changelist")), (True, True, True)),
    ("new attribute form", lambda c, o: c.get(admin("customers_attributedefinition_add")), (False, False, True)),
    ("group list", lambda c, o: c.get(admin("groups_customergroup_changelist")), (True, True, True)),
    ("members tab", lambda c, o: c.get(group_page(o, "members")), (True, True, True)),
    ("history tab", lambda c, o: c.get(group_page(o, "history")), (True, True, True)),
    ("settings tab", lambda c, o: c.get(group_page(o, "settings")), (True, True, True)),
    ("automations tab", lambda c, o: c.get(group_page(o, "automations")), (True, True, True)),
    ("new group form", lambda c, o: c.get(admin("groups_customergroup_add")), (False, True, True)),
    ("group export", lambda c, o: c.get(admin("groups_customergroup_export", o["group"].pk)), (False, True, True)),
    ("group delete page", lambda c, o: c.get(admin("groups_customergroup_delete", o["group"].pk)),
     (False, False, True)),
    ("group health", lambda c, o: c.get(admin("groups_customergroup_health")), (True, True, True)),
    ("tags", lambda c, o: c.get(admin("groups_tag_changelist")), (True, True, True)),
    ("connections", lambda c, o: c.get(admin("integrations_connection_changelist")), (True, True, True)),
    ("new connection", lambda c, o: c.get(admin("integrations_connection_add")), (False, False, True)),
    ("group syncs", lambda c, o: c.get(admin("integrations_groupsync_changelist")), (True, True, True)),
    ("triggers", lambda c, o: c.get(admin("automations_trigger_changelist")), (True, True, True)),
    ("new trigger form", lambda c, o: c.get(admin("automations_trigger_add")), (False, True, True)),
    ("tasks", lambda c, o: c.get(admin("automations_task_changelist")), (True, True, True)),
    ("sends", lambda c, o: c.get(admin("automations_send_changelist")), (True, True, True)),
    ("new send form", lambda c, o: c.get(admin("automations_send_add")), (False, True, True)),
    ("staff users", lambda c, o: c.get(admin("auth_user_changelist")), (False, False, False)),
    ("staff roles", lambda c, o: c.get(admin("auth_group_changelist")), (False, False, False)),
    ("API keys", lambda c, o: c.get(admin("config_apikey_changelist")), (False, False, False)),
    ("periodic tasks", lambda c, o: c.get(admin("django_celery_beat_periodictask_changelist")), (False, False, False)),
]  # fmt: skip


def _post(c, name, *args, data=None):
    return c.post(admin(name, *args), data or {})


ACTIONS = [
    ("refresh a group", lambda c, o: _post(c, "groups_customergroup_refresh", o["group"].pk),
     lambda o: o["group"].runs.filter(initiated_by__isnull=False).exists(), (False, True, True)),
    ("deactivate a group", lambda c, o: _post(c, "groups_customergroup_deactivate", o["group"].pk),
     lambda o: not CustomerGroup.objects.get(pk=o["group"].pk).is_active, (False, True, True)),
    ("duplicate a group", lambda c, o: _post(c, "groups_customergroup_duplicate", o["group"].pk),
     lambda o: CustomerGroup.objects.count() == 3, (False, True, True)),
    ("delete a group", lambda c, o: _post(c, "groups_customergroup_delete", o["group"].pk, data={"post": "yes"}),
     lambda o: not CustomerGroup.objects.filter(pk=o["group"].pk).exists(), (False, False, True)),
    ("add members from a list", lambda c, o: _post(c, "groups_customergroup_edit_members", o["manual"].pk,
                                                   data={"operation": "add", "identifiers": "ann@example.com"}),
     lambda o: o["manual"].memberships.count() == 1, (False, True, True)),
    ("add customers to a group from the list", lambda c, o: _post(
        c, "customers_customer_changelist",
        data={"action": "add_to_group", ACTION_CHECKBOX_NAME: [o["ann"].pk], "apply": "1", "group": o["manual"].pk}),
     lambda o: o["manual"].memberships.count() == 1, (False, True, True)),
    ("import a CSV file", lambda c, o: _post(c, "customers_customer_import", data={
        "file": SimpleUploadedFile("people.csv", b"email\ncat@example.com\n", content_type="text/csv")}),
     lambda o: _import_started(), (False, True, True)),
    ("declare an attribute", lambda c, o: _post(c, "customers_attributedefinition_add",
                                                data={"entity": "customer", "key": "tier", "type": "text"}),
     lambda o: AttributeDefinition.objects.filter(key="tier").exists(), (False, False, True)),
    ("export groups from the list", lambda c, o: _post(
        c, "groups_customergroup_changelist", data={"action": "export_groups", ACTION_CHECKBOX_NAME: [o["group"].pk]}),
     None, (False, True, True)),
    ("preview rules", lambda c, o: c.post(admin("groups_customergroup_preview"), json.dumps({"rules": RULES}),
                                          content_type="application/json"), None, (True, True, True)),
    ("download the Marsello tag file", lambda c, o: c.get(admin("groups_customergroup_marsello_csv", o["group"].pk)),
     None, (False, True, True)),
    ("delete a customer", lambda c, o: _post(c, "customers_customer_delete", o["ann"].pk, data={"post": "yes"}),
     lambda o: not Customer.objects.filter(pk=o["ann"].pk).exists(), (False, False, False)),
]  # fmt: skip


def _answered(what: str, response) -> bool:
    if response.status_code != 200:
        return False
    if what == "preview rules":
        return response.json()["count"] == 1
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return b"ann@example.com" in content  # the download holds the members


def _import_started() -> bool:
    from customers.models import CustomerImport

    return CustomerImport.objects.exists()


API = [
    ("list customers", lambda a, o: a.get("/api/customers/"), (True, True, True)),
    ("identify a customer", lambda a, o: a.post("/api/customers/identify/", {"email": "new@example.com"},
                                                 format="json"), (False, True, True)),
    ("record an event", lambda a, o: a.post("/api/events/", {"customer": "C-1", "name": "purchase",
                                                             "occurred_at": "2026-01-05T10:00:00Z"}, format="json"),
     (False, True, True)),
    ("customer export", lambda a, o: a.get("/api/customers/export.csv"), (False, True, True)),
    ("list groups", lambda a, o: a.get("/api/groups/"), (True, True, True)),
    ("explain a customer", lambda a, o: a.get(f"/api/groups/{o['group'].pk}/explain/{o['ann'].pk}/"),
     (True, True, True)),
    ("create a group", lambda a, o: a.post("/api/groups/", {"name": "New", "rules": RULES}, format="json"),
     (False, True, True)),
    ("refresh a group", lambda a, o: a.post(f"/api/groups/{o['group'].pk}/refresh/"), (False, True, True)),
    ("group export", lambda a, o: a.get(f"/api/groups/{o['group'].pk}/export.csv"), (False, True, True)),
    ("group history", lambda a, o: a.get(f"/api/groups/{o['group'].pk}/history/"), (True, True, True)),
    ("group members", lambda a, o: a.get(f"/api/groups/{o['group'].pk}/members/"), (True, True, True)),
    ("preview rules", lambda a, o: a.post(f"/api/groups/{o['group'].pk}/preview/", {"rules": RULES}, format="json"),
     (True, True, True)),
    ("add members by hand", lambda a, o: a.post(f"/api/groups/{o['manual'].pk}/members/add/",
                                                 {"external_ids": ["C-1"]}, format="json"), (False, True, True)),
    ("delete a group", lambda a, o: a.delete(f"/api/groups/{o['group'].pk}/"), (False, False, True)),
    ("declare an attribute", lambda a, o: a.post("/api/attributes/", {"key": "tier", "type": "text"}, format="json"),
     (False, False, True)),
    ("list connections", lambda a, o: a.get("/api/connections/"), (True, True, True)),
    ("list triggers", lambda a, o: a.get("/api/triggers/"), (True, True, True)),
]  # fmt: skip


def allowed_for(role: str, who: tuple[bool, bool, bool]) -> bool:
    return who[ROLES.index(role)]


def assert_refused(response) -> None:
    assert response.status_code == 403, response.status_code
    text = response.content.decode()
    assert "“Can " in text, text[:500]  # the refusal names the missing permission


@pytest.mark.parametrize(("what", "get", "who"), PAGES, ids=[case[0] for case in PAGES])
def test_pages(role, objects, what, get, who):
    name, client, _ = role
    response = get(client, objects)
    if allowed_for(name, who):
        assert response.status_code == 200, (name, what, response.status_code)
    else:
        assert_refused(response)


@pytest.mark.parametrize(("what", "act", "done", "who"), ACTIONS, ids=[case[0] for case in ACTIONS])
def test_actions(role, objects, what, act, done, who):
    name, client, _ = role
    response = act(client, objects)
    # A download or an answer changes nothing: what matters is whether it came.
    happened = done(objects) if done is not None else _answered(what, response)
    if allowed_for(name, who):
        assert response.status_code in (200, 302), (name, what, response.status_code)
        assert happened, (name, what)
    else:
        # A list refuses an action by not offering it (Django's admin answers 200 then).
        if response.status_code != 200:
            assert_refused(response)
        assert not happened, (name, what)


@pytest.mark.parametrize(("what", "call", "who"), API, ids=[case[0] for case in API])
def test_api(role, objects, what, call, who):
    name, _, api = role
    response = call(api, objects)
    if allowed_for(name, who):
        assert response.status_code < 300, (name, what, response.status_code, getattr(response, "data", None))
    else:
        assert response.status_code == 403, (name, what, response.status_code)
        assert response.json()["detail"].startswith("This needs the permission"), response.json()


def test_setup_roles_puts_a_changed_role_back(objects):
    viewer = Group.objects.get(name=VIEWER)
    viewer.permissions.clear()
    out = StringIO()
    call_command("setup_roles", stdout=out)
    assert "Viewer (" in out.getvalue() and viewer.permissions.filter(codename="view_customer").exists()
    assert not viewer.permissions.filter(codename="export_customer").exists()


def test_a_viewers_settings_tab_reads_like_the_editors(objects, django_user_model):
    """In words, as the editor's form shows them: the rules as a sentence, the refresh as a schedule."""
    pages = {}
    for role in (VIEWER, EDITOR):
        user = django_user_model.objects.create_user(role.lower(), password="a-long-test-password", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        client = Client()
        client.force_login(user)
        pages[role] = client.get(group_page(objects, "settings")).content.decode()
    viewer, editor = pages[VIEWER], pages[EDITOR]
    assert 'id="rules-in-words"' in viewer and "Customers whose role is" in viewer
    assert "Refreshes on events only" in viewer
    for raw_field in ("Schedule cron:", "Schedule weekdays:", "Schedule minute:", "Is active:"):
        assert raw_field not in viewer
    assert "Cron expression:" in editor  # the editor's form names the schedule fields this way
    assert 'name="_save"' in editor and 'name="_save"' not in viewer
