"""A fake Klaviyo: lists, profiles and bulk profile import jobs of the JSON:API.

As documented at developers.klaviyo.com/en/reference (revision 2026-10-15): `Authorization:
Klaviyo-API-Key pk_...` and a `revision` header on every call; errors as `{"errors": [{id, status,
code, title, detail}]}`; cursor pagination through `links.next`, at most 100 a page; at most 1,000
profiles per list relationship call and 10,000 per import job; list creation capped per day (429);
each endpoint limited per account to 10 calls a second and 150 a minute in fixed windows (the "M"
tier), a call beyond either answered 429 with `Retry-After` until the window ends.
Import jobs are asynchronous: the first poll says "processing", a later one "complete".
"""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from . import FakeServer, json_response

JSONAPI = "application/vnd.api+json"
RATE_LIMITS = ((1, 10), (60, 150))  # (window in seconds, calls per endpoint in it)
PROFILE_FIELDS = ("email", "phone_number", "external_id", "first_name", "last_name")
FIND_KEYS = ("email", "phone_number", "external_id")  # in the order a profile is looked up by


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _new_id() -> str:
    return uuid.uuid4().hex[:26].upper()


class FakeKlaviyo(FakeServer):
    def __init__(self, api_key: str = "pk_test_fake", *, list_creations_per_day: int = 150, polls_per_job: int = 1):
        self.api_key = api_key
        self.list_creations_left = list_creations_per_day
        self.polls_per_job = polls_per_job  # polls that answer "processing" before "complete"
        self.lists: dict[str, dict] = {}  # id -> {"name", "created", "members": {profile id: joined}}
        self.profiles: dict[str, dict] = {}  # id -> attributes
        # Klaviyo finds a profile by email, phone or external id; a scan would make large syncs quadratic.
        self.profile_keys: dict[tuple[str, str], str] = {}  # (key, lowercased value) -> id
        self.jobs: dict[str, dict] = {}
        self.windows: Counter = Counter()  # (method, endpoint, window length, window number) -> calls
        self.throttled = 0  # calls refused for a rate limit
        super().__init__()

    def routes(self):
        return [
            ("/api/accounts", ["GET"], "accounts"),
            ("/api/lists", ["GET", "POST"], "lists_"),
            ("/api/lists/<list_id>", ["GET", "PATCH", "DELETE"], "list_"),
            ("/api/lists/<list_id>/profiles", ["GET"], "list_profiles"),
            ("/api/lists/<list_id>/relationships/profiles", ["POST", "DELETE"], "list_relationships"),
            ("/api/profile-bulk-import-jobs", ["POST"], "create_job"),
            ("/api/profile-bulk-import-jobs/<job_id>", ["GET"], "job"),
            ("/api/profile-bulk-import-jobs/<job_id>/profiles", ["GET"], "job_profiles"),
        ]

    # --- what tests look at ---------------------------------------------------------------------

    def members(self, list_id: str) -> set[str]:
        """Emails of the list's members."""
        with self.lock:
            return {self.profiles[pid].get("email", "") for pid in self.lists[list_id]["members"]}

    def add_profile(self, email: str, **attributes) -> str:
        """A profile that exists in the account already (made by someone else)."""
        with self.lock:
            pid = _new_id()
            self._store(pid, {"email": email, **attributes})
            return pid

    # --- protocol -------------------------------------------------------------------------------

    def authorize(self, request: Request) -> Response | None:
        if request.headers.get("Authorization") != f"Klaviyo-API-Key {self.api_key}":
            return self.error(401, "Missing or invalid private key.", code="not_authenticated")
        if not request.headers.get("revision"):
            return self.error(400, "The revision header is required.", code="invalid")
        return self._rate_limit(request)

    def _rate_limit(self, request: Request) -> Response | None:
        try:
            endpoint, _ = self.url_map.bind_to_environ(request.environ).match(request.path.rstrip("/"),
                                                                               method=request.method)  # fmt: skip
        except HTTPException:  # an unknown path or method: answered by the router
            return None
        now = time.time()
        with self.lock:
            for length, limit in RATE_LIMITS:
                window = (request.method, endpoint, length, int(now // length))
                if self.windows[window] >= limit:
                    self.throttled += 1
                    wait = str(math.ceil(length - now % length))
                    return self.error(429, "Request was throttled.", {"Retry-After": wait}, code="throttled")
            for length, _ in RATE_LIMITS:
                self.windows[(request.method, endpoint, length, int(now // length))] += 1
        return None

    def error(self, status: int, detail: str, headers: dict | None = None, code: str = "error") -> Response:
        titles = {400: "Invalid input.", 401: "Authentication failed.", 404: "Not found.", 429: "Throttled."}
        body = {
            "errors": [
                {
                    "id": str(uuid.uuid4()),
                    "status": status,
                    "code": code,
                    "title": titles.get(status, "Error"),
                    "detail": detail,
                    "source": {"pointer": "/data/"},
                }
            ]
        }
        return json_response(body, status, headers, JSONAPI)

    def _ok(self, data, status: int = 200, links: dict | None = None) -> Response:
        body = {"data": data}
        if links is not None:
            body["links"] = links
        return json_response(body, status, content_type=JSONAPI)

    def _page(self, request: Request, items: list[dict]) -> Response:
        try:
            size = int(request.args.get("page[size]", 20))
            start = int(request.args.get("page[cursor]", 0))
        except ValueError:
            return self.error(400, "Invalid page parameters.", code="invalid")
        if not 1 <= size <= 100:
            return self.error(400, "page[size] must be between 1 and 100.", code="invalid")
        links = {"self": request.url, "prev": None, "next": None}
        if start + size < len(items):
            args = dict(request.args) | {"page[cursor]": str(start + size), "page[size]": str(size)}
            links["next"] = f"{request.host_url.rstrip('/')}{request.path}?{urlencode(args)}"
        return self._ok(items[start : start + size], links=links)

    def _list(self, request: Request, list_id: str) -> dict:
        lst = self.lists[list_id]
        attributes = {
            "name": lst["name"],
            "created": lst["created"],
            "updated": lst["updated"],
            "opt_in_process": "single_opt_in",
        }
        return {
            "type": "list",
            "id": list_id,
            "attributes": attributes,
            "links": {"self": f"{request.host_url}api/lists/{list_id}/"},
        }

    def _profile(self, request: Request, pid: str, **extra) -> dict:
        attributes = {k: self.profiles[pid].get(k) for k in PROFILE_FIELDS} | extra
        return {
            "type": "profile",
            "id": pid,
            "attributes": attributes,
            "links": {"self": f"{request.host_url}api/profiles/{pid}/"},
        }

    def accounts(self, request, body):
        contact = {
            "default_sender_name": "Corner Café",
            "default_sender_email": "hello@example.com",
            "website_url": "https://example.com",
            "organization_name": "Corner Café",
            "street_address": {"address1": "1 Main St", "city": "Springfield", "country": "US", "zip": "12345"},
        }
        attributes = {
            "test_account": True,
            "contact_information": contact,
            "industry": "Food",
            "timezone": "UTC",
            "preferred_currency": "USD",
            "public_api_key": "AbC123",
            "locale": "en-US",
        }
        return self._ok(
            [
                {
                    "type": "account",
                    "id": "AbC123",
                    "attributes": attributes,
                    "links": {"self": f"{request.host_url}api/accounts/AbC123/"},
                }
            ]
        )

    def lists_(self, request, body):
        if request.method == "GET":
            return self._page(request, [self._list(request, lid) for lid in self.lists])
        name = ((body or {}).get("data") or {}).get("attributes", {}).get("name")
        if (body or {}).get("data", {}).get("type") != "list" or not name:
            return self.error(400, "A list needs data.type 'list' and a name.", code="invalid")
        if self.list_creations_left <= 0:
            return self.error(429, "Daily limit of list creations reached.", {"Retry-After": "86400"}, code="throttled")
        self.list_creations_left -= 1
        list_id = uuid.uuid4().hex[:6].upper()
        self.lists[list_id] = {"name": name, "created": _now(), "updated": _now(), "members": {}}
        return self._ok(self._list(request, list_id), 201)

    def list_(self, request, body, list_id):
        if list_id not in self.lists:
            return self.error(404, f"A list with id {list_id} does not exist.", code="not_found")
        if request.method == "DELETE":
            del self.lists[list_id]
            return Response(status=204)
        if request.method == "PATCH":
            data = (body or {}).get("data") or {}
            if data.get("id") != list_id or data.get("type") != "list":
                return self.error(409, "The id in the body does not match the URL.", code="conflict")
            if "name" in data.get("attributes", {}):
                self.lists[list_id].update(name=data["attributes"]["name"], updated=_now())
        return self._ok(self._list(request, list_id))

    def list_profiles(self, request, body, list_id):
        if list_id not in self.lists:
            return self.error(404, f"A list with id {list_id} does not exist.", code="not_found")
        members = self.lists[list_id]["members"]
        return self._page(request, [self._profile(request, pid, joined_group_at=at) for pid, at in members.items()])

    def list_relationships(self, request, body, list_id):
        if list_id not in self.lists:
            return self.error(404, f"A list with id {list_id} does not exist.", code="not_found")
        data = (body or {}).get("data")
        if not isinstance(data, list) or not data:
            return self.error(400, "data must be a non-empty array of profiles.", code="invalid")
        if len(data) > 1000:
            return self.error(400, "At most 1000 profiles per call.", code="invalid")
        if unknown := [d.get("id") for d in data if d.get("type") != "profile" or d.get("id") not in self.profiles]:
            return self.error(400, f"Invalid profile ids: {', '.join(map(str, unknown[:5]))}.", code="invalid")
        members = self.lists[list_id]["members"]
        for d in data:
            if request.method == "POST":
                members.setdefault(d["id"], _now())
            else:
                members.pop(d["id"], None)
        return Response(status=204)

    def create_job(self, request, body):
        data = (body or {}).get("data") or {}
        profiles = data.get("attributes", {}).get("profiles", {}).get("data")
        if data.get("type") != "profile-bulk-import-job" or not isinstance(profiles, list) or not profiles:
            return self.error(400, "A job needs data.type 'profile-bulk-import-job' and profiles.", code="invalid")
        if len(profiles) > 10000:
            return self.error(400, "At most 10000 profiles per job.", code="invalid")
        job_id = uuid.uuid4().hex
        imported, failed = [], 0
        for profile in profiles:
            pid = self._upsert(profile)
            if pid:
                imported.append(pid)
            else:
                failed += 1
        for rel in data.get("relationships", {}).get("lists", {}).get("data", []):
            for pid in imported:
                self.lists[rel["id"]]["members"].setdefault(pid, _now())
        self.jobs[job_id] = {
            "profiles": imported,
            "failed": failed,
            "total": len(profiles),
            "polls": 0,
            "created": _now(),
        }
        return self._ok(self._job(request, job_id), 202)

    def _upsert(self, profile: dict) -> str | None:
        attributes = {k: v for k, v in profile.get("attributes", {}).items() if k in PROFILE_FIELDS and v}
        email = attributes.get("email", "")
        if email and "@" not in email:
            return None
        if pid := profile.get("id"):
            if pid not in self.profiles:
                return None
        else:
            pid = self._find(attributes)
        if pid is None:
            if not any(attributes.get(k) for k in FIND_KEYS):
                return None
            pid = _new_id()
        self._store(pid, attributes)
        return pid

    def _store(self, pid: str, attributes: dict) -> None:
        """Create or update a profile, keeping the keys it is found by in step."""
        profile = self.profiles.setdefault(pid, {})
        for key in FIND_KEYS:
            if key in attributes and (old := (profile.get(key) or "").lower()):
                if self.profile_keys.get((key, old)) == pid:
                    del self.profile_keys[(key, old)]
        profile.update(attributes)
        for key in FIND_KEYS:
            if value := (profile.get(key) or "").lower():
                self.profile_keys.setdefault((key, value), pid)

    def _find(self, attributes: dict) -> str | None:
        for key in FIND_KEYS:
            value = (attributes.get(key) or "").lower()
            if value and (pid := self.profile_keys.get((key, value))):
                return pid
        return None

    def _job(self, request, job_id: str) -> dict:
        job = self.jobs[job_id]
        done = job["polls"] > self.polls_per_job
        attributes = {
            "status": "complete" if done else "processing",
            "created_at": job["created"],
            "total_count": job["total"],
            "completed_count": len(job["profiles"]) if done else 0,
            "failed_count": job["failed"] if done else 0,
            "completed_at": _now() if done else None,
            "started_at": job["created"],
            "expires_at": None,
        }
        return {
            "type": "profile-bulk-import-job",
            "id": job_id,
            "attributes": attributes,
            "links": {"self": f"{request.host_url}api/profile-bulk-import-jobs/{job_id}/"},
        }

    def job(self, request, body, job_id):
        if job_id not in self.jobs:
            return self.error(404, f"No import job {job_id}.", code="not_found")
        self.jobs[job_id]["polls"] += 1
        return self._ok(self._job(request, job_id))

    def job_profiles(self, request, body, job_id):
        if job_id not in self.jobs:
            return self.error(404, f"No import job {job_id}.", code="not_found")
        job = self.jobs[job_id]
        done = job["polls"] > self.polls_per_job
        return self._page(request, [self._profile(request, pid) for pid in job["profiles"]] if done else [])
