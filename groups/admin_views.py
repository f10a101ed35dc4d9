"""The group admin's own pages and buttons: refresh, (de)activate, duplicate, export, live preview, members by hand.

Each view is wrapped in `admin_site.admin_view` (staff login) by `urls()`; state changes accept POST
only, check the model permission, say what happened with `message_user`, and redirect.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST

from config.refusals import needs_sentence
from config.timezones import is_time_zone_name
from customers import services as customer_services

from . import admin_columns, exports, progress, rule_history, services, suggestions
from .dependencies import dependency_order
from .forms import MemberListForm
from .models import CustomerGroup, RuleVersion
from .preview import ENTER, LEAVE
from .preview import changes as preview_changes_of
from .preview import preview as preview_rules
from .rules import Catalogue, RulesInvalid, describe_rules, operators


def urls(model_admin) -> list:
    """The custom URLs, to prepend to the group admin's own (ModelAdmin.get_urls)."""

    def view(function: Callable, *, post_only: bool = False):
        def bound(request, *args, **kwargs):
            return function(model_admin, request, *args, **kwargs)

        return model_admin.admin_site.admin_view(require_POST(bound) if post_only else bound)

    return [
        path("refresh-all/", view(refresh_all, post_only=True), name="groups_customergroup_refresh_all"),
        path("preview/", view(preview, post_only=True), name="groups_customergroup_preview"),
        path("values/", view(field_values), name="groups_customergroup_values"),
        path("columns/", view(admin_columns.choose_columns), name="groups_customergroup_columns"),
        path("<path:object_id>/refresh/", view(refresh, post_only=True), name="groups_customergroup_refresh"),
        path("<path:object_id>/activate/", view(activate, post_only=True), name="groups_customergroup_activate"),
        path("<path:object_id>/deactivate/", view(deactivate, post_only=True), name="groups_customergroup_deactivate"),
        path("<path:object_id>/duplicate/", view(duplicate, post_only=True), name="groups_customergroup_duplicate"),
        path("<path:object_id>/export/", view(export), name="groups_customergroup_export"),
        path("<path:object_id>/progress/", view(refresh_progress), name="groups_customergroup_progress"),
        path(
            "<path:object_id>/rules/<int:version>/restore/",
            view(restore_rules, post_only=True),
            name="groups_customergroup_restore_rules",
        ),
        path(
            "<path:object_id>/preview/changes/",
            view(preview_changes),
            name="groups_customergroup_preview_changes",
        ),
        path("<path:object_id>/members/edit/", view(edit_members), name="groups_customergroup_edit_members"),
    ]


VIEW = "groups.view_customergroup"
CHANGE = "groups.change_customergroup"


# --- shared operations (the list's actions call these too) ---------------------------------------


# --- views ---------------------------------------------------------------------------------------


def _group(model_admin, request: HttpRequest, object_id: str, *, change: bool) -> CustomerGroup:
    group = model_admin.get_object(request, unquote(object_id))
    if group is None:
        raise Http404("No such group.")
    allowed = (
        model_admin.has_change_permission(request, group) if change else model_admin.has_view_permission(request, group)
    )
    if not allowed:
        raise PermissionDenied(needs_sentence([CHANGE if change else VIEW]))
    return group


def _back(request: HttpRequest, group: CustomerGroup, tab: str = "settings") -> HttpResponse:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(reverse("admin:groups_customergroup_change", args=[group.pk]) + f"?tab={tab}")


