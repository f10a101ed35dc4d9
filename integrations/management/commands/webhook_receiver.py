"""Run the demo webhook receiver on 127.0.0.1 (make run starts it)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from integrations import receiver


class Command(BaseCommand):
    help = "Receive signed webhook deliveries on 127.0.0.1 and keep them (see Received webhooks in the back office)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8001)

    def handle(self, *args, port: int, **options) -> None:
        self.stdout.write(f"Demo webhook receiver on http://127.0.0.1:{port}/hooks")
        receiver.serve(port)
