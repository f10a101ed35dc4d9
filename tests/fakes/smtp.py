"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it accepted."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from email.message import Message

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """aiosmtpd handler: accepted messages, parsed, in arrival order."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()
        self.hold: threading.Event | None = None  # when set up, DATA waits for it (see hold_message)
        self.hold_at = 0
        self.seen = 0
        self.holding = threading.Event()
        self.port = 0

    async def handle_DATA(self, server, session, envelope):
        self.seen += 1
        if self.hold is not None and self.seen == self.hold_at:
            import asyncio

            self.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self.hold.wait)
            self.hold = None
            # A server takes responsibility for a message only when it can say so: the client that
            # sent this one is gone, so it never learnt the message was accepted.
            if server.transport is None or server.transport.is_closing():
                return "421 Client gone"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def hold_message(self, number: int) -> None:
        """Make the n-th message from now wait, unanswered, until `release` (for crash tests)."""
        self.holding.clear()
        self.hold_at = self.seen + number
        self.hold = threading.Event()

    def release(self) -> None:
        if self.hold is not None:
            self.hold.set()

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if address in m["To"]]


class SmtpServer:
    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = self.inbox.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.inbox.release()
        self.controller.stop()