def refresh(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    group = _group(model_admin, request, object_id, change=True)
    if not group.is_dynamic:
        model_admin.message_user(request, f"“{group}” is a manual group: it changes only by hand.", messages.WARNING)
    else:
        services.queue_refresh(group, initiated_by=request.user)
        model_admin.message_user(request, f"Refresh of “{group}” queued; the runs below show its progress.")
    return _back(request, group)


def refresh_all(model_admin, request: HttpRequest) -> HttpResponse:
    if not model_admin.has_change_permission(request):
        raise PermissionDenied(needs_sentence([CHANGE]))
    groups = dependency_order(list(CustomerGroup.objects.active_dynamic()))
    for group in groups:  # queued dependencies first, so a worker meets them in that order
        services.queue_refresh(group, initiated_by=request.user)
    model_admin.message_user(request, f"Refresh queued for {len(groups)} active dynamic groups.")
    return redirect("admin:groups_customergroup_changelist")


def _set_active(model_admin, request: HttpRequest, object_id: str, active: bool) -> HttpResponse:
    group = _group(model_admin, request, object_id, change=True)
    services.set_active(group, active, initiated_by=request.user)
    word = "activated" if active else "deactivated"
    model_admin.message_user(request, f"“{group}” {word}; it now has {group.member_count} members.")
    return _back(request, group)


def activate(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    return _set_active(model_admin, request, object_id, True)


def deactivate(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    return _set_active(model_admin, request, object_id, False)


def duplicate(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    group = _group(model_admin, request, object_id, change=False)
    if not model_admin.has_add_permission(request):
        raise PermissionDenied(needs_sentence(["groups.add_customergroup"]))
    copy = services.duplicate_group(group, initiated_by=request.user)
    model_admin.message_user(request, f"“{copy}” created as a copy of “{group}”.")
    return redirect(reverse("admin:groups_customergroup_change", args=[copy.pk]) + "?tab=settings")


def restore_rules(model_admin, request: HttpRequest, object_id: str, version: int) -> HttpResponse:
    group = _group(model_admin, request, object_id, change=True)
    try:
        run = services.restore_rule_version(group, version, initiated_by=request.user)
    except RuleVersion.DoesNotExist as exc:
        raise Http404(f"“{group}” has no rules version {version}.") from exc
    except ValueError:
        model_admin.message_user(request, f"Version {version} is already the rules of “{group}”.", messages.WARNING)
    except RulesInvalid as exc:
        problems = "; ".join(operators.in_staff_words(e["message"]) for e in exc.errors)
        model_admin.message_user(request, f"Version {version} cannot be restored: {problems}.", messages.ERROR)
    else:
        group.refresh_from_db()
        model_admin.message_user(
            request,
            f"Version {version} restored as version {group.rule_version}: {run.added} entered and {run.removed} "
            f"left; “{group}” now has {group.member_count} members.",
        )
    return _back(request, group)


def refresh_progress(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    """The Settings tab's progress bar asks here while a refresh is queued or running."""
    group = _group(model_admin, request, object_id, change=False)
    return JsonResponse({"progress": progress.refresh_progress(group)})


def export(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    group = _group(model_admin, request, object_id, change=False)
    if not exports.may_export(request.user):
        raise PermissionDenied(exports.EXPORT_NEEDED)
    try:
        return exports.export_response(group, request.GET.get("columns"), request.GET.get("bom") == "1")
    except exports.ColumnsInvalid as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")


def preview(model_admin, request: HttpRequest) -> HttpResponse:
    """The rule builder's live preview: count, and who would enter or leave an existing group; nothing is saved."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"errors": [{"path": "", "message": "the rules are not valid JSON"}]}, status=400)
    if not isinstance(body, dict):
        return JsonResponse({"errors": [{"path": "", "message": 'send {"rules": ..., "group_id": ...}'}]}, status=400)
    group_id = body.get("group_id")
    group = CustomerGroup.objects.filter(pk=group_id).first() if isinstance(group_id, int) else None
    time_zone = _time_zone(body.get("time_zone"))
    rules = body.get("rules")
    try:
        result = preview_rules(rules, group=group, time_zone=time_zone)
    except RulesInvalid as exc:
        errors = [{**error, "message": operators.in_staff_words(error["message"])} for error in exc.errors]
        return JsonResponse({"errors": errors}, status=400)
    answer = {"count": result.count, "sample": result.sample, "would_enter": None, "would_leave": None}
    if group is not None:
        # The full lists take the same rules in their address, so they open in a tab of their own.
        lists = reverse("admin:groups_customergroup_preview_changes", args=[group.pk])
        tried = {"rules": json.dumps(rules, separators=(",", ":")), "time_zone": time_zone or ""}
        answer |= {
            "would_enter": result.would_enter,
            "would_leave": result.would_leave,
            "entering": result.entering,
            "leaving": result.leaving,
            "entering_url": f"{lists}?{urlencode({'side': ENTER, **tried})}",
            "leaving_url": f"{lists}?{urlencode({'side': LEAVE, **tried})}",
        }
    return JsonResponse(answer)


def _time_zone(name) -> str | None:
    # A time zone still being typed in the form must not break the preview: fall back to the group's.
    return name if name and is_time_zone_name(name) else None


def field_values(model_admin, request: HttpRequest) -> HttpResponse:
    """The rule builder's suggestions for a text field: its most common values, with how many have each."""
    if not (model_admin.has_view_permission(request) and request.user.has_perm("customers.view_customer")):
        raise PermissionDenied
    entity, field = request.GET.get("entity", ""), request.GET.get("field", "")
    found = suggestions.common_values(entity, field, catalogue=Catalogue.load())
    return JsonResponse({"values": [[value, count] for value, count in found]})


PREVIEW_PAGE = 100


def preview_changes(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    """Everyone who would enter or leave the group with the rules being tried (the preview's samples link here)."""
    group = _group(model_admin, request, object_id, change=False)
    side = LEAVE if request.GET.get("side") == LEAVE else ENTER
    try:
        rules = json.loads(request.GET.get("rules") or "null")
        after = max(0, int(request.GET.get("after") or 0))
    except ValueError:
        rules, after = None, 0
    time_zone = _time_zone(request.GET.get("time_zone"))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": group,
        "side": side,
        "title": f"Who would {side} “{group}”",
        "can_view_customers": request.user.has_perm("customers.view_customer"),
    }
    try:
        customers = preview_changes_of(rules, group, side, after=after, limit=PREVIEW_PAGE + 1, time_zone=time_zone)
        context["rule_sentence"] = describe_rules(
            rules, catalogue=Catalogue.load(), group_names=rule_history.names_for(rules)
        )
    except RulesInvalid as exc:
        context["problems"] = [operators.in_staff_words(e["message"]) for e in exc.errors]
        return TemplateResponse(request, "admin/groups/customergroup/preview_changes.html", context, status=400)
    context["customers"] = customers[:PREVIEW_PAGE]
    if len(customers) > PREVIEW_PAGE:
        query = request.GET.copy()
        query["after"] = customers[PREVIEW_PAGE - 1]["id"]
        context["next_url"] = "?" + query.urlencode()
    context["first_page"] = after == 0
    return TemplateResponse(request, "admin/groups/customergroup/preview_changes.html", context)


def edit_members(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    """Add or remove customers of a manual group from pasted emails / external ids or a CSV file."""
    group = _group(model_admin, request, object_id, change=True)
    if group.is_dynamic:
        model_admin.message_user(request, "A dynamic group's members follow its rules.", messages.WARNING)
        return _back(request, group, "members")
    report = None
    form = MemberListForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        ids, unmatched = customer_services.match_customers(form.cleaned_data["tokens"])
        adding = form.cleaned_data["operation"] == "add"
        edit = services.add_members if adding else services.remove_members
        changed = edit(group, ids, initiated_by=request.user)
        verb = "added to" if adding else "removed from"
        unchanged = len(ids) - changed
        summary = f"{changed} customers {verb} “{group}”"
        if unchanged:
            summary += f"; {unchanged} {'were already members' if adding else 'were not members'}"
        model_admin.message_user(
            request, summary + (f"; {len(unmatched)} did not match any customer." if unmatched else ".")
        )
        report = {
            "matched": len(ids),
            "changed": changed,
            "unmatched": unmatched[:1000],
            "unmatched_total": len(unmatched),
        }
        form = MemberListForm(initial={"operation": form.cleaned_data["operation"]})
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": group,
        "title": f"Add or remove members of {group}",
        "form": form,
        "report": report,
    }
    return TemplateResponse(request, "admin/groups/customergroup/edit_members.html", context)
