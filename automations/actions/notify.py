"""A notification email to a manager about the customer (no consent needed: it goes to staff)."""

from __future__ import annotations

from .base import Action, Delivery, register, render
from .email import send_email


@register
class NotifyAction(Action):
    kind = "notify"
    label = "Notification email to a manager"
    required = ("to", "subject", "body")
    template_settings = ("subject", "body")

    def perform(self, delivery: Delivery) -> str:
        subject = render(self.settings["subject"], delivery.context, what="subject")
        body = render(self.settings["body"], delivery.context, what="body")
        send_email(self.settings["to"], subject, body, key=delivery.key)
        return f"Notification “{subject}” to {self.settings['to']}"
