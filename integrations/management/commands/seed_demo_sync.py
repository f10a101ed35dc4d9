"""The demo's sync: a webhook connection to the demo receiver, and one example group synced to it."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from groups.models import CustomerGroup
from integrations import services
from integrations.models import Connection
from integrations.providers.webhook import new_secret

NAME = "Demo webhook receiver"
GROUP = "tasting-panel"


class Command(BaseCommand):
    help = "Connect the demo webhook receiver on this port and sync an example group to it (once)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8001)

    def handle(self, *args, port: int, **options) -> None:
        url = f"http://127.0.0.1:{port}/hooks"
        connection = Connection.objects.filter(name=NAME, kind="webhook").first()
        if connection is not None:
            if connection.settings.get("url") != url:  # the receiver moved to another port
                connection.settings = {**connection.settings, "url": url}
                connection.save(update_fields=["settings"])
            return
        connection = Connection.objects.create(kind="webhook", name=NAME, settings={"url": url, "timeout": 10.0},
                                               credentials={"secret": new_secret()})  # fmt: skip
        group = CustomerGroup.objects.filter(slug=GROUP).first()
        if group is not None:
            services.turn_on(group, connection)
        self.stdout.write(f"{NAME} connected at {url}" + (f"; “{group}” syncs to it." if group else "."))
