"""The back office: the group's Automations tab, firings on the customer page, and the manager's tasks."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from automations.models import Send, Task, Trigger

from .conftest import buy_tea, run_automations

pytestmark = pytest.mark.django_db(transaction=True)

CALL = {"title": "Call {{ customer.first_name }} about tea", "assignee": "maria", "due_in_days": 2,
        "notes": "Entered {{ group.name }}."}  # fmt: skip


def test_a_customer_who_enters_gets_a_task_in_the_managers_list(api, client, tea_group, ann, manager):
    manager.user_permissions.set(Permission.objects.filter(codename__in=["view_task", "change_task"]))
    response = api.post("/api/triggers/", {"name": "Call new tea buyers", "group": tea_group.pk, "action": "task",
                                           "settings": CALL}, format="json")  # fmt: skip
    assert response.status_code == 201, response.content
    buy_tea(api, "ann")
    run_automations()

    client.force_login(manager)
    index = client.get("/admin/")
    assert b"My open tasks: <strong>1</strong>" in index.content
    mine = client.get("/admin/automations/task/?mine=1&status__exact=open")
    assert mine.status_code == 200 and b"Call Ann about tea" in mine.content
    task = Task.objects.get()
    assert (task.assignee, task.customer, task.group, task.notes) == (manager, ann, tea_group, "Entered Bought tea.")
    assert api.get("/api/tasks/?status=open").json()["results"][0]["title"] == "Call Ann about tea"


def test_the_group_page_has_an_automations_tab_and_the_customer_page_its_firings(api, client, staff_user, smtp,
                                                                                   tea_group, ann):  # fmt: skip
    Trigger.objects.create(name="Tea thank-you", group=tea_group, action="email",
                           settings={"subject": "Thanks", "body": "Enjoy."})  # fmt: skip
    buy_tea(api, "ann")
    run_automations()
    client.force_login(staff_user)
    tab = client.get(f"/admin/groups/customergroup/{tea_group.pk}/change/?tab=automations")
    assert tab.status_code == 200
    assert b'id="tab-automations"' in tab.content and b"Tea thank-you" in tab.content
    assert "Email “Thanks” to ann@example.com".encode() in tab.content
    assert b"Sent: 1" in tab.content
    members = client.get(f"/admin/groups/customergroup/{tea_group.pk}/change/")
    assert members.status_code == 200 and b'id="group-triggers"' not in members.content
    customer = client.get(f"/admin/customers/customer/{ann.pk}/change/")
    assert customer.status_code == 200 and "Email “Thanks” to ann@example.com".encode() in customer.content


def test_a_one_off_send_from_the_back_office(client, staff_user, smtp, ann):
    from groups import services
    from groups.models import CustomerGroup

    group = CustomerGroup.objects.create(name="No birthdate", slug="nb", kind=CustomerGroup.Kind.MANUAL)
    services.add_members(group, [ann.pk])
    client.force_login(staff_user)
    added = client.post("/admin/automations/send/add/", {
        "name": "Ask for birthdates", "group": group.pk, "channel": "email",
        "email_subject": "Your birthday, {{ customer.first_name }}?", "email_body": "Tell us.",
        "sms_body": "Not this one"})  # fmt: skip
    assert added.status_code == 302, added.context["adminform"].form.errors
    send = Send.objects.get()
    assert send.settings == {"subject": "Your birthday, {{ customer.first_name }}?", "body": "Tell us."}
    page = client.get(f"/admin/automations/send/{send.pk}/change/")
    assert b"<strong>1</strong> members will receive it" in page.content
    assert b"Your birthday, Ann?" in page.content and b'id="send-now"' in page.content
    other = client.get(f"/admin/automations/send/{send.pk}/change/", {"preview": "nobody@example.com"})
    assert "No member of the group matches “nobody@example.com”.".encode() in other.content
    assert client.get(f"/admin/automations/send/{send.pk}/schedule/").status_code == 403  # POST only
    client.post(f"/admin/automations/send/{send.pk}/schedule/")
    page = client.get(f"/admin/automations/send/{send.pk}/change/")
    assert b'<progress id="send-progress" max="1" value="1">' in page.content
    assert b"1 sent, 0 skipped, 0 failed" in page.content and b'id="send-now"' not in page.content
    assert [m["To"] for m in smtp.messages] == ["ann@example.com"]
