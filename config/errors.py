"""Error pages: the API answers in JSON, as its clients parse it; the back office keeps Django's pages."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.views import defaults

from . import refusals


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception):
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse({"detail": f"the request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} "
                             "bytes; send fewer items per request"}, status=413)  # fmt: skip
    return JsonResponse({"detail": "bad request"}, status=400)


def permission_denied(request, exception):
    """A refusal that says which permission was missing, so staff know what to ask an administrator for."""
    message = str(exception) if exception is not None and str(exception) else ""
    if not message and getattr(request, "user", None) is not None and request.user.is_authenticated:
        message = refusals.needs_sentence(refusals.missing_for_admin_page(request))
    if _is_api(request):
        return JsonResponse({"detail": message or "You do not have permission to perform this action."}, status=403)
    from django.contrib import admin

    context = {**admin.site.each_context(request), "title": "Not allowed", "message": message}
    response = TemplateResponse(request, "403.html", context, status=403)
    return response.render()


def page_not_found(request, exception):
    if not _is_api(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse({"detail": f"no API endpoint at {request.path}; see /api/docs/"}, status=404)


def server_error(request):
    if not _is_api(request):
        return defaults.server_error(request)
    return JsonResponse({"detail": "server error: the problem has been logged"}, status=500)


class ClientErrorsInOneLine(logging.Filter):
    """A refused request (403, 404, 400) is the client's doing: log its line, not our traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
