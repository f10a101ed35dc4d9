"""A notification email to a manager about the customer (no consent needed: it goes to staff)."""

from __future__ import annotations

from django import forms

from .base import Action, Delivery, register, render, template_field
from .email import send_email


@register
class NotifyAction(Action):
    kind = "notify"
    label = "Notification email to a manager"
    required = ("to", "subject", "body")
    template_settings = ("subject", "body")
    settings_fields = {
        "to": forms.EmailField(label="Send to", help_text="The manager's email address."),
        "subject": template_field("Subject"),
        "body": template_field("Body", lines=6),
    }

    def perform(self, delivery: Delivery) -> str:
        subject = render(self.settings["subject"], delivery.context, what="subject")
        body = render(self.settings["body"], delivery.context, what="body")
        send_email(self.settings["to"], subject, body, key=delivery.key)
        return f"Notification “{subject}” to {self.settings['to']}"
