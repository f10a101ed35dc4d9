"""A fake Mailchimp Marketing API 3.0: one account, audiences with members and tags (static segments).

As documented at mailchimp.com/developer/marketing/api: HTTP Basic with any user name and the API
key; errors as problem documents `{type, title, status, detail, instance}`; members addressed by
subscriber hash (MD5 of the lowercase email), a new one needing `status_if_new`; tag members
changed by `POST /lists/{id}/segments/{id}` with at most 500 emails per array (emails not in the
audience come back under `errors`); a PATCH with `static_segment: []` empties the tag; offset
pagination with `count` up to 1,000 and `total_items`; tag member listings leave out transactional,
unsubscribed and cleaned contacts unless asked; more than 10 calls in flight answer 429.
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime

from werkzeug.wrappers import Request, Response

from . import FakeServer, json_response


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


class FakeMailchimp(FakeServer):
    concurrency_limit = 10
    concurrency_detail = "You have exceeded the limit of 10 simultaneous connections."

    def __init__(self, api_key: str = "0123456789abcdef-us6", audience_id: str = "a1b2c3d4e5"):
        self.api_key = api_key
        self.audience_id = audience_id
        self.members: dict[str, dict] = {}  # subscriber hash -> {"email_address", "status", "merge_fields"}
        self.segments: dict[int, dict] = {}  # id -> {"name", "members": set of hashes}
        self._ids = itertools.count(1001)
        super().__init__()

    def routes(self):
        return [
            ("/3.0", ["GET"], "root"),
            ("/3.0/ping", ["GET"], "ping"),
            ("/3.0/lists/<list_id>", ["GET"], "audience"),
            ("/3.0/lists/<list_id>/members/<member_hash>", ["GET", "PUT"], "member"),
            ("/3.0/lists/<list_id>/segments", ["GET", "POST"], "segments_"),
            ("/3.0/lists/<list_id>/segments/<int:segment_id>", ["GET", "PATCH", "DELETE", "POST"], "segment"),
            ("/3.0/lists/<list_id>/segments/<int:segment_id>/members", ["GET"], "segment_members"),
        ]

    # --- what tests look at ---------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"{self.url}/3.0"

    def tagged(self, segment_id) -> set[str]:
        """Emails of the tag's members."""
        with self.lock:
            return {self.members[h]["email_address"] for h in self.segments[int(segment_id)]["members"]}

    def add_member(self, email: str, status: str = "subscribed") -> None:
        """A contact who is in the audience already."""
        with self.lock:
            self.members[subscriber_hash(email)] = {"email_address": email, "status": status, "merge_fields": {}}

    # --- protocol -------------------------------------------------------------------------------

    def authorize(self, request: Request) -> Response | None:
        auth = request.authorization
        if auth is None or auth.type != "basic" or auth.password != self.api_key:
            return self.error(
                401,
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
                title="API Key Invalid",
            )
        return None

    def error(self, status: int, detail: str, headers: dict | None = None, title: str = "") -> Response:
        titles = {
            400: "Invalid Resource",
            404: "Resource Not Found",
            405: "Method Not Allowed",
            429: "Too Many Requests",
        }
        body = {
            "type": "https://mailchimp.com/developer/marketing/docs/errors/",
            "title": title or titles.get(status, "Internal Server Error"),
            "status": status,
            "detail": detail,
            "instance": "00000000-0000-0000-0000-000000000000",
        }
        return json_response(body, status, headers, "application/problem+json")

    def _audience_or_404(self, list_id: str) -> Response | None:
        if list_id != self.audience_id:
            return self.error(404, "The requested resource could not be found.")
        return None

    def _page(self, request: Request, key: str, items: list[dict]) -> Response:
        count, offset = int(request.args.get("count", 10)), int(request.args.get("offset", 0))
        if not 1 <= count <= 1000:
            return self.error(400, "count must be between 1 and 1000.")
        return json_response({key: items[offset : offset + count], "total_items": len(items)})

    def _member(self, member_hash: str) -> dict:
        m = self.members[member_hash]
        return {
            "id": member_hash,
            "email_address": m["email_address"],
            "status": m["status"],
            "list_id": self.audience_id,
            "merge_fields": m["merge_fields"],
        }

    def _segment(self, segment_id: int) -> dict:
        s = self.segments[segment_id]
        now = datetime.now(UTC).isoformat()
        return {
            "id": segment_id,
            "name": s["name"],
            "member_count": len(s["members"]),
            "type": "static",
            "created_at": now,
            "updated_at": now,
            "list_id": self.audience_id,
        }

    def root(self, request, body):
        return json_response(
            {"account_id": "8d3a3db4d97663a9074efcc16", "account_name": "Corner Café", "email": "owner@example.com"}
        )

    def ping(self, request, body):
        return json_response({"health_status": "Everything's Chimpy!"})

    def audience(self, request, body, list_id):
        if missing := self._audience_or_404(list_id):
            return missing
        return json_response({"id": list_id, "name": "Newsletter", "stats": {"member_count": len(self.members)}})

    def member(self, request, body, list_id, member_hash):
        if missing := self._audience_or_404(list_id):
            return missing
        if request.method == "GET":
            if member_hash not in self.members:
                return self.error(404, "The requested resource could not be found.")
            return json_response(self._member(member_hash))
        email = (body or {}).get("email_address", "")
        if "@" not in email or email.endswith("@fake.invalid"):
            return self.error(400, f"{email} looks fake or invalid, please enter a real email address.")
        if subscriber_hash(email) != member_hash:
            return self.error(400, "The subscriber hash does not match the email address.")
        if member_hash in self.members:
            self.members[member_hash]["email_address"] = email
        else:
            status = body.get("status") or body.get("status_if_new")
            if status not in ("subscribed", "unsubscribed", "cleaned", "pending", "transactional"):
                return self.error(400, "The resource submitted could not be validated: status_if_new is required.")
            self.members[member_hash] = {"email_address": email, "status": status, "merge_fields": {}}
        self.members[member_hash]["merge_fields"].update(body.get("merge_fields") or {})
        return json_response(self._member(member_hash))

    def segments_(self, request, body, list_id):
        if missing := self._audience_or_404(list_id):
            return missing
        if request.method == "GET":
            return self._page(request, "segments", [self._segment(i) for i in self.segments])
        name = (body or {}).get("name")
        if not name:
            return self.error(400, "The resource submitted could not be validated: name is required.")
        if any(s["name"] == name for s in self.segments.values()):
            return self.error(400, "Sorry, a segment with that name already exists.")
        segment_id = next(self._ids)
        hashes = {subscriber_hash(e) for e in body.get("static_segment") or []}
        self.segments[segment_id] = {"name": name, "members": hashes & self.members.keys()}
        return json_response(self._segment(segment_id))

    def segment(self, request, body, list_id, segment_id):
        if missing := self._audience_or_404(list_id):
            return missing
        if segment_id not in self.segments:
            return self.error(404, "The requested resource could not be found.")
        if request.method == "DELETE":
            del self.segments[segment_id]
            return Response(status=204)
        if request.method == "PATCH":
            if "name" in (body or {}):
                self.segments[segment_id]["name"] = body["name"]
            if "static_segment" in (body or {}):  # Mailchimp resets the tag to exactly these emails
                hashes = {subscriber_hash(e) for e in body["static_segment"]}
                self.segments[segment_id]["members"] = hashes & self.members.keys()
        if request.method == "POST":
            return self._batch(segment_id, body or {})
        return json_response(self._segment(segment_id))

    def _batch(self, segment_id: int, body: dict) -> Response:
        to_add, to_remove = body.get("members_to_add", []), body.get("members_to_remove", [])
        if len(to_add) > 500 or len(to_remove) > 500:
            return self.error(
                400,
                "Maximum allowed member items exceeded, please provide at most 500 items in members_to_add "
                "field or members_to_remove field",
            )
        tag = self.segments[segment_id]["members"]
        added, removed, missing = [], [], []
        for email in to_add:
            h = subscriber_hash(email)
            if h not in self.members:
                missing.append(email)
            elif h not in tag:
                tag.add(h)
                added.append(self._member(h))
        for email in to_remove:
            h = subscriber_hash(email)
            if h in tag:
                tag.discard(h)
                removed.append(self._member(h))
        errors = [{"email_addresses": missing, "error": "Email addresses are not in the audience."}] if missing else []
        return json_response(
            {
                "members_added": added,
                "members_removed": removed,
                "errors": errors,
                "total_added": len(added),
                "total_removed": len(removed),
                "error_count": len(missing),
            }
        )

    def segment_members(self, request, body, list_id, segment_id):
        if missing := self._audience_or_404(list_id):
            return missing
        if segment_id not in self.segments:
            return self.error(404, "The requested resource could not be found.")
        shown = {"subscribed", "pending"} | {
            status
            for status, flag in (
                ("transactional", "include_transactional"),
                ("unsubscribed", "include_unsubscribed"),
                ("cleaned", "include_cleaned"),
            )
            if request.args.get(flag, "").lower() == "true"
        }
        hashes = sorted(h for h in self.segments[segment_id]["members"] if self.members[h]["status"] in shown)
        return self._page(request, "members", [self._member(h) for h in hashes])
