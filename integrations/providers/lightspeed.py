"""Lightspeed Retail (R-Series): a synced group is a customer tag.

The R-Series API V3 (developers.lightspeedhq.com/retail), JSON at
`https://api.lightspeedapp.com/API/V3/Account/{accountID}/...`:
- OAuth 2: an access token lives about an hour and is refreshed at
  `https://cloud.lightspeedapp.com/auth/oauth/token` with the refresh token, which Lightspeed
  rotates: the old one stops working once a new one is issued. So a refresh happens inside the
  service's `credentials_lock` (one worker at a time, starting from the freshest credentials) and
  the new tokens go to `on_credentials_changed` before they are used.
- A customer's tags are written whole (`PUT Customer/{id}.json` with `Tags.tag`), so each change
  reads the customer's tags first and adds or removes only ours.
- Rate limit: a leaky bucket per account; a read costs 1 unit, a write 10, and every answer says
  the level (`X-LS-API-Bucket-Level: 10/60`) and the drip rate in units a second
  (`X-LS-API-Drip-Rate`). Calls wait for room in the bucket; a 429 carries `Retry-After`.
- Lists page by cursor: `@attributes.next` is the next page's URL, at most 100 a page; a page
  holding one record gives it as an object rather than a list.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import replace

import httpx
from django import forms

from . import http
from .base import Contact, Limits, Provider, ProviderError, RemoteMember, cleaned, register

APP = "Lightspeed"
READ_COST, WRITE_COST = 1, 10  # bucket units per call
REFRESH_MARGIN = 120  # seconds before expiry at which an access token is refreshed
MAX_WAIT = 120.0  # the longest Retry-After waited out in place


def _message(response: httpx.Response) -> str:
    body = response.json()
    return body.get("message") or body.get("error_description") or body.get("error", "")


def _listed(value) -> list:
    """R-Series gives one item as an object (or a string) and several as a list; none may be absent."""
    if value in (None, ""):
        return []
    return value if isinstance(value, list) else [value]


def _tags(customer: dict) -> list[str]:
    return _listed((customer.get("Tags") or {}).get("tag"))


def _email(customer: dict) -> str:
    emails = ((customer.get("Contact") or {}).get("Emails") or {}).get("ContactEmail")
    return next((e.get("address", "") for e in _listed(emails)), "")


class Bucket:
    """The account's leaky bucket as the last answer described it, draining at the drip rate since."""

    def __init__(self):
        self.level = 0.0
        self.size = None
        self.drip = 1.0
        self.seen = time.monotonic()

    def wait_for(self, cost: int) -> None:
        if self.size is None:
            return
        level = max(0.0, self.level - self.drip * (time.monotonic() - self.seen))
        if level + cost > self.size:
            time.sleep((level + cost - self.size) / self.drip)

    def update(self, headers: httpx.Headers) -> None:
        level, _, size = headers.get("X-LS-API-Bucket-Level", "").partition("/")
        try:
            self.level, self.size = float(level), float(size)
            self.drip = float(headers.get("X-LS-API-Drip-Rate", self.drip)) or self.drip
        except ValueError:
            return
        self.seen = time.monotonic()


