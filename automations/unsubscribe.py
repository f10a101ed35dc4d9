"""Unsubscribe links: a signed token naming the customer and the channel; following it clears the consent."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

from customers.models import Customer

SALT = "automations.unsubscribe"
CONSENT_FIELDS = {"email": "email_consent", "sms": "sms_consent"}


def token(customer: Customer, channel: str) -> str:
    return signing.dumps({"c": customer.pk, "ch": channel}, salt=SALT, compress=True)


def link(customer: Customer, channel: str) -> str:
    return settings.SITE_URL + reverse("automations:unsubscribe", args=[token(customer, channel)])


def read(text: str) -> tuple[Customer, str] | None:
    """The customer and channel of a token, or None when it is forged, damaged or names no customer."""
    try:
        data = signing.loads(text, salt=SALT)
    except signing.BadSignature:
        return None
    customer = Customer.objects.filter(pk=data.get("c")).first()
    channel = data.get("ch")
    return (customer, channel) if customer is not None and channel in CONSENT_FIELDS else None


def clear_consent(customer: Customer, channel: str) -> None:
    """Saved through the model, so groups that read the consent re-evaluate the customer."""
    field = CONSENT_FIELDS[channel]
    if getattr(customer, field):
        setattr(customer, field, False)
        customer.save(update_fields=[field, "updated_at"])
