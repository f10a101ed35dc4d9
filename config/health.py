"""/healthz: 200 only when the database answers and the broker accepts a connection; else 503 saying which failed.

For a load balancer or an uptime check: a web process that cannot reach either cannot do its work
(a refresh, an import or a sync started from it would never run).
"""

from __future__ import annotations

import os

from django.db import connection
from django.http import HttpRequest, HttpResponse

BROKER_TIMEOUT_SECONDS = 3


def _database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return _short(exc)
    return None


def _broker() -> str | None:
    from .celery import app

    try:
        with app.connection_for_write() as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
            if broker.transport_cls == "filesystem":
                # The file broker "connects" without touching its folder: accepting a message means
                # being able to write there.
                folder = (broker.transport_options or {}).get("data_folder_in", "")
                if not os.access(folder, os.W_OK):
                    return f"the broker's folder {folder!r} cannot be written"
    except Exception as exc:
        return _short(exc)
    return None


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def healthz(request: HttpRequest) -> HttpResponse:
    failures = {"database": _database(), "broker": _broker()}
    lines = [f"{name}: {'ok' if error is None else 'failed (' + error + ')'}" for name, error in failures.items()]
    healthy = not any(failures.values())
    response = HttpResponse("\n".join(lines) + "\n", status=200 if healthy else 503, content_type="text/plain")
    response["Cache-Control"] = "no-store"
    return response
