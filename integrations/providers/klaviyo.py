"""Klaviyo: a synced group is a Klaviyo list.

Klaviyo's JSON:API (developers.klaviyo.com/en/reference, every call with a `revision` header):
- profiles are created or updated in bulk by an import job (`POST /api/profile-bulk-import-jobs`,
  polled at `/api/profile-bulk-import-jobs/{id}` until complete, its profiles read from
  `.../{id}/profiles`), so each customer's profile id comes back and removals need no lookup;
- then they join the list with `POST /api/lists/{id}/relationships/profiles` and leave it with
  `DELETE` on the same path, at most 1,000 profiles per call;
- list creation is capped per day (150), so a group's list is found by its id and created once;
- each endpoint allows 10 calls a second in bursts and 150 a minute (Klaviyo's "M" tier), counted
  per endpoint and account; a 429 carries `Retry-After`. Calls are paced per endpoint to stay under
  both: 5 at once, then 2.4 a second, is at most 7.4 in any second and 149 in any minute.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import httpx
from django import forms
from django.core.validators import RegexValidator

from . import http
from .base import Contact, Limits, Provider, ProviderError, RemoteMember, cleaned, register

APP = "Klaviyo"
PAGE_SIZE = 100  # the largest page Klaviyo's profile listings serve


def _message(response: httpx.Response) -> str:
    errors = response.json()["errors"]
    return "; ".join(e.get("detail") or e.get("title", "") for e in errors)


@register
class Klaviyo(Provider):
    kind = "klaviyo"
    label = "Klaviyo"
    target = "list"
    limits = Limits(batch_size=1000, max_concurrency=1, requests_per_second=2.4, burst=5,
                    contacts_per_second=2.4 * PAGE_SIZE)  # fmt: skip
    settings_fields = {
        "revision": forms.RegexField(
            regex=r"^\d{4}-\d{2}-\d{2}(\.[a-z0-9]+)?$",
            initial="2026-10-15",
            help_text="The API revision every call asks for (YYYY-MM-DD).",
        ),
        "base_url": forms.URLField(
            initial="https://a.klaviyo.com", assume_scheme="https", help_text="Change only for a test server."
        ),
        "timeout": forms.FloatField(initial=30.0, min_value=0.1, max_value=300, help_text="Seconds for one call."),
        "import_timeout": forms.FloatField(
            initial=300.0, min_value=0.1, max_value=3600, help_text="Seconds to wait for a profile import job."
        ),
    }
    credential_fields = {
        "api_key": forms.CharField(
            validators=[RegexValidator(r"^pk_", "Use a private API key, which starts with pk_.")],
            help_text="A private API key with the lists and profiles scopes.",
        ),
    }
    identified_by = ("email", "phone", "external_id")

    def __post_init__(self):
        self.config = cleaned(self.settings_fields, self.settings, "Settings")
        api_key = cleaned(self.credential_fields, self.credentials, "Credentials")["api_key"]
        self.client = httpx.Client(
            base_url=self.config["base_url"].rstrip("/"),
            timeout=self.config["timeout"],
            headers={
                "Authorization": f"Klaviyo-API-Key {api_key}",
                "revision": self.config["revision"],
                "Accept": "application/vnd.api+json",
                "Content-Type": "application/vnd.api+json",
            },
        )

    def _call(self, method: str, url: str, endpoint: str, **kwargs) -> httpx.Response:
        """One call; `endpoint` is its name in Klaviyo's reference, which its rate limit is counted by."""
        return http.send(self.client, method, url, app=APP, message=_message, pace=self.pace(endpoint), **kwargs)

    def check(self) -> str:
        account = self._call("GET", "/api/accounts", "Get Accounts").json()["data"][0]
        return account["attributes"]["contact_information"]["organization_name"]

    def ensure_list(self, name: str, remote_id: str = "") -> str:
        if remote_id and self._call("GET", f"/api/lists/{remote_id}", "Get List", ok=(404,)).status_code == 200:
            return remote_id
        body = {"data": {"type": "list", "attributes": {"name": name}}}
        return self._call("POST", "/api/lists", "Create List", json=body).json()["data"]["id"]

    def rename_list(self, remote_id: str, name: str) -> None:
        body = {"data": {"type": "list", "id": remote_id, "attributes": {"name": name}}}
        self._call("PATCH", f"/api/lists/{remote_id}", "Update List", json=body)

    def delete_list(self, remote_id: str) -> None:
        self._call("DELETE", f"/api/lists/{remote_id}", "Delete List", ok=(404,))

    def add_members(self, remote_id: str, contacts: Iterable[Contact]) -> dict[int, str]:
        contacts = [c for c in self._batch(contacts) if c.email or c.phone or c.external_id]
        if not contacts:
            return {}
        profile_ids = self._import(contacts)
        if profile_ids:
            self._relate("POST", remote_id, profile_ids.values())
        return profile_ids

    def remove_members(self, remote_id: str, contacts: Iterable[Contact]) -> None:
        # A contact without a profile id was never added by us, so there is nothing to remove.
        profile_ids = [c.remote_id for c in self._batch(contacts) if c.remote_id]
        if profile_ids:
            self._relate("DELETE", remote_id, profile_ids)

    def list_members(self, remote_id: str) -> Iterator[RemoteMember]:
        params = {"fields[profile]": "email,external_id", "page[size]": PAGE_SIZE}
        for profile in self._pages(f"/api/lists/{remote_id}/profiles", "Get Profiles for List", params):
            attributes = profile["attributes"]
            yield RemoteMember(profile["id"], attributes.get("email") or "", attributes.get("external_id"))

    def _batch(self, contacts: Iterable[Contact]) -> list[Contact]:
        contacts = list(contacts)
        if len(contacts) > self.limits.batch_size:
            raise ValueError(f"At most {self.limits.batch_size} contacts per call to {APP}, got {len(contacts)}.")
        return contacts

    def _relate(self, method: str, list_id: str, profile_ids: Iterable[str]) -> None:
        body = {"data": [{"type": "profile", "id": pid} for pid in profile_ids]}
        endpoint = "Add Profiles to List" if method == "POST" else "Remove Profiles from List"
        self._call(method, f"/api/lists/{list_id}/relationships/profiles", endpoint, json=body)

    def _import(self, contacts: list[Contact]) -> dict[int, str]:
        """Upsert the profiles with one import job; the profile id of each customer it took."""
        profiles = [_profile(c) for c in contacts]
        body = {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": profiles}}}}
        job = self._call("POST", "/api/profile-bulk-import-jobs", "Bulk Import Profiles", json=body).json()
        job_id = job["data"]["id"]
        self._wait_for(job_id)
        params = {"fields[profile]": "email,phone_number,external_id", "page[size]": PAGE_SIZE}
        imported = list(
            self._pages(
                f"/api/profile-bulk-import-jobs/{job_id}/profiles", "Get Profiles for Bulk Import Profiles Job", params
            )
        )
        return _match(contacts, imported)

    def _wait_for(self, job_id: str) -> None:
        limit = self.config["import_timeout"]
        deadline = time.monotonic() + limit
        pause = 0.2
        while True:
            job = self._call("GET", f"/api/profile-bulk-import-jobs/{job_id}", "Get Bulk Import Profiles Job").json()
            attributes = job["data"]["attributes"]
            if attributes["status"] == "complete":
                return
            if attributes["status"] == "cancelled":
                raise ProviderError(f"{APP} cancelled profile import job {job_id}.", permanent=False)
            if time.monotonic() + pause > deadline:
                raise ProviderError(
                    f"{APP} profile import job {job_id} did not finish within {self.config['import_timeout']:g} s.",
                    permanent=False,
                )
            time.sleep(pause)
            pause = min(pause * 2, 5.0)

    def _pages(self, url: str, endpoint: str, params: dict) -> Iterator[dict]:
        """Every resource of a cursor-paginated listing; `links.next` is the next page's full URL."""
        page = self._call("GET", url, endpoint, params=params).json()
        yield from page["data"]
        while next_url := (page.get("links") or {}).get("next"):
            page = self._call("GET", next_url, endpoint).json()
            yield from page["data"]


def _profile(contact: Contact) -> dict:
    attributes = {
        "email": contact.email,
        "phone_number": contact.phone,
        "external_id": contact.external_id,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
    }
    profile = {"type": "profile", "attributes": {k: v for k, v in attributes.items() if v}}
    if contact.remote_id:
        profile["id"] = contact.remote_id
    return profile


def _match(contacts: list[Contact], profiles: list[dict]) -> dict[int, str]:
    """Which imported profile is which customer: by profile id, then email, phone, external id."""
    by_key = {}
    for p in profiles:
        a = p["attributes"]
        for key in _keys(p["id"], a.get("email"), a.get("phone_number"), a.get("external_id")):
            by_key.setdefault(key, p["id"])
    found = {}
    for c in contacts:
        match = next((by_key[k] for k in _keys(c.remote_id, c.email, c.phone, c.external_id) if k in by_key), None)
        if match:
            found[c.customer_id] = match
    return found


def _keys(profile_id, email, phone, external_id) -> list[tuple[str, str]]:
    keys = [("id", profile_id), ("email", (email or "").lower()), ("phone", phone), ("external_id", external_id)]
    return [(name, value) for name, value in keys if value]
