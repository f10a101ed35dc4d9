"""The public unsubscribe page that links in messages lead to (no sign-in: the link is the proof)."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from . import unsubscribe

CHANNEL_WORDS = {"email": "emails", "sms": "text messages"}


# Mail apps' one-click unsubscribe (RFC 8058) posts to the link without a form or a cookie.
@csrf_exempt
def unsubscribe_view(request, token: str) -> HttpResponse:
    found = unsubscribe.read(token)
    if found is None:
        return render(request, "automations/unsubscribe.html", {"invalid": True}, status=404)
    customer, channel = found
    # A GET only asks: mail scanners open links, and that must not unsubscribe anyone.
    done = request.method == "POST"
    if done:
        unsubscribe.clear_consent(customer, channel)
    return render(request, "automations/unsubscribe.html", {"done": done, "what": CHANNEL_WORDS[channel]})
