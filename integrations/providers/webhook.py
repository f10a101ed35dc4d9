"""Outbound webhook: each group change is POSTed to a URL, signed as Standard Webhooks prescribe.

Events: group.created, group.renamed, group.deleted, group.members_added, group.members_removed.
The body is `{"type", "timestamp", "data"}`; the `webhook-id` header is the same when a batch is
sent again, so receivers drop the repeat. A 410 answer means the endpoint is gone for good.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import httpx
from django import forms
from standardwebhooks.webhooks import Webhook

from .base import Contact, Limits, Provider, ProviderError, register

DEFAULT_TIMEOUT_SECONDS = 10.0


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _check_secret(value: str) -> None:
    try:
        Webhook(value)
    except Exception:
        raise forms.ValidationError("A signing secret is whsec_ followed by base64, e.g. " + new_secret()) from None


@register
class WebhookProvider(Provider):
    kind = "webhook"
    label = "Webhook (Standard Webhooks)"
    target = "list"
    limits = Limits(batch_size=500)
    settings_fields = {
        "url": forms.URLField(label="Endpoint URL", assume_scheme="https", help_text="Where each event is POSTed."),
        "timeout": forms.FloatField(label="Timeout (seconds)", min_value=0.1, max_value=60, initial=10, required=False,
                                    help_text="A delivery not answered by then is sent again later."),
    }  # fmt: skip
    credential_fields = {
        "secret": forms.CharField(
            label="Signing secret",
            validators=[_check_secret],
            help_text="whsec_…, shared with the receiver, which checks each delivery's signature.",
        )
    }

    def check(self) -> str:
        # There is nothing to read at a webhook endpoint; a signed ping shows it answers.
        self._send("webhook.test", {})
        return f"Endpoint {self.settings['url']} accepted a signed test delivery."

    def ensure_list(self, name: str, remote_id: str = "") -> str:
        if remote_id:
            return remote_id
        # Derived from the delivery key, so a repeated creation announces the same list.
        seed = self.delivery_key or uuid.uuid4().hex
        list_id = "lst_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
        self._send("group.created", {"list_id": list_id, "name": name})
        return list_id

    def rename_list(self, remote_id: str, name: str) -> None:
        self._send("group.renamed", {"list_id": remote_id, "name": name})

    def delete_list(self, remote_id: str) -> None:
        self._send("group.deleted", {"list_id": remote_id})

    def add_members(self, remote_id: str, contacts: Iterable[Contact]) -> dict[int, str]:
        contacts = list(contacts)
        members = [_member(c) for c in contacts]
        self._send("group.members_added", {"list_id": remote_id, "members": members})
        return {c.customer_id: "" for c in contacts}  # a receiver has no ids of its own to give back

    def remove_members(self, remote_id: str, contacts: Iterable[Contact]) -> None:
        members = [_member(c) for c in contacts]
        self._send("group.members_removed", {"list_id": remote_id, "members": members})

    def _send(self, event: str, data: dict) -> None:
        now = datetime.now(UTC)
        body = json.dumps({"type": event, "timestamp": now.isoformat(), "data": data}, separators=(",", ":"))
        key = f"{self.delivery_key}:{event}" if self.delivery_key else uuid.uuid4().hex
        msg_id = "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(self.credentials["secret"]).sign(msg_id, now, body),
        }
        try:
            response = httpx.post(
                self.settings["url"],
                content=body,
                headers=headers,
                timeout=self.settings.get("timeout") or DEFAULT_TIMEOUT_SECONDS,
            )
        except httpx.HTTPError as exc:
            raise ProviderError(f"Could not deliver to {self.settings['url']}: {exc}", permanent=False) from exc
        if response.is_success:
            return
        status = response.status_code
        text = f"The endpoint answered {status}: {response.text[:200]}".rstrip(": ")
        if status == 410:
            raise ProviderError("The endpoint answered 410 Gone: it asked not to be called again.", permanent=True,
                                status=status)  # fmt: skip
        if status == 429 or status >= 500 or status == 408:
            raise ProviderError(text, permanent=False, retry_after=_retry_after(response), status=status)
        raise ProviderError(text, permanent=True, status=status)


def _member(contact: Contact) -> dict:
    return {
        "customer_id": contact.customer_id,
        "email": contact.email,
        "phone": contact.phone,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "external_id": contact.external_id,
    }


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None
