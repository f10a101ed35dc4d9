"""Twilio's Messages API: send one SMS (POST /2010-04-01/Accounts/{sid}/Messages.json), with httpx."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from ..actions.base import ActionError

UNSUBSCRIBED = 21610  # "Attempt to send to unsubscribed recipient": the person texted STOP
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass(frozen=True)
class TwilioAccount:
    account_sid: str
    auth_token: str
    sender: str  # a Twilio phone number in E.164, or a Messaging Service SID (MG...)
    base_url: str = "https://api.twilio.com"


def send_sms(account: TwilioAccount, to: str, body: str, *, client: httpx.Client | None = None) -> str:
    """Send one message; returns Twilio's message SID."""
    form = {"To": to, "Body": body}
    form["MessagingServiceSid" if account.sender.startswith("MG") else "From"] = account.sender
    url = f"{account.base_url.rstrip('/')}/2010-04-01/Accounts/{account.account_sid}/Messages.json"
    try:
        if client is None:
            with httpx.Client(timeout=TIMEOUT) as own:
                response = own.post(url, data=form, auth=(account.account_sid, account.auth_token))
        else:
            response = client.post(url, data=form, auth=(account.account_sid, account.auth_token))
    except httpx.HTTPError as exc:
        raise ActionError(f"Could not reach Twilio: {exc}", permanent=False) from None
    if response.status_code in (200, 201):
        return response.json()["sid"]
    raise _error(response)


def _error(response: httpx.Response) -> ActionError:
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    code = payload.get("code")
    message = f"Twilio answered {response.status_code}" + (f" (error {code}): {payload.get('message')}" if code else "")
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("Retry-After", "")
        return ActionError(message, permanent=False, retry_after=float(retry_after) if retry_after.isdigit() else None)
    return ActionError(message, permanent=True, code="unsubscribed" if code == UNSUBSCRIBED else "")
