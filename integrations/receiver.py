"""The demo's webhook receiver: takes signed deliveries on 127.0.0.1 and keeps them for the back office.

It checks each delivery's Standard Webhooks signature against the webhook connections that point
at it, keeps each delivery once by its webhook-id (counting repeats), and answers 401 to a bad one.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import F
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from .models import Connection, ReceivedWebhook


def secrets_for(port: int) -> list[str]:
    """The signing secrets of the webhook connections that deliver to this port on this machine."""
    found = []
    for connection in Connection.objects.filter(kind="webhook"):
        url = str(connection.settings.get("url", ""))
        if url.startswith((f"http://127.0.0.1:{port}/", f"http://localhost:{port}/")):
            credentials = connection.credentials
            if isinstance(credentials, dict) and credentials.get("secret"):
                found.append(credentials["secret"])
    return found


def receive(port: int, headers: dict[str, str], body: bytes) -> int:
    """Check and keep one delivery; the HTTP status to answer."""
    for secret in secrets_for(port):
        try:
            payload = Webhook(secret).verify(body, headers)
            break
        except WebhookVerificationError:
            continue
    else:
        return 401
    msg_id = headers.get("webhook-id", "")
    try:
        with transaction.atomic():
            ReceivedWebhook.objects.create(msg_id=msg_id, event=str(payload.get("type", "")), payload=payload,
                                           received_at=timezone.now())  # fmt: skip
    except IntegrityError:
        ReceivedWebhook.objects.filter(msg_id=msg_id).update(repeats=F("repeats") + 1)
    return 204


def serve(port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            close_old_connections()
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            try:
                status = receive(port, {k.lower(): v for k, v in self.headers.items()}, body)
            except (ValueError, json.JSONDecodeError):
                status = 400
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format, *args):  # noqa: A002 - the standard library's name
            pass

    with ThreadingHTTPServer(("127.0.0.1", port), Handler) as server:
        server.serve_forever()
