"""Email to the customer from a subject and body template, through Django's email backend."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import EmailMessage

from customers.models import Customer

from .base import Action, ActionError, Delivery, register, render, template_field


def send_email(to: str, subject: str, body: str, *, key: str, unsubscribe_url: str = "", connection=None) -> None:
    """One message; its Message-ID is the delivery's idempotency key, so a receiving system can tell
    a message resent after a crash from a new one."""
    headers = {"Message-ID": f"<{key}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>"}
    if unsubscribe_url:
        headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [to], headers=headers, connection=connection)
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        raise ActionError(f"The mail server refused {to}: {_reply(exc)}", permanent=True) from None
    except smtplib.SMTPResponseException as exc:
        # 5xx replies are final; 4xx are "try again later".
        raise ActionError(f"The mail server answered {exc.smtp_code}: {_text(exc.smtp_error)}",
                          permanent=exc.smtp_code >= 500) from None  # fmt: skip
    except (smtplib.SMTPException, OSError) as exc:
        raise ActionError(f"Could not reach the mail server: {exc}", permanent=False) from None


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _reply(exc: smtplib.SMTPRecipientsRefused) -> str:
    return "; ".join(f"{code} {_text(text)}" for code, text in exc.recipients.values())


@register
class EmailAction(Action):
    kind = "email"
    label = "Email the customer"
    channel = "email"
    required = ("subject", "body")
    template_settings = ("subject", "body")
    settings_fields = {"subject": template_field("Subject"), "body": template_field("Body", lines=8)}

    def skip_reason(self, customer: Customer) -> str:
        if not customer.email:
            return "No email address"
        if not customer.email_consent:
            return "No email consent"
        return ""

    @staticmethod
    def reachable(customers):
        return customers.filter(email_consent=True).exclude(email="")

    def perform(self, delivery: Delivery, connection=None) -> str:
        subject = render(self.settings["subject"], delivery.context, what="subject")
        body = render(self.settings["body"], delivery.context, what="body")
        url = delivery.context.get("unsubscribe_url", "")
        if url:
            body += f"\n\n--\nUnsubscribe: {url}"
        send_email(delivery.customer.email, subject, body, key=delivery.key, unsubscribe_url=url,
                   connection=connection)  # fmt: skip
        return f"Email “{subject}” to {delivery.customer.email}"
