"""The trigger form in the back office: each action's settings as fields, templates checked with the line
of the mistake, durations as a number and a unit, and a preview with a real member of the group."""

from __future__ import annotations

from datetime import timedelta

import pytest

from automations.models import Trigger
from customers.models import Customer
from groups import services
from groups.models import CustomerGroup

pytestmark = pytest.mark.django_db

ADD = "/admin/automations/trigger/add/"


@pytest.fixture
def regulars():
    group = CustomerGroup.objects.create(name="Regulars", slug="regulars", kind=CustomerGroup.Kind.MANUAL)
    ann = Customer.objects.create(external_id="C-1", first_name="Ann", last_name="Lee", email="ann@example.com")
    bob = Customer.objects.create(external_id="C-2", first_name="Bob", last_name="Ray", email="bob@example.com")
    services.add_members(group, [ann.pk, bob.pk])
    return group


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


def trigger_form(group, **fields) -> dict:
    return {"name": "Welcome", "group": group.pk, "on": "enter", "is_active": "on", "action": "email",
            "reentry": "each", "origin": "organic", **fields}  # fmt: skip


def errors_of(response) -> dict:
    return response.context["adminform"].form.errors


def test_staff_create_an_email_trigger_from_fields_and_it_stores_the_settings_document(staff, regulars):
    response = staff.post(ADD, trigger_form(regulars, email_subject="Hello {{ customer.first_name }}",
                                            email_body="Welcome to {{ group.name }}.",
                                            sms_body="filled in, then the action changed to email",
                                            cooldown_0="2", cooldown_1="days",
                                            minimum_time_0="30", minimum_time_1="minutes"))  # fmt: skip
    assert response.status_code == 302, errors_of(response)
    trigger = Trigger.objects.get()
    assert trigger.settings == {"subject": "Hello {{ customer.first_name }}", "body": "Welcome to {{ group.name }}."}
    assert (trigger.cooldown, trigger.minimum_time) == (timedelta(days=2), timedelta(minutes=30))


def test_a_duration_left_empty_is_none_whatever_its_unit(staff, regulars):
    response = staff.post(ADD, trigger_form(regulars, email_subject="Hi", email_body="Hi",
                                            cooldown_0="", cooldown_1="hours", minimum_time_0="0",
                                            minimum_time_1="days"))  # fmt: skip
    assert response.status_code == 302, errors_of(response)
    assert (Trigger.objects.get().cooldown, Trigger.objects.get().minimum_time) == (None, None)
    refused = staff.post(ADD, trigger_form(regulars, email_subject="Hi", email_body="Hi", cooldown_0="-1",
                                           cooldown_1="days"))  # fmt: skip
    assert "cooldown" in errors_of(refused)


def test_the_form_shows_every_actions_fields_and_the_stored_settings_and_durations(staff, regulars):
    trigger = Trigger.objects.create(name="Welcome", group=regulars, action="email", cooldown=timedelta(hours=36),
                                     settings={"subject": "Hi {{ customer }}", "body": "Come back soon."})  # fmt: skip
    page = staff.get(f"/admin/automations/trigger/{trigger.pk}/change/").content.decode()
    for field in ["email_subject", "email_body", "sms_body", "task_assignee", "task_title", "task_due_in_days",
                  "notify_to", "notify_subject", "webhook_url", "webhook_secret"]:  # fmt: skip
        assert f'name="{field}"' in page
    assert 'value="Hi {{ customer }}"' in page and "Come back soon.</textarea>" in page
    assert 'name="cooldown_0" value="36"' in page and '<option value="hours" selected>' in page
    assert 'fieldset class="module aligned action-settings action-settings-sms"' in page
    assert 'name="settings"' not in page  # nobody types JSON


