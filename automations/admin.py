"""Back-office pages for automations: triggers, firings, tasks ("My open tasks"), and the Automations
tab on the group page and firings on the customer page, added from this side (groups imports nothing here)."""

from __future__ import annotations

from django.contrib import admin

from customers.models import Customer
from groups.models import CustomerGroup

from .models import Firing, Task, Trigger

FIRINGS_SHOWN = 50


@admin.register(Trigger)
class TriggerAdmin(admin.ModelAdmin):
    list_display = ["name", "group", "on", "action", "is_active", "last_fired_at", "failure_count"]
    list_filter = ["is_active", "action", "on", "group"]
    search_fields = ["name", "group__name"]
    autocomplete_fields = ["group"]
    filter_horizontal = ["suppressed_by"]
    readonly_fields = ["last_fired_at", "last_error", "failure_count"]
    fieldsets = [
        (None, {"fields": ["name", "group", "on", "is_active"]}),
        ("Action", {"fields": ["action", "settings"], "description": "Each action's settings: docs/automations.md."}),
        ("Policy", {"fields": ["reentry", "cooldown", "minimum_time", "origin", "suppressed_by", "quiet_start",
                               "quiet_end"]}),
        ("Last result", {"fields": ["last_fired_at", "last_error", "failure_count"]}),
    ]  # fmt: skip


class ReadOnly:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Firing)
class FiringAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["created_at", "trigger", "customer", "reason", "status", "detail", "finished_at"]
    list_filter = ["status", "trigger__group", "trigger"]
    list_select_related = ["trigger", "customer"]
    raw_id_fields = ["customer"]
    show_full_result_count = False


class MineFilter(admin.SimpleListFilter):
    title = "assignee"
    parameter_name = "mine"

    def lookups(self, request, model_admin):
        return [("1", "Me")]

    def queryset(self, request, queryset):
        return queryset.filter(assignee=request.user) if self.value() == "1" else queryset


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["title", "customer", "group", "assignee", "due_date", "status"]
    list_filter = [MineFilter, "status", "assignee", "group"]
    list_editable = ["status"]
    list_select_related = ["customer", "group", "assignee"]
    raw_id_fields = ["customer", "firing"]
    search_fields = ["title", "customer__email", "customer__first_name", "customer__last_name"]


class FiringInline(ReadOnly, admin.TabularInline):
    model = Firing
    fields = ["created_at", "trigger", "status", "detail", "finished_at"]
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "Automations: what was sent, skipped or failed"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("trigger")


def group_automations_context(group: CustomerGroup) -> dict:
    return {
        "tab_template": "admin/automations/group_tab.html",
        "triggers": Trigger.objects.filter(group=group).order_by("name"),
        "firings": Firing.objects.filter(trigger__group=group).select_related("trigger", "customer")[:FIRINGS_SHOWN],
        "firing_counts": {
            status: Firing.objects.filter(trigger__group=group, status=status).count()
            for status in Firing.Status.values
        },  # fmt: skip
    }


# Extend whatever admin is registered for groups and customers, so other apps' extensions stay in place.
GroupAdmin = type(admin.site.get_model_admin(CustomerGroup))
CustomerAdmin = type(admin.site.get_model_admin(Customer))


class GroupAdminWithAutomations(GroupAdmin):
    tabs = (*GroupAdmin.tabs, ("automations", "Automations"))

    def tab_context(self, request, group, tab):
        if tab == "automations":
            return group_automations_context(group)
        return super().tab_context(request, group, tab)


class CustomerAdminWithAutomations(CustomerAdmin):
    inlines = [*CustomerAdmin.inlines, FiringInline]


admin.site.unregister(CustomerGroup)
admin.site.register(CustomerGroup, GroupAdminWithAutomations)
admin.site.unregister(Customer)
admin.site.register(Customer, CustomerAdminWithAutomations)
# The index says how many tasks wait for the signed-in manager (templatetags/automations.py).
admin.site.index_template = "admin/automations/index.html"
