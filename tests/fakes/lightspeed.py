"""A fake Lightspeed Retail (R-Series): OAuth token refresh and customers with tags, API V3.

As documented at developers.lightspeedhq.com/retail: `POST /auth/oauth/token` with
grant_type=refresh_token gives a new access token and a new refresh token, and the old refresh
token stops working; API calls under `/API/V3/Account/{accountID}` need `Authorization: Bearer`;
a leaky bucket per account (reads cost 1 unit, writes 10) reported in `X-LS-API-Bucket-Level` and
`X-LS-API-Drip-Rate`, 429 with `Retry-After` when a call would overflow it; customers listed 100 a
page at most, `@attributes.next` leading on, one record given as an object rather than a list;
`PUT Customer/{id}.json` with `Tags.tag` replaces the customer's tags.
"""

from __future__ import annotations

import itertools
import json
import math
import secrets
import time
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from . import FakeServer, json_response


class FakeLightspeed(FakeServer):
    def __init__(self, *, account_id: str = "123456", bucket_size: float = 60, drip_rate: float = 1000):
        self.account_id = account_id
        self.client_id, self.client_secret = "ls-client", "ls-secret"
        self.refresh_token = "rt-0"
        self.access_tokens: dict[str, float] = {}  # token -> expires at (time.time())
        self.token_lifetime = 3600
        self.refreshes = 0
        self.bucket_size, self.drip_rate = bucket_size, drip_rate
        self.level, self.level_at = 0.0, time.monotonic()
        self.throttled = 0  # calls refused with 429 because the bucket was full
        self.customers: dict[str, dict] = {}  # customerID -> {"firstName", "email", "tags"}
        self._ids = itertools.count(1)
        super().__init__()

    def routes(self):
        base = "/API/V3/Account/<account_id>"
        return [
            ("/auth/oauth/token", ["POST"], "token"),
            (f"{base}.json", ["GET"], "account"),
            (f"{base}/Customer.json", ["GET"], "customers_"),
            (f"{base}/Customer/<customer_id>.json", ["GET", "PUT"], "customer"),
        ]

    # --- what tests look at ---------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"{self.url}/API/V3"

    @property
    def token_url(self) -> str:
        return f"{self.url}/auth/oauth/token"

    def credentials(self) -> dict:
        """What a newly connected account holds: the current refresh token, no access token yet."""
        return {"client_id": self.client_id, "client_secret": self.client_secret, "refresh_token": self.refresh_token}

    def add_customer(self, email: str, tags: list[str] | None = None, first_name: str = "") -> str:
        with self.lock:
            customer_id = str(next(self._ids))
            self.customers[customer_id] = {"firstName": first_name, "email": email, "tags": list(tags or [])}
            return customer_id

    def tagged(self, tag: str) -> set[str]:
        with self.lock:
            return {c["email"] for c in self.customers.values() if tag in c["tags"]}

    # --- protocol -------------------------------------------------------------------------------

    def error(self, status: int, detail: str, headers: dict | None = None) -> Response:
        messages = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}
        body = {"httpCode": str(status), "httpMessage": messages.get(status, "Error"), "message": detail}
        return json_response(body, status, headers)

    def authorize(self, request: Request) -> Response | None:
        if request.path == "/auth/oauth/token":
            return None
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        if self.access_tokens.get(token, 0) <= time.time():
            return self.error(401, "Invalid access token.")
        return None

    def _handle(self, request, path, body):
        response = super()._handle(request, path, body)
        with self.lock:
            if path.startswith("/API/"):
                response.headers["X-LS-API-Bucket-Level"] = f"{self._level():g}/{self.bucket_size:g}"
                response.headers["X-LS-API-Drip-Rate"] = f"{self.drip_rate:g}"
        return response

    def _level(self) -> float:
        now = time.monotonic()
        self.level = max(0.0, self.level - self.drip_rate * (now - self.level_at))
        self.level_at = now
        return self.level

    def _spend(self, request: Request) -> Response | None:
        cost = 1 if request.method == "GET" else 10
        if self._level() + cost > self.bucket_size:
            self.throttled += 1
            wait = math.ceil((self.level + cost - self.bucket_size) / self.drip_rate)
            return self.error(429, "Rate limit exceeded.", {"Retry-After": str(wait)})
        self.level += cost
        return None

    def token(self, request, body):
        form = request.form
        if form.get("grant_type") != "refresh_token":
            return json_response({"error": "unsupported_grant_type"}, 400)
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
            return json_response({"error": "invalid_client", "error_description": "Client authentication failed."}, 401)
        if form.get("refresh_token") != self.refresh_token:
            return json_response({"error": "invalid_grant", "error_description": "The refresh token is invalid."}, 400)
        self.refreshes += 1
        self.refresh_token = f"rt-{self.refreshes}"
        access = secrets.token_hex(8)
        self.access_tokens[access] = time.time() + self.token_lifetime
        return json_response(
            {
                "access_token": access,
                "expires_in": self.token_lifetime,
                "token_type": "bearer",
                "scope": "employee:customers",
                "refresh_token": self.refresh_token,
            }
        )

    def account(self, request, body, account_id):
        if account_id != self.account_id:
            return self.error(404, f"Account {account_id} not found.")
        return self._spend(request) or json_response({"Account": {"accountID": account_id, "name": "Corner Café"}})

    def _customer(self, request: Request, customer_id: str) -> dict:
        c = self.customers[customer_id]
        record = {"customerID": customer_id, "firstName": c["firstName"], "lastName": ""}
        relations = json.loads(request.args.get("load_relations", "[]") or "[]")
        if "Contact" in relations:
            emails = {"ContactEmail": {"address": c["email"], "useType": "Primary"}} if c["email"] else ""
            record["Contact"] = {"Emails": emails}
        if "Tags" in relations and c["tags"]:
            tags = c["tags"]
            record["Tags"] = {"@attributes": {"count": str(len(tags))}, "tag": tags[0] if len(tags) == 1 else tags}
        return record

    def customers_(self, request, body, account_id):
        if account_id != self.account_id:
            return self.error(404, f"Account {account_id} not found.")
        if refused := self._spend(request):
            return refused
        args = request.args
        limit = int(args.get("limit", 100))
        if not 1 <= limit <= 100:
            return self.error(400, "limit must be between 1 and 100.")
        ids = sorted(self.customers, key=int)
        if "customerID" in args:
            wanted = args["customerID"].removeprefix("IN,[").removesuffix("]").split(",")
            ids = [i for i in ids if i in wanted]
        if "Contact.email" in args:
            ids = [i for i in ids if self.customers[i]["email"].lower() == args["Contact.email"].lower()]
        if "Tags.tag" in args:
            ids = [i for i in ids if args["Tags.tag"] in self.customers[i]["tags"]]
        if "after" in args:
            ids = [i for i in ids if int(i) > int(args["after"])]
        page, more = ids[:limit], len(ids) > limit
        next_url = f"{request.base_url}?{urlencode({**args, 'after': page[-1]})}" if more else ""
        records = [self._customer(request, i) for i in page]
        attributes = {"next": next_url, "previous": ""}
        return json_response({"@attributes": attributes, "Customer": records[0] if len(records) == 1 else records})

    def customer(self, request, body, account_id, customer_id):
        if account_id != self.account_id or customer_id not in self.customers:
            return self.error(404, f"Customer {customer_id} not found.")
        if refused := self._spend(request):
            return refused
        if request.method == "PUT":
            tags = ((body or {}).get("Tags") or {}).get("tag", [])
            self.customers[customer_id]["tags"] = [tags] if isinstance(tags, str) else list(tags)
        return json_response({"Customer": self._customer(request, customer_id)})
