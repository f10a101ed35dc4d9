"""The demo's receiver: `make run` starts it and the demo connection delivers to it, checked and kept once."""

from __future__ import annotations

import socket
import threading

import pytest
from django.core.management import call_command

from groups import services as groups
from groups.models import CustomerGroup
from integrations import drain, receiver, services
from integrations.models import Connection, GroupSync, ReceivedWebhook

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_demo_connection_delivers_signed_changes_to_the_receiver_once(people):
    port = free_port()
    threading.Thread(target=receiver.serve, args=(port,), daemon=True).start()
    group = CustomerGroup.objects.create(name="Tasting panel", slug="tasting-panel", kind=CustomerGroup.Kind.MANUAL)
    groups.add_members(group, [p.pk for p in people[:3]])
    call_command("seed_demo_sync", port=port)
    sync = GroupSync.objects.get(group=group)
    assert sync.connection.settings["url"] == f"http://127.0.0.1:{port}/hooks"
    while drain.drain(sync.pk) is drain.Outcome.MORE:
        pass
    events = list(ReceivedWebhook.objects.order_by("id").values_list("event", flat=True))
    assert events == ["group.created", "group.members_added"]
    added = ReceivedWebhook.objects.get(event="group.members_added").payload["data"]["members"]
    assert sorted(m["customer_id"] for m in added) == [p.pk for p in people[:3]]

    # The same delivery again is kept once, counted as a repeat; a wrongly signed one is refused.
    message = ReceivedWebhook.objects.get(event="group.members_added")
    sync.refresh_from_db()
    provider = services.provider_for(sync.connection)
    provider.delivery_key = "again"
    provider.rename_list(sync.remote_id, "x")
    provider.rename_list(sync.remote_id, "x")
    assert ReceivedWebhook.objects.get(event="group.renamed").repeats == 1
    assert message.repeats == 0
    Connection.objects.filter(pk=sync.connection_id).update(credentials={"secret": "whsec_" + "QUFB" * 8})
    assert receiver.receive(port, {"webhook-id": "m", "webhook-timestamp": "1", "webhook-signature": "v1,x"},
                            b"{}") == 401  # fmt: skip
