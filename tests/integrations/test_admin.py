"""The sync pages staff use: connect an app, test it, turn a group's sync on, see per-app history."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from groups import feed
from groups import services as groups
from integrations import drain
from integrations.models import Connection, GroupSync
from integrations.providers.base import provider_class

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def finish(sync_id: int) -> None:
    while drain.drain(sync_id) is drain.Outcome.MORE:
        pass


def test_connecting_a_webhook_stores_the_secret_encrypted_and_never_shows_it(admin_client, receiver, secret):
    picker = admin_client.get(reverse("admin:integrations_connection_add"))
    assert b"Webhook (Standard Webhooks)" in picker.content and b"Klaviyo" in picker.content
    response = admin_client.post(
        reverse("admin:integrations_connection_add") + "?kind=webhook",
        {"kind": "webhook", "name": "Our receiver", "consent": "everyone", "setting_url": receiver.url,
         "setting_timeout": "2", "secret_secret": secret},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    connection = Connection.objects.get(name="Our receiver")
    assert connection.credentials == {"secret": secret}
    page = admin_client.get(reverse("admin:integrations_connection_change", args=[connection.pk])).content.decode()
    assert secret not in page and secret[-4:] in page  # masked: the last four characters only

    tested = admin_client.post(reverse("admin:integrations_connection_test", args=[connection.pk]), follow=True)
    assert "works" in tested.content.decode()
    connection.refresh_from_db()
    assert connection.status == Connection.Status.OK and connection.last_success_at
    assert receiver.applied[-1]["type"] == "webhook.test"


def test_a_bad_secret_is_refused_with_what_is_wrong(admin_client, receiver):
    response = admin_client.post(
        reverse("admin:integrations_connection_add") + "?kind=webhook",
        {"kind": "webhook", "name": "Bad", "consent": "everyone", "setting_url": receiver.url, "secret_secret": "x"},
    )
    assert response.status_code == 200
    assert "whsec_" in response.content.decode()
    assert not Connection.objects.filter(name="Bad").exists()


def test_a_failing_endpoint_shows_the_apps_message(admin_client, receiver, webhook):
    receiver.faults.append(("gone", 410))
    response = admin_client.post(reverse("admin:integrations_connection_test", args=[webhook.pk]), follow=True)
    assert "410 Gone" in response.content.decode()
    webhook.refresh_from_db()
    assert webhook.status == Connection.Status.DISABLED


def test_settings_tab_turns_sync_on_and_history_shows_each_app(admin_client, receiver, webhook, group, people):
    groups.add_members(group, [people[0].pk])
    page = admin_client.get(reverse("admin:groups_customergroup_change", args=[group.pk]) + "?tab=settings")
    assert "Send this group to" in page.content.decode()
    admin_client.post(reverse("admin:groups_customergroup_sync_on", args=[group.pk]), {"connection": webhook.pk})
    sync = GroupSync.objects.get(group=group, connection=webhook)
    finish(sync.pk)
    groups.add_members(group, [people[1].pk])

    history = admin_client.get(reverse("admin:groups_customergroup_change", args=[group.pk]) + "?tab=history")
    text = history.content.decode()
    assert "<th>Receiver</th>" in text
    assert len(re.findall(r"delivery-pending", text)) == 1  # the new change has not been sent yet
    assert len(re.findall(r"delivery-synced", text)) == 1  # the first member, with the first sync

    finish(sync.pk)
    text = admin_client.get(reverse("admin:groups_customergroup_change", args=[group.pk]) + "?tab=history")
    assert len(re.findall(r"delivery-synced", text.content.decode())) == 2

    listing = admin_client.get(reverse("admin:groups_customergroup_changelist")).content.decode()
    assert "Receiver: In sync" in listing
    settings = admin_client.get(reverse("admin:groups_customergroup_change", args=[group.pk]) + "?tab=settings")
    assert "✔ In sync" in settings.content.decode()

    admin_client.post(reverse("admin:groups_customergroup_sync_change", args=[group.pk, sync.pk, "pause"]))
    sync.refresh_from_db()
    assert sync.state == GroupSync.State.PAUSED


def test_a_long_sync_shows_progress_and_an_estimate_at_the_apps_pace(admin_client, group, people):
    lightspeed = Connection.objects.create(kind="lightspeed", name="Till", settings={}, credentials={})
    groups.add_members(group, [p.pk for p in people])
    # Four of the ten members sent so far, and no change waiting after the backfill's position.
    GroupSync.objects.create(group=group, connection=lightspeed, state=GroupSync.State.BACKFILLING,
                             position=str(feed.head()), backfill_members=[p.pk for p in people],
                             backfill_sent=4)  # fmt: skip
    page = admin_client.get(reverse("admin:groups_customergroup_change", args=[group.pk]) + "?tab=settings")
    text = page.content.decode()
    pace = provider_class("lightspeed").limits.contacts_per_second
    assert "6 members still to send" in text
    assert f"about {max(1, round(6 / pace / 60))} min left" in text


def test_group_list_sync_column_shows_each_app_and_a_held_sync(admin_client, webhook, group, receiver, secret):
    from integrations import services

    second = Connection.objects.create(kind="webhook", name="Second receiver", consent="everyone",
                                       settings={"url": receiver.url}, credentials={"secret": secret})  # fmt: skip
    services.turn_on(group, webhook)
    services.turn_on(group, second)
    group.sync_enabled = False
    group.save(update_fields=["sync_enabled"])
    page = admin_client.get(reverse("admin:groups_customergroup_changelist")).content.decode()
    cell = re.search(r'<td class="field-sync">(.*?)</td>', page, re.S).group(1)
    assert f"{webhook.name}: Backfilling</span><br><span" in cell and "Second receiver: Backfilling" in cell
    assert cell.endswith(" (held)")
