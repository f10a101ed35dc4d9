"""Fake servers of the apps groups are synced to.

Each is a small Werkzeug WSGI app served on 127.0.0.1 on a port chosen free at start, speaking the
app's documented protocol (paths, authentication, status codes, batch limits, pagination, rate
limits) and keeping state, so a test asserts what the remote list holds rather than which calls
were made. Faults are queued on the server: `fail()` answers the next matching calls with an error
(a 429 with `Retry-After`, a 5xx, ...), `stall()` answers them only after a delay, for timeouts.
A fake may also refuse more than `concurrency_limit` calls in flight at once (`max_in_flight` is
the most it saw) and answer every call after `latency` seconds, so concurrency can be observed.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass  # tests read `calls`, not a log line per request


@dataclass
class Fault:
    path: str  # a regular expression searched in the request path; "" matches every call
    times: int
    status: int = 0  # 0: answer normally after `delay`
    retry_after: float | None = None
    delay: float = 0.0
    detail: str = "injected fault"


@dataclass
class Call:
    method: str
    path: str
    body: object
    headers: dict
    at: float  # time.monotonic() when it arrived


class FakeServer:
    concurrency_limit: int | None = None
    concurrency_detail = "Too many calls at once."

    def __init__(self):
        self.latency = 0.0
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.RLock()
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.url_map = Map([Rule(path, endpoint=name, methods=methods) for path, methods, name in self.routes()])
        self._server = None
        self._thread = None

    # --- what each fake says -------------------------------------------------------------------

    def routes(self) -> list[tuple[str, list[str], str]]:
        """(path, methods, name of the handler method) for every endpoint."""
        raise NotImplementedError

    def authorize(self, request: Request) -> Response | None:
        """An error response for a request with bad credentials, else None."""
        return None

    def error(self, status: int, detail: str, headers: dict | None = None) -> Response:
        """An error in the app's own shape."""
        raise NotImplementedError

    # --- running --------------------------------------------------------------------------------

    def start(self) -> FakeServer:
        self._server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=_Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    # --- faults ---------------------------------------------------------------------------------

    def fail(self, status: int, *, times: int = 1, path: str = "", retry_after: float | None = None) -> None:
        with self.lock:
            self.faults.append(Fault(path, times, status=status, retry_after=retry_after))

    def stall(self, seconds: float, *, times: int = 1, path: str = "") -> None:
        with self.lock:
            self.faults.append(Fault(path, times, delay=seconds))

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if re.search(fault.path, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def calls_to(self, method: str, path: str) -> list[Call]:
        """The calls made so far with this method to paths matching the regular expression."""
        return [c for c in self.calls if c.method == method and re.search(path, c.path)]

    # --- WSGI -----------------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        response = self._respond(request)
        return response(environ, start_response)

    def _respond(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        body = request.get_json(silent=True) if request.content_length else None
        with self.lock:
            self.calls.append(Call(request.method, path, body, dict(request.headers), time.monotonic()))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            crowded = self.concurrency_limit is not None and self.in_flight > self.concurrency_limit
        try:
            if crowded:
                return self.error(429, self.concurrency_detail)
            time.sleep(self.latency)
            return self._handle(request, path, body)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _handle(self, request: Request, path: str, body) -> Response:
        fault = self._take_fault(path)
        if fault and fault.delay:
            time.sleep(fault.delay)
        elif fault:
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return self.error(fault.status, fault.detail, headers)
        denied = self.authorize(request)
        if denied is not None:
            return denied
        try:
            endpoint, args = self.url_map.bind_to_environ(request.environ).match(path, method=request.method)
        except NotFound:
            return self.error(404, f"No such endpoint: {request.method} {path}")
        except HTTPException as exc:
            return self.error(exc.code, exc.description or "")
        with self.lock:
            return getattr(self, endpoint)(request, body, **args)


def json_response(data, status: int = 200, headers: dict | None = None, content_type="application/json") -> Response:
    return Response(json.dumps(data), status=status, headers=headers, content_type=content_type)
