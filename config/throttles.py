"""API throttles (one allowance per user, across their tokens and session, and one per token) and the
client address the login lockout counts by."""

from __future__ import annotations

import hashlib

from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle


class _CurrentRates:
    # DRF reads the rates once, at import; these read them per request so a changed setting applies.
    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class UserThrottle(_CurrentRates, UserRateThrottle):
    scope = "user"


class TokenThrottle(_CurrentRates, SimpleRateThrottle):
    scope = "token"

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, Token):
            return None
        # The cache holds a digest, never the key itself.
        return self.cache_format % {"scope": self.scope, "ident": hashlib.sha256(request.auth.key.encode()).hexdigest()}


def client_ip(request) -> str:
    """The address a request came from. Behind our own proxy (BEHIND_PROXY) that is the last address
    the proxy appended to X-Forwarded-For; earlier entries are whatever the client chose to send."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "") if settings.BEHIND_PROXY else ""
    return forwarded.rsplit(",", 1)[-1].strip() or request.META.get("REMOTE_ADDR", "")