@register
class Lightspeed(Provider):
    kind = "lightspeed"
    label = "Lightspeed Retail (R-Series)"
    target = "tag"
    # Each tag change is one write; at the default drip of one unit a second that is a customer
    # every WRITE_COST seconds. The pace is updated from each answer's drip rate.
    limits = Limits(batch_size=25, max_concurrency=1, contacts_per_second=1 / WRITE_COST)
    settings_fields = {
        "account_id": forms.RegexField(regex=r"^\d+$", help_text="The Lightspeed account number."),
        "api_url": forms.URLField(initial="https://api.lightspeedapp.com/API/V3", assume_scheme="https"),
        "token_url": forms.URLField(initial="https://cloud.lightspeedapp.com/auth/oauth/token", assume_scheme="https"),
        "timeout": forms.FloatField(initial=30.0, min_value=0.1, max_value=300, help_text="Seconds for one call."),
    }
    credential_fields = {
        "client_id": forms.CharField(),
        "client_secret": forms.CharField(),
        "refresh_token": forms.CharField(help_text="From connecting the app to the Lightspeed account."),
        "access_token": forms.CharField(required=False),
        "expires_at": forms.FloatField(required=False, help_text="When the access token expires (Unix time)."),
    }
    identified_by = ("email",)

    def __post_init__(self):
        self.config = cleaned(self.settings_fields, self.settings, "Settings")
        cleaned(self.credential_fields, self.credentials, "Credentials")
        self.client = httpx.Client(
            base_url=self.config["api_url"].rstrip("/"),
            timeout=self.config["timeout"],
            headers={"Accept": "application/json"},
        )
        self.account = f"/Account/{self.config['account_id']}"
        self.bucket = Bucket()

    # --- the interface --------------------------------------------------------------------------

    def check(self) -> str:
        return self._call("GET", f"{self.account}.json").json()["Account"]["name"]

    def ensure_list(self, name: str, remote_id: str = "") -> str:
        # A tag exists as soon as a customer carries it: its text is its id.
        return remote_id or name

    def rename_list(self, remote_id: str, name: str) -> str:
        for customer in list(self._tagged(remote_id)):
            self._retag(customer, add=name, remove=remote_id)
        return name

    def delete_list(self, remote_id: str) -> None:
        for customer in list(self._tagged(remote_id)):
            self._retag(customer, remove=remote_id)

    def add_members(self, remote_id: str, contacts: Iterable[Contact]) -> dict[int, str]:
        found = self._customers(contacts)
        for customer in found.values():
            self._retag(customer, add=remote_id)
        return {customer_id: c["customerID"] for customer_id, c in found.items()}

    def remove_members(self, remote_id: str, contacts: Iterable[Contact]) -> None:
        for customer in self._customers(contacts).values():
            self._retag(customer, remove=remote_id)

    def list_members(self, remote_id: str) -> Iterator[RemoteMember]:
        for customer in self._tagged(remote_id):
            yield RemoteMember(customer["customerID"], _email(customer))

    # --- customers and their tags ---------------------------------------------------------------

    def _customers(self, contacts: Iterable[Contact]) -> dict[int, dict]:
        """Each contact's Lightspeed customer with its tags, by our customer id; unknown ones left out."""
        contacts = list(contacts)
        if len(contacts) > self.limits.batch_size:
            raise ValueError(f"At most {self.limits.batch_size} contacts per call to {APP}, got {len(contacts)}.")
        known = {c.remote_id: c.customer_id for c in contacts if c.remote_id}
        found = {}
        if known:
            ids = ",".join(known)
            for customer in self._pages(f"{self.account}/Customer.json", {"customerID": f"IN,[{ids}]"}):
                found[known[customer["customerID"]]] = customer
        for c in contacts:
            if not c.remote_id and c.email:
                match = next(self._pages(f"{self.account}/Customer.json", {"Contact.email": c.email}), None)
                if match:
                    found[c.customer_id] = match
        return found

    def _tagged(self, tag: str) -> Iterator[dict]:
        return self._pages(f"{self.account}/Customer.json", {"Tags.tag": tag})

    def _retag(self, customer: dict, add: str = "", remove: str = "") -> None:
        """Write the customer's tags with ours added or removed and every other tag kept."""
        tags = _tags(customer)
        new = [t for t in tags if t != remove]
        if add and add not in new:
            new.append(add)
        if new != tags:
            self._call("PUT", f"{self.account}/Customer/{customer['customerID']}.json", json={"Tags": {"tag": new}})

    def _pages(self, url: str, params: dict) -> Iterator[dict]:
        params = {**params, "load_relations": json.dumps(["Contact", "Tags"]), "limit": 100}
        page = self._call("GET", url, params=params).json()
        while True:
            yield from _listed(page.get("Customer"))
            next_url = page.get("@attributes", {}).get("next")
            if not next_url:
                return
            page = self._call("GET", next_url).json()

    # --- calls, the bucket and the tokens -------------------------------------------------------

    def _call(self, method: str, url: str, **kwargs) -> httpx.Response:
        cost = READ_COST if method == "GET" else WRITE_COST
        for attempt in range(2):
            self.bucket.wait_for(cost)
            headers = {"Authorization": f"Bearer {self._access_token(force=attempt > 0)}"}
            response = http.send(
                self.client, method, url, app=APP, message=_message, ok=(401,), max_wait=MAX_WAIT,
                headers=headers, on_response=self._observe, **kwargs,
            )  # fmt: skip
            if response.status_code != 401:
                return response
        raise http.error_for(response, APP, _message)

    def _observe(self, response: httpx.Response) -> None:
        self.bucket.update(response.headers)
        self.limits = replace(self.limits, contacts_per_second=self.bucket.drip / WRITE_COST)

    def _access_token(self, force: bool = False) -> str:
        if not force and self._fresh(self.credentials):
            return self.credentials["access_token"]
        lock = self.credentials_lock() if self.credentials_lock else nullcontext(dict(self.credentials))
        with lock as stored:
            # Another worker may have refreshed while this one waited: then its tokens are the ones
            # to use (after a 401, only if they differ from the refused one).
            refused = self.credentials.get("access_token") if force else None
            if self._fresh(stored) and stored["access_token"] != refused:
                self.credentials = dict(stored)
            else:
                self.credentials = self._refresh(stored)
        return self.credentials["access_token"]

    @staticmethod
    def _fresh(credentials: dict) -> bool:
        # Stored credentials are text once they have been through the encrypted field.
        expires_at = float(credentials.get("expires_at") or 0)
        return bool(credentials.get("access_token")) and expires_at - time.time() > REFRESH_MARGIN

    def _refresh(self, stored: dict) -> dict:
        form = {
            "grant_type": "refresh_token",
            "client_id": stored["client_id"],
            "client_secret": stored["client_secret"],
            "refresh_token": stored["refresh_token"],
        }
        try:
            response = http.send(self.client, "POST", self.config["token_url"], app=APP, message=_message, data=form)
        except ProviderError as error:
            if not error.permanent:
                raise
            message = f"{error.message}. Connect the Lightspeed account again."
            raise ProviderError(message, permanent=True, status=error.status) from None
        token = response.json()
        new = {
            **stored,
            "access_token": token["access_token"],
            # Lightspeed rotates the refresh token; keep the old one only if it sent none.
            "refresh_token": token.get("refresh_token") or stored["refresh_token"],
            "expires_at": time.time() + float(token.get("expires_in", 3600)),
        }
        if self.on_credentials_changed:
            self.on_credentials_changed(new)  # stored before the new token is ever used
        return new