def test_changing_the_action_stores_only_the_new_actions_settings(staff, regulars):
    trigger = Trigger.objects.create(name="Welcome", group=regulars, action="email",
                                     settings={"subject": "Hi", "body": "Welcome.", "kept": "by the API"})  # fmt: skip
    change = f"/admin/automations/trigger/{trigger.pk}/change/"
    same = staff.post(change, trigger_form(regulars, email_subject="Hello", email_body="Welcome."))
    assert same.status_code == 302, errors_of(same)
    trigger.refresh_from_db()
    assert trigger.settings == {"subject": "Hello", "body": "Welcome.", "kept": "by the API"}
    moved = staff.post(change, trigger_form(regulars, action="sms", email_subject="Hello", email_body="Welcome.",
                                            sms_body="Hi {{ customer.first_name }}"))  # fmt: skip
    assert moved.status_code == 302, errors_of(moved)
    trigger.refresh_from_db()
    assert (trigger.action, trigger.settings) == ("sms", {"body": "Hi {{ customer.first_name }}"})


def test_a_template_syntax_error_is_reported_on_its_field_with_the_line(staff, regulars):
    response = staff.post(
        ADD,
        trigger_form(
            regulars, email_subject="Hello", email_body="Dear {{ customer.first_name }},\n{% if group %}\nWelcome."
        ),
    )
    assert response.status_code == 200 and not Trigger.objects.exists()
    [problem] = errors_of(response)["email_body"]
    assert "Unclosed tag on line 2: 'if'" in problem
    assert "email_subject" not in errors_of(response)

    response = staff.post(ADD, trigger_form(regulars, email_subject="Hi {{ customer|shout }}", email_body="Hi"))
    assert errors_of(response)["email_subject"] == ["Invalid filter: 'shout' (line 1)"]


def test_only_the_chosen_actions_settings_are_required(staff, regulars):
    response = staff.post(ADD, trigger_form(regulars, action="sms"))
    assert response.status_code == 200 and not Trigger.objects.exists()
    assert errors_of(response) == {"sms_body": ["This setting is required."]}


def test_a_task_trigger_picks_its_assignee_from_the_staff(staff, regulars, django_user_model):
    django_user_model.objects.create_user("maria", first_name="Maria", last_name="Diaz", is_staff=True)
    django_user_model.objects.create_user("gone", is_active=False)
    page = staff.get(ADD).content.decode()
    assert '<option value="maria">Maria Diaz (maria)</option>' in page and 'value="gone"' not in page

    refused = staff.post(ADD, trigger_form(regulars, action="task", task_assignee="gone", task_title="Call"))
    assert "task_assignee" in errors_of(refused) and not Trigger.objects.exists()
    saved = staff.post(ADD, trigger_form(regulars, action="task", task_assignee="maria",
                                         task_title="Call {{ customer }}", task_due_in_days="3"))  # fmt: skip
    assert saved.status_code == 302, errors_of(saved)
    assert Trigger.objects.get().settings == {"assignee": "maria", "title": "Call {{ customer }}", "due_in_days": 3}


def test_a_webhook_secret_is_never_shown_back_and_kept_when_left_blank(staff, regulars):
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    response = staff.post(ADD, trigger_form(regulars, action="webhook", webhook_url="https://example.com/hook",
                                            webhook_secret=secret))  # fmt: skip
    assert response.status_code == 302, errors_of(response)
    trigger = Trigger.objects.get()
    change = f"/admin/automations/trigger/{trigger.pk}/change/"
    page = staff.get(change).content.decode()
    assert secret not in page  # neither in the field nor in the settings as stored
    assert "Stored. Leave blank to keep it." in page
    edited = staff.post(change, trigger_form(regulars, name="Renamed", action="webhook",
                                             webhook_url="https://example.com/other"))  # fmt: skip
    assert edited.status_code == 302, errors_of(edited)
    trigger.refresh_from_db()
    assert trigger.settings == {"url": "https://example.com/other", "secret": secret}
    bad = staff.post(change, trigger_form(regulars, action="webhook", webhook_url="ftp://x",
                                          webhook_secret="whsec_***"))  # fmt: skip
    assert set(errors_of(bad)) == {"webhook_url", "webhook_secret"}


