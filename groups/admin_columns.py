"""The group list's columns, chosen and put in order by each member of staff and kept for them.

The name always comes first (it opens the group); the chooser page moves the others up and down and
shows or hides them, without scripts, and "Save" keeps the choice for that user only.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.utils import label_for_field
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.text import capfirst

from .models import CustomerGroup, ListColumns

LIST_NAME = "groups"
FIXED = "name"


def optional_columns(model_admin) -> list[str]:
    """Every column but the name, in the list's own order."""
    return [name for name in model_admin.list_display if name != FIXED]


def chosen_columns(model_admin, user) -> list[str] | None:
    """The user's columns in their order (without the name), or None when they never chose."""
    saved = ListColumns.objects.filter(user=user, list_name=LIST_NAME).values_list("columns", flat=True).first()
    if saved is None:
        return None
    known = optional_columns(model_admin)
    return [name for name in saved if name in known]


def list_display_for(model_admin, request: HttpRequest) -> list[str]:
    chosen = chosen_columns(model_admin, request.user)
    return list(model_admin.list_display) if chosen is None else [FIXED, *chosen]


def choose_columns(model_admin, request: HttpRequest) -> HttpResponse:
    """GET shows the chooser; POST "move" reorders what is on the page, "save" keeps it, "reset" forgets it."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    known = optional_columns(model_admin)
    if request.method == "POST":
        order = [name for name in request.POST.getlist("order") if name in known]
        order += [name for name in known if name not in order]
        shown = {name for name in request.POST.getlist("shown") if name in known}
        if "reset" in request.POST:
            ListColumns.objects.filter(user=request.user, list_name=LIST_NAME).delete()
            model_admin.message_user(request, "The group list shows its usual columns again.")
            return redirect("admin:groups_customergroup_changelist")
        if "save" in request.POST:
            columns = [name for name in order if name in shown]
            ListColumns.objects.update_or_create(user=request.user, list_name=LIST_NAME, defaults={"columns": columns})
            model_admin.message_user(request, f"The group list shows {len(columns) + 1} columns, in your order.")
            return redirect("admin:groups_customergroup_changelist")
        name, _, direction = request.POST.get("move", "").partition(":")
        if name in order:
            at = order.index(name)
            to = at - 1 if direction == "up" else at + 1
            if 0 <= to < len(order):
                order[at], order[to] = order[to], order[at]
    else:
        chosen = chosen_columns(model_admin, request.user)
        chosen = known if chosen is None else chosen
        order = chosen + [name for name in known if name not in chosen]
        shown = set(chosen)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": CustomerGroup._meta,
        "title": "Columns of the group list",
        "fixed": capfirst(label_for_field(FIXED, CustomerGroup, model_admin)),
        "columns": [
            {"name": name, "label": capfirst(label_for_field(name, CustomerGroup, model_admin)), "shown": name in shown}
            for name in order
        ],
    }
    if request.method == "POST":
        messages.info(request, "Not saved yet: “Save” keeps these columns for you.")
    return TemplateResponse(request, "admin/groups/customergroup/columns.html", context)
