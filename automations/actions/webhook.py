"""A signed webhook (Standard Webhooks): the customer, the group and what happened, as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
from django import forms
from standardwebhooks.webhooks import Webhook

from .base import Action, ActionError, Delivery, register

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@register
class WebhookAction(Action):
    kind = "webhook"
    label = "Signed webhook"
    required = ("url", "secret")
    settings_fields = {
        "url": forms.URLField(label="Endpoint", assume_scheme="https", max_length=2000,
                              help_text="The receiver's address; it gets a signed POST for each customer."),
        "secret": forms.CharField(label="Signing secret", widget=forms.PasswordInput(render_value=False),
                                  help_text="The receiver's Standard Webhooks secret: whsec_ followed by base64."),
    }  # fmt: skip

    def settings_errors(self) -> dict[str, str]:
        errors = super().settings_errors()
        url = str(self.settings.get("url", ""))
        if url and not url.startswith(("http://", "https://")):
            errors["url"] = "An http:// or https:// address."
        if self.settings.get("secret"):
            try:
                Webhook(self.settings["secret"])
            except Exception:  # the library raises plain errors for a bad base64 secret
                errors["secret"] = "A Standard Webhooks secret: whsec_ followed by base64."
        return errors

    def perform(self, delivery: Delivery) -> str:
        customer, group = delivery.customer, delivery.context["group"]
        payload = json.dumps({
            "type": delivery.context["event_type"],
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {
                "customer": {"id": customer.pk, "external_id": customer.external_id, "email": customer.email,
                             "first_name": customer.first_name, "last_name": customer.last_name},
                "group": {"id": group.pk, "name": group.name, "slug": group.slug},
            },
        })  # fmt: skip
        now = datetime.now(UTC)
        signature = Webhook(self.settings["secret"]).sign(delivery.key, now, payload)
        headers = {
            "content-type": "application/json",
            # The receiver drops a message it has seen by its id: a retry after a crash is not a new event.
            "webhook-id": delivery.key,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }
        try:
            response = httpx.post(self.settings["url"], content=payload, headers=headers, timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise ActionError(f"Could not reach {self.settings['url']}: {exc}", permanent=False) from None
        if response.is_success:
            return f"Webhook to {self.settings['url']}: {response.status_code}"
        transient = response.status_code in (408, 429) or response.status_code >= 500
        raise ActionError(f"The webhook receiver answered {response.status_code}", permanent=not transient)
