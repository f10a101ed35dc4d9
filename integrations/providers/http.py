"""The one way providers call an app over HTTP, and how its answers become `ProviderError`.

Timeouts, connection failures, 408, 429 and 5xx are transient; any other refusal is permanent and
carries the app's own message. A 429 whose `Retry-After` is short is waited out here, a couple of
times, so one busy second does not undo a half-sent batch; a longer one goes back to the service.
Calls to an app that publishes its rate limits wait for their place first (`pace.Pace`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import httpx

from .base import ProviderError
from .pace import Pace

INLINE_WAIT = 5.0  # seconds of Retry-After worth waiting in place, unless the caller says otherwise
INLINE_RETRIES = 2


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (it may be a number or an HTTP date), or None."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def send(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    app: str,
    message: Callable[[httpx.Response], str],
    ok: tuple[int, ...] = (),
    max_wait: float = INLINE_WAIT,
    on_response: Callable[[httpx.Response], None] | None = None,
    pace: Pace | None = None,
    **kwargs,
) -> httpx.Response:
    """Make the call; a success (2xx, or a status in `ok`) is returned, anything else raised.

    `message` pulls the app's own explanation out of an error response; `on_response` sees every
    answer, a refused one too (Lightspeed reads its rate-limit headers there). Each attempt waits
    for its place in `pace` first.
    """
    for attempt in range(INLINE_RETRIES + 1):
        if pace:
            pace.wait()
        try:
            response = client.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise ProviderError(f"{app} did not answer in time.", permanent=False) from None
        except httpx.TransportError as error:
            raise ProviderError(f"Could not reach {app}: {error}.", permanent=False) from None
        if on_response:
            on_response(response)
        if response.is_success or response.status_code in ok:
            return response
        wait = retry_after(response)
        if response.status_code == 429 and wait is not None and wait <= max_wait and attempt < INLINE_RETRIES:
            time.sleep(wait)
            continue
        break
    raise error_for(response, app, message)


def error_for(response: httpx.Response, app: str, message: Callable[[httpx.Response], str]) -> ProviderError:
    status = response.status_code
    try:
        detail = message(response)
    except (ValueError, KeyError, IndexError, TypeError):
        detail = ""
    detail = detail or response.reason_phrase or "no explanation"
    transient = status in (408, 429) or status >= 500
    return ProviderError(
        f"{app} answered {status}: {detail}",
        permanent=not transient,
        retry_after=retry_after(response),
        status=status,
    )
