"""Mailchimp: a synced group is a tag on one audience (a tag is a static segment).

Mailchimp Marketing API 3.0 (mailchimp.com/developer/marketing/api), HTTP Basic with the API key,
at `https://<dc>.api.mailchimp.com/3.0` where `<dc>` ends the key (`...-us6`):
- a customer is upserted with `PUT /lists/{audience}/members/{subscriber_hash}` (the MD5 of the
  lowercase email) and `status_if_new`, so an existing member's subscription is never changed;
- the tag's members change with `POST /lists/{audience}/segments/{id}` and `members_to_add` /
  `members_to_remove`, at most 500 emails per array;
- renaming sends only the name: `static_segment: []` in a PATCH would empty the tag;
- at most 10 connections at once per API key (more answer 429);
- a tag's members list leaves out transactional, unsubscribed and cleaned contacts unless asked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
from django import forms

from . import http
from .base import Contact, Limits, Provider, ProviderError, RemoteMember, cleaned, register

APP = "Mailchimp"
PAGE_SIZE = 1000  # the most Mailchimp returns per page


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()  # Mailchimp's id for a member, not a secret


def _message(response: httpx.Response) -> str:
    problem = response.json()
    return f"{problem.get('title', '')}: {problem.get('detail', '')}".strip(": ")


def _datacenter_url(api_key: str) -> str:
    _, _, dc = api_key.rpartition("-")
    return f"https://{dc}.api.mailchimp.com/3.0"


def _api_key(value: str) -> None:
    if "-" not in value:
        raise forms.ValidationError("A Mailchimp API key ends with its data center, like -us6.")


@register
class Mailchimp(Provider):
    kind = "mailchimp"
    label = "Mailchimp"
    target = "tag"
    limits = Limits(batch_size=500, max_concurrency=10)
    settings_fields = {
        "audience_id": forms.CharField(help_text="The audience (list) the tags are made in: Audience → Settings."),
        "new_member_status": forms.ChoiceField(
            choices=[("transactional", "transactional"), ("subscribed", "subscribed"), ("pending", "pending")],
            initial="transactional",
            help_text="Status given to a customer who is not in the audience yet; existing members keep theirs. "
            "Choose subscribed only when the connection sends customers with email consent.",
        ),
        "base_url": forms.URLField(
            required=False, assume_scheme="https", help_text="Leave empty: it follows from the API key."
        ),
        "timeout": forms.FloatField(initial=30.0, min_value=0.1, max_value=300, help_text="Seconds for one call."),
    }
    credential_fields = {"api_key": forms.CharField(validators=[_api_key], help_text="Profile → Extras → API keys.")}
    identified_by = ("email",)

    def __post_init__(self):
        self.config = cleaned(self.settings_fields, self.settings, "Settings")
        api_key = cleaned(self.credential_fields, self.credentials, "Credentials")["api_key"]
        self.audience = self.config["audience_id"]
        self.client = httpx.Client(
            base_url=(self.config["base_url"] or _datacenter_url(api_key)).rstrip("/"),
            auth=("anystring", api_key),
            timeout=self.config["timeout"],
            limits=httpx.Limits(max_connections=self.limits.max_concurrency),
        )

    def _call(self, method: str, url: str, **kwargs) -> httpx.Response:
        return http.send(self.client, method, url, app=APP, message=_message, **kwargs)

    def check(self) -> str:
        account = self._call("GET", "/").json()["account_name"]
        audience = self._call("GET", f"/lists/{self.audience}").json()["name"]
        return f"{account}, audience {audience}"

    def ensure_list(self, name: str, remote_id: str = "") -> str:
        segments = f"/lists/{self.audience}/segments"
        if remote_id and self._call("GET", f"{segments}/{remote_id}", ok=(404,)).status_code == 200:
            return remote_id
        # Tag names are unique in an audience: one of that name already is the group's tag.
        for segment in self._pages(
            segments, "segments", {"type": "static", "fields": "segments.id,segments.name,total_items"}
        ):
            if segment["name"] == name:
                return str(segment["id"])
        return str(self._call("POST", segments, json={"name": name, "static_segment": []}).json()["id"])

    def rename_list(self, remote_id: str, name: str) -> None:
        self._call("PATCH", f"/lists/{self.audience}/segments/{remote_id}", json={"name": name})

    def delete_list(self, remote_id: str) -> None:
        self._call("DELETE", f"/lists/{self.audience}/segments/{remote_id}", ok=(404,))

    def add_members(self, remote_id: str, contacts: Iterable[Contact]) -> dict[int, str]:
        contacts = [c for c in self._batch(contacts) if c.email]
        with ThreadPoolExecutor(max_workers=self.limits.max_concurrency) as pool:
            upserted = [c for c, ok in zip(contacts, pool.map(self._upsert, contacts), strict=True) if ok]
        refused = self._change_tag(remote_id, "members_to_add", [c.email for c in upserted])
        return {c.customer_id: subscriber_hash(c.email) for c in upserted if c.email.lower() not in refused}

    def remove_members(self, remote_id: str, contacts: Iterable[Contact]) -> None:
        emails = [email for c in self._batch(contacts) if (email := self._email_of(c))]
        self._change_tag(remote_id, "members_to_remove", emails)

    def list_members(self, remote_id: str) -> Iterator[RemoteMember]:
        params = {
            "fields": "members.id,members.email_address,total_items",
            **dict.fromkeys(("include_transactional", "include_unsubscribed", "include_cleaned"), "true"),
        }
        for member in self._pages(f"/lists/{self.audience}/segments/{remote_id}/members", "members", params):
            yield RemoteMember(member["id"], member["email_address"])

    def _batch(self, contacts: Iterable[Contact]) -> list[Contact]:
        contacts = list(contacts)
        if len(contacts) > self.limits.batch_size:
            raise ValueError(f"At most {self.limits.batch_size} contacts per call to {APP}, got {len(contacts)}.")
        return contacts

    def _upsert(self, contact: Contact) -> bool:
        """Create or update the member; False when Mailchimp refuses this one (a fake-looking or
        permanently deleted email), which leaves the rest of the batch going."""
        body = {
            "email_address": contact.email,
            "status_if_new": self.config["new_member_status"],
            "merge_fields": {k: v for k, v in (("FNAME", contact.first_name), ("LNAME", contact.last_name)) if v},
        }
        url = f"/lists/{self.audience}/members/{subscriber_hash(contact.email)}"
        try:
            self._call("PUT", url, json=body)
        except ProviderError as error:
            if error.status == 400:
                return False
            raise
        return True

    def _email_of(self, contact: Contact) -> str:
        """The email the member was tagged under: the remembered hash wins over a changed email."""
        if not contact.remote_id or contact.remote_id == subscriber_hash(contact.email):
            return contact.email
        response = self._call("GET", f"/lists/{self.audience}/members/{contact.remote_id}", ok=(404,))
        return response.json()["email_address"] if response.status_code == 200 else ""

    def _change_tag(self, remote_id: str, key: str, emails: list[str]) -> set[str]:
        """Add or remove the emails; those Mailchimp reports as errors, lowercase."""
        if not emails:
            return set()
        result = self._call("POST", f"/lists/{self.audience}/segments/{remote_id}", json={key: emails}).json()
        return {e.lower() for error in result.get("errors", []) for e in error.get("email_addresses", [])}

    def _pages(self, url: str, key: str, params: dict) -> Iterator[dict]:
        """Every item of an offset-paginated listing."""
        offset = 0
        while True:
            page = self._call("GET", url, params={**params, "count": PAGE_SIZE, "offset": offset}).json()
            yield from page[key]
            offset += len(page[key])
            if not page[key] or offset >= page["total_items"]:
                return