def test_superusers_see_the_settings_as_stored_and_others_do_not(staff, client, regulars, django_user_model):
    from django.contrib.auth.models import Permission

    trigger = Trigger.objects.create(name="Welcome", group=regulars, action="email",
                                     settings={"subject": "Hi", "body": "Welcome."})  # fmt: skip
    change = f"/admin/automations/trigger/{trigger.pk}/change/"
    assert "Settings (JSON, as the API has them)" in staff.get(change).content.decode()
    editor = django_user_model.objects.create_user("ed", is_staff=True)
    editor.user_permissions.set(Permission.objects.filter(codename__in=["view_trigger", "change_trigger"]))
    client.force_login(editor)
    page = client.get(change)
    assert page.status_code == 200 and b"Settings (JSON" not in page.content and b'name="email_subject"' in page.content


def test_the_trigger_previews_its_message_with_a_real_member(staff, regulars):
    trigger = Trigger.objects.create(
        name="Welcome",
        group=regulars,
        action="email",
        settings={
            "subject": "Hello {{ customer.first_name }}",
            "body": "Welcome to {{ group.name }}, {{ customer.last_name }}.",
        },
    )
    change = f"/admin/automations/trigger/{trigger.pk}/change/"
    first = staff.get(change).content.decode()  # the first member, until someone is named
    assert "Preview with a real customer: Ann" in first and "Hello Ann" in first
    for query in ["bob ray", "bob@example.com", "C-2"]:
        page = staff.get(change, {"preview": query}).content.decode()
        assert "Hello Bob" in page and "Welcome to Regulars, Ray." in page, query
    outsider = Customer.objects.create(first_name="Cat", email="cat@example.com")
    missing = staff.get(change, {"preview": str(outsider.pk)}).content.decode()
    assert "No member of the group matches." in missing and "Hello Cat" not in missing


def test_whoever_may_only_look_reads_the_settings_in_words(client, regulars, django_user_model):
    from django.contrib.auth.models import Permission

    from automations.models import Send

    trigger = Trigger.objects.create(
        name="Hook",
        group=regulars,
        action="webhook",
        settings={"url": "https://example.com/hook", "secret": "whsec_c2VjcmV0"},
    )
    send = Send.objects.create(name="Ask", group=regulars, channel="sms", settings={"body": "Your birthday?"})
    viewer = django_user_model.objects.create_user("vi", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename__in=["view_trigger", "view_send"]))
    client.force_login(viewer)
    page = client.get(f"/admin/automations/trigger/{trigger.pk}/change/").content.decode()
    assert "<strong>Endpoint</strong>" in page and "https://example.com/hook" in page
    assert "(stored, not shown)" in page and "whsec_c2VjcmV0" not in page and 'name="webhook_url"' not in page
    page = client.get(f"/admin/automations/send/{send.pk}/change/").content.decode()
    assert "<strong>Message</strong>" in page and "Your birthday?" in page and 'name="sms_body"' not in page


def test_the_form_previews_its_settings_before_they_are_saved(staff, regulars):
    preview = "/admin/automations/trigger/preview/"
    shown = staff.post(preview, {"action": "email", "group": regulars.pk, "preview": "bob",
                                 "email_subject": "Hi {{ customer.first_name }}", "email_body": "In {{ group.name }}",
                                 "sms_body": "not this one"})  # fmt: skip
    page = shown.content.decode()
    assert shown.status_code == 200 and "Preview with a real customer: Bob Ray" in page
    assert "Hi Bob" in page and "In Regulars" in page and "not this one" not in page
    broken = staff.post(preview, {"action": "sms", "group": regulars.pk, "sms_body": "Hi\n{% for x in %}"})
    assert "The body template is not valid" in broken.content.decode() and "line 2" in broken.content.decode()
    assert staff.post(preview, {"action": "email"}).content.decode().count("Choose a group and an action") == 1
    assert staff.get(preview).status_code == 405
    assert not Trigger.objects.exists()
