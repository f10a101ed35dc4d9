"""The API shows each group's syncs, per-app delivery of each history change, and connections without secrets."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from groups import services as groups
from integrations import drain, services

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(staff_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(staff_user)
    return client


def test_group_history_and_connections_show_sync_state(api, receiver, webhook, group, people, secret):
    groups.add_members(group, [people[0].pk])
    sync = services.turn_on(group, webhook)
    while drain.drain(sync.pk) is drain.Outcome.MORE:
        pass
    groups.add_members(group, [people[1].pk])

    body = api.get(f"/api/groups/{group.pk}/").json()
    assert [(s["connection"], s["state"], s["pending_changes"]) for s in body["syncs"]] == [("Receiver", "in_sync", 1)]

    history = api.get(f"/api/groups/{group.pk}/history/").json()["results"]
    assert [h["sync"]["Receiver"]["status"] for h in history] == ["pending", "synced"]  # newest first

    drain.drain(sync.pk)
    history = api.get(f"/api/groups/{group.pk}/history/").json()["results"]
    assert all(h["sync"]["Receiver"]["status"] == "synced" and h["sync"]["Receiver"]["synced_at"] for h in history)

    connections = api.get("/api/connections/")
    assert connections.json()["results"][0]["status"] == "ok"
    assert secret not in connections.content.decode() and "credentials" not in connections.content.decode()
