"""A fake of Twilio's Messages API on 127.0.0.1: POST /2010-04-01/Accounts/{sid}/Messages.json.

It checks HTTP Basic auth (account SID and auth token, or an API key), takes the form fields To, From or
MessagingServiceSid and Body, answers 201 with a message resource as Twilio does, and answers with
Twilio's error envelope ({code, message, more_info, status}): 20003 for bad credentials, 21211 for an
invalid To, 21610 for a recipient who texted STOP, 20429 (HTTP 429) when told to throttle.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

PATH = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json$")
E164 = re.compile(r"^\+[1-9]\d{7,14}$")


class FakeTwilio:
    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid, self.auth_token = account_sid, auth_token
        self.messages: list[dict] = []
        self.unsubscribed: set[str] = set()
        self.throttle = 0  # answer this many requests with 429 first
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake.handle(self)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeTwilio:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        match = PATH.match(request.path)
        if not match:
            return self.error(request, 404, 20404, "The requested resource was not found")
        if not self.authorised(request.headers.get("Authorization", ""), match.group(1)):
            return self.error(request, 401, 20003, "Authentication Error - invalid username")
        length = int(request.headers.get("Content-Length", 0))
        form = {k: v[0] for k, v in parse_qs(request.rfile.read(length).decode()).items()}
        if self.throttle > 0:
            self.throttle -= 1
            return self.error(request, 429, 20429, "Too Many Requests", headers={"Retry-After": "1"})
        to = form.get("To", "")
        if not E164.match(to):
            return self.error(request, 400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return self.error(request, 400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required")
        if not form.get("Body"):
            return self.error(request, 400, 21602, "Message body is required")
        if to in self.unsubscribed:
            return self.error(request, 400, 21610, "Attempt to send to unsubscribed recipient")
        sid = "SM" + uuid.uuid4().hex
        resource = {
            "sid": sid, "account_sid": self.account_sid, "to": to, "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"), "body": form["Body"], "status": "queued",
            "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01", "price": None,
            "error_code": None, "error_message": None, "date_created": "Tue, 01 Dec 2026 22:00:00 +0000",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }  # fmt: skip
        self.messages.append(resource)
        self.send(request, 201, resource)

    def authorised(self, header: str, path_sid: str) -> bool:
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user == self.account_sid == path_sid and password == self.auth_token

    def error(self, request, status: int, code: int, message: str, headers: dict | None = None) -> None:
        body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status}  # fmt: skip
        self.send(request, status, body, headers)

    @staticmethod
    def send(request, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)
