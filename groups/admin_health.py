"""The group health page: groups whose scheduled refreshes are stale (two scheduled times missed) or
whose runs fail, so staff notice before the members they sync go out of date."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from . import health, schedules
from .models import CustomerGroup

TEMPLATE = "admin/groups/customergroup/health.html"


def urls(model_admin) -> list:
    """The page's URL, to prepend to the group admin's own (ModelAdmin.get_urls)."""
    view = model_admin.admin_site.admin_view(lambda request: group_health(model_admin, request))
    return [path("health/", view, name="groups_customergroup_health")]


def group_health(model_admin, request: HttpRequest) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied("The group health page needs the permission “Can view customer group”.")
    now = timezone.now()
    stale = [
        {"group": group, "missed": [_in_zone(moment) for moment in schedules.previous_runs(group, 2, before=now)]}
        for group in health.stale_groups(now)
    ]
    failing = CustomerGroup.objects.filter(
        last_run_status__in=[CustomerGroup.RunStatus.FAILED, CustomerGroup.RunStatus.FAILING]
    ).order_by("-failure_count", "name")
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Group health",
        "stale": stale,
        "failing": failing,
        "paused_after": health.MAX_CONSECUTIVE_FAILURES,
    }
    return TemplateResponse(request, TEMPLATE, context)


def _in_zone(moment) -> str:
    # Scheduled times are the group's own: shown in its zone, with the zone said.
    return moment.strftime("%a %Y-%m-%d %H:%M %Z")
