"""SMS to the customer from a body template, through Twilio (see providers/twilio.py)."""

from __future__ import annotations

import re

from django.conf import settings

from customers.models import Customer

from ..providers.twilio import TwilioAccount, send_sms
from .base import Action, ActionError, Delivery, register, render, template_field

E164 = r"^\+[1-9][0-9]{7,14}$"  # the same pattern in Python and in PostgreSQL


def twilio_account() -> TwilioAccount:
    if not (settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN and settings.TWILIO_FROM):
        raise ActionError(
            "SMS is not set up: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM.", permanent=True
        )
    return TwilioAccount(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, settings.TWILIO_FROM,
                         settings.TWILIO_API_URL)  # fmt: skip


@register
class SmsAction(Action):
    kind = "sms"
    label = "Text the customer (SMS)"
    channel = "sms"
    required = ("body",)
    template_settings = ("body",)
    settings_fields = {"body": template_field("Message", lines=3)}

    def skip_reason(self, customer: Customer) -> str:
        if not customer.sms_consent:
            return "No SMS consent"
        if not re.match(E164, customer.phone):
            return f"No valid phone number (“{customer.phone}” is not in +15558675309 form)"
        return ""

    @staticmethod
    def reachable(customers):
        return customers.filter(sms_consent=True, phone__regex=E164)

    def perform(self, delivery: Delivery, connection=None) -> str:
        body = render(self.settings["body"], delivery.context, what="body")
        to = delivery.customer.phone
        sid = send_sms(twilio_account(), to, body)
        return f"SMS {sid} to {to}"
