"""The group parts of the customer pages: filter by group (in it or not), add/remove to manual groups, the
list's CSV export, and "why" (or why not) per group.

`customers` must not import `groups`, so this module extends the customer admin from the groups side
and registers the extended class in place of the plain one.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from customers.admin import CustomerAdmin
from customers.models import Customer

from . import exports, membership_filters, services
from .forms import ChooseGroupForm
from .models import CustomerGroup, Membership
from .rules import Catalogue, validate_rules

# The export's own parameters; everything else in the address is the list's filters and search.
EXPORT_PARAMETERS = ("columns", "bom")


class InGroupFilter(admin.SimpleListFilter):
    title = "group membership"
    parameter_name = "in_group"
    condition = staticmethod(membership_filters.in_group)

    def lookups(self, request, model_admin):
        return list(CustomerGroup.objects.order_by("name").values_list("pk", "name"))

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(self.condition(int(value)))
        return queryset


class NotInGroupFilter(InGroupFilter):
    title = "not in group"
    parameter_name = "not_in_group"
    condition = staticmethod(membership_filters.not_in_group)


class GroupAwareCustomerAdmin(CustomerAdmin):
    actions = ["add_to_group", "remove_from_group"]

    def get_list_filter(self, request):
        return [InGroupFilter, NotInGroupFilter, *super().get_list_filter(request)]

    def get_urls(self):
        export = self.admin_site.admin_view(self.export_view)
        return [path("export/", export, name="customers_customer_export"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        context = {**(extra_context or {})}
        if exports.may_export(request.user):
            query = request.GET.urlencode()
            context["export_url"] = reverse("admin:customers_customer_export") + (f"?{query}" if query else "")
        return super().changelist_view(request, context)

    def export_view(self, request):
        """The customers the list shows (its filters and search) as the API's CSV export writes them."""
        if not exports.may_export(request.user):
            raise PermissionDenied(exports.EXPORT_NEEDED)
        params = request.GET.copy()
        chosen = {name: params.pop(name, [None])[-1] for name in EXPORT_PARAMETERS}
        request.GET = params  # the change list reads its filters from here, and refuses names it does not know
        try:
            customers = self.get_changelist_instance(request).queryset
        except IncorrectLookupParameters as exc:
            return HttpResponse(f"These filters cannot be applied: {exc}", status=400, content_type="text/plain")
        try:
            return exports.export_response(customers, chosen["columns"], chosen["bom"] == "1", filename="customers.csv")
        except exports.ColumnsInvalid as exc:
            return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")

    @admin.action(description="Add selected customers to a manual group", permissions=["change"])
    def add_to_group(self, request, queryset):
        return self._edit_group(request, queryset, add=True)

    @admin.action(description="Remove selected customers from a manual group", permissions=["change"])
    def remove_from_group(self, request, queryset):
        return self._edit_group(request, queryset, add=False)

    def _edit_group(self, request, queryset, *, add: bool):
        """First the page to choose the group; its form posts back to this action with "apply"."""
        if not request.user.has_perm("groups.change_customergroup"):
            self.message_user(request, "You may not change groups.", messages.ERROR)
            return None
        form = ChooseGroupForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            group = form.cleaned_data["group"]
            ids = list(queryset.values_list("pk", flat=True))
            if add:
                changed = services.add_members(group, ids, initiated_by=request.user)
                self.message_user(
                    request, f"{changed} customers added to “{group}” ({len(ids) - changed} already in it)."
                )
            else:
                changed = services.remove_members(group, ids, initiated_by=request.user)
                self.message_user(
                    request, f"{changed} customers removed from “{group}” ({len(ids) - changed} were not in it)."
                )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Add to a manual group" if add else "Remove from a manual group",
            "opts": self.model._meta,
            "form": form,
            "queryset": queryset,
            "count": queryset.count(),
            "action": "add_to_group" if add else "remove_from_group",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
            "no_manual_groups": not CustomerGroup.objects.filter(kind=CustomerGroup.Kind.MANUAL).exists(),
        }
        return TemplateResponse(request, "admin/customers/customer/choose_group.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = {**(extra_context or {})}
        if object_id and object_id.isdigit() and request.user.has_perm("groups.view_customergroup"):
            customer_id = int(object_id)
            context["customer_groups"] = group_explanations(customer_id)
            context["other_groups"] = groups_not_in(customer_id)
            chosen = request.GET.get("why_not", "")
            if chosen.isdigit():
                context["why_not"] = why_not(customer_id, int(chosen))
        return super().change_view(request, object_id, form_url, context)


def group_explanations(customer_id: int) -> list[dict]:
    """Each group the customer is in; for dynamic ones, the rule explained for this customer ("why")."""
    memberships = Membership.objects.filter(customer_id=customer_id).select_related("group").order_by("group__name")
    catalogue = Catalogue.load()
    now = timezone.now()
    found = []
    for membership in memberships:
        group = membership.group
        item = {"group": group, "added_at": membership.added_at, "why": None}
        if group.is_dynamic and group.rules:
            item["why"] = group.explain(customer_id, catalogue, now)
        found.append(item)
    return found


def groups_not_in(customer_id: int) -> list[CustomerGroup]:
    """The dynamic groups the customer is not in: those whose rules can say why not."""
    return list(
        CustomerGroup.objects.dynamic()
        .exclude(memberships__customer_id=customer_id)
        .order_by("name")
        .only("pk", "name", "is_active")
    )


def why_not(customer_id: int, group_id: int) -> dict | None:
    """The group's rules explained for a customer who is not in it: which part does not hold, with the
    values that decided. None for a group the customer is in, or without rules."""
    group = CustomerGroup.objects.dynamic().exclude(memberships__customer_id=customer_id).filter(pk=group_id).first()
    if group is None or not group.rules:
        return None
    catalogue = Catalogue.load()
    problems = validate_rules(group.rules, catalogue=catalogue, group_id=group.pk)
    if problems:  # stored rules can stop being valid (a deleted group, a changed attribute type)
        return {"group": group, "why": None, "problem": "; ".join(p["message"] for p in problems)}
    return {"group": group, "why": group.explain(customer_id, catalogue, timezone.now()), "problem": ""}


admin.site.unregister(Customer)
admin.site.register(Customer, GroupAwareCustomerAdmin)
