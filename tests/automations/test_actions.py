"""The manager notification, the signed webhook, and retries when a server is down."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from automations import firings
from automations.models import Trigger
from groups import services
from groups.models import CustomerGroup

from .conftest import run_automations

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def vip():
    return CustomerGroup.objects.create(name="VIP", slug="vip", kind=CustomerGroup.Kind.MANUAL)


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 that verifies each delivery's signature and keeps what it accepted."""
    received, status = [], {"code": 204}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            Webhook(SECRET).verify(body, dict(self.headers))  # raises on a bad signature
            if status["code"] < 300:
                received.append((self.headers["webhook-id"], json.loads(body)))
            self.send_response(status["code"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks", received, status
    server.shutdown()
    server.server_close()


def test_a_manager_is_notified_by_email(vip, ann, smtp):
    Trigger.objects.create(name="Tell Maria", group=vip, on=Trigger.On.EXIT, action="notify",
                           settings={"to": "maria@example.com", "subject": "{{ customer.first_name }} lapsed",
                                     "body": "{{ customer.email }} left {{ group.name }}."})  # fmt: skip
    ann.email_consent = False  # a note to staff needs no consent of the customer
    ann.save()
    services.add_members(vip, [ann.pk])
    services.remove_members(vip, [ann.pk])
    run_automations()
    [message] = smtp.to("maria@example.com")
    assert message["Subject"] == "Ann lapsed" and "ann@example.com left VIP." in message.get_content()


def test_a_signed_webhook_is_delivered_and_retried_with_the_same_id(vip, ann, receiver):
    url, received, status = receiver
    trigger = Trigger.objects.create(name="Hook", group=vip, action="webhook", settings={"url": url, "secret": SECRET})
    status["code"] = 503
    services.add_members(vip, [ann.pk])
    run_automations()
    firing = trigger.firings.get()
    assert firing.status == "pending" and firing.attempts == 1
    assert firing.detail == "Attempt 1 failed, retrying: The webhook receiver answered 503"

    status["code"] = 204
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        firings.execute_due()
    [(webhook_id, payload)] = received
    assert webhook_id == trigger.firings.get().idempotency_key and trigger.firings.get().status == "sent"
    assert payload["type"] == "group.entered"
    assert payload["data"]["customer"]["email"] == "ann@example.com" and payload["data"]["group"]["slug"] == "vip"


def test_a_refused_webhook_fails_and_is_shown_on_the_trigger(vip, ann, receiver):
    url, received, status = receiver
    status["code"] = 410
    trigger = Trigger.objects.create(name="Hook", group=vip, action="webhook", settings={"url": url, "secret": SECRET})
    services.add_members(vip, [ann.pk])
    run_automations()
    trigger.refresh_from_db()
    assert trigger.firings.get().status == "failed" and trigger.last_error == "The webhook receiver answered 410"
    assert trigger.failure_count == 1


def test_an_email_is_retried_when_the_mail_server_is_down(vip, ann, settings):
    from tests.fakes.smtp import SmtpServer, free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens there yet
    trigger = Trigger.objects.create(name="Hi", group=vip, action="email", settings={"subject": "Hi", "body": "Hi"})
    services.add_members(vip, [ann.pk])
    run_automations()
    firing = trigger.firings.get()
    assert firing.status == "pending" and firing.detail.startswith("Attempt 1 failed, retrying: Could not reach")
    with SmtpServer() as server:
        settings.EMAIL_PORT = server.port
        firings.execute_due()  # not yet due: the retry waits
        assert server.inbox.messages == []
        with time_machine.travel(timezone.now() + timedelta(minutes=2)):
            firings.execute_due()
        assert len(server.inbox.to("ann@example.com")) == 1
