"""A webhook receiver on 127.0.0.1 that checks Standard Webhooks signatures with the `standardwebhooks` package.

It applies each delivery once (by `webhook-id`, as the standard asks of receivers), keeps the lists
it was told about, and can be scripted to fail, answer slowly, rate-limit or say 410 Gone.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class RemoteList:
    name: str
    members: set[int] = field(default_factory=set)
    deleted: bool = False


class WebhookReceiver:
    def __init__(self, secret: str) -> None:
        self.verifier = Webhook(secret)
        self.lists: dict[str, RemoteList] = {}
        self.applied: list[dict] = []  # each delivery applied, in order
        self.repeats: list[str] = []  # webhook-ids received again (and not applied again)
        self.rejected: list[str] = []  # deliveries whose signature did not verify
        self.requests = 0
        # Scripted answers for the next requests: ("fail", 500), ("slow", seconds), ("rate", retry_after),
        # ("gone", 410). When empty, deliveries succeed.
        self.faults: deque[tuple[str, float]] = deque()
        self.delay = 0.0  # seconds each delivery takes, to catch a sender mid-batch
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def members(self, list_id: str) -> set[int]:
        return set(self.lists[list_id].members)

    def member_changes(self) -> list[tuple[str, int]]:
        """(event, customer id) for every member in every applied delivery, in order."""
        return [(d["type"], m["customer_id"]) for d in self.applied for m in d["data"].get("members", [])]

    def _receive(self, headers: dict, body: bytes) -> tuple[int, dict]:
        time.sleep(self.delay)
        with self._lock:
            self.requests += 1
            fault = self.faults.popleft() if self.faults else None
        if fault and fault[0] == "fail":
            return int(fault[1]), {}
        if fault and fault[0] == "rate":
            return 429, {"Retry-After": str(fault[1])}
        if fault and fault[0] == "gone":
            return 410, {}
        try:
            payload = self.verifier.verify(body, headers)
        except WebhookVerificationError:
            with self._lock:
                self.rejected.append(headers.get("webhook-id", ""))
            return 401, {}
        with self._lock:
            msg_id = headers["webhook-id"]
            if msg_id in self._seen:
                self.repeats.append(msg_id)
            else:
                self._seen.add(msg_id)
                self._apply(payload)
        if fault and fault[0] == "slow":  # applied, but the answer comes after the sender gave up
            time.sleep(fault[1])
        return 204, {}

    def _apply(self, payload: dict) -> None:
        self.applied.append(payload)
        data, event = payload["data"], payload["type"]
        if event == "group.created":
            self.lists[data["list_id"]] = RemoteList(data["name"])
        elif event == "group.renamed":
            self.lists[data["list_id"]].name = data["name"]
        elif event == "group.deleted":
            self.lists[data["list_id"]].deleted = True
        elif event == "group.members_added":
            self.lists[data["list_id"]].members.update(m["customer_id"] for m in data["members"])
        elif event == "group.members_removed":
            self.lists[data["list_id"]].members.difference_update(m["customer_id"] for m in data["members"])

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status, extra = receiver._receive({k.lower(): v for k, v in self.headers.items()}, body)
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender timed out and closed the connection

            def log_message(self, *args):
                pass

        return Handler
