"""Back-office pages for automations: triggers, firings, tasks ("My open tasks"), one-off sends, and the Automations
tab on the group page and firings on the customer page, added from this side (groups imports nothing here)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from customers.models import Customer
from groups.models import CustomerGroup

from . import sends
from .models import Firing, Send, SendRecipient, Task, Trigger

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


class RecipientInline(ReadOnly, admin.TabularInline):
    model = SendRecipient
    fields = ["customer", "status", "detail", "finished_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0

    def get_queryset(self, request):
        # The page shows the latest results; the API and the recipients list have them all.
        return super().get_queryset(request).select_related("customer").order_by("-finished_at", "-id")


@admin.register(Send)
class SendAdmin(admin.ModelAdmin):
    list_display = ["name", "group", "channel", "status", "scheduled_for", "started_at", "finished_at"]
    list_filter = ["status", "channel", "group"]
    autocomplete_fields = ["group"]
    filter_horizontal = ["suppressed_by"]
    fields = ["name", "group", "channel", "settings", "suppressed_by"]
    change_form_template = "admin/automations/send/change_form.html"

    def get_readonly_fields(self, request, obj=None):
        return self.fields if obj is not None and not obj.can_cancel else []

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path("<int:send_id>/schedule/", view(self.schedule_view), name="automations_send_schedule"),
            path("<int:send_id>/cancel/", view(self.cancel_view), name="automations_send_cancel"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        send = Send.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        context = dict(extra_context or {})
        if send is not None:
            customer_id = request.GET.get("customer", "")
            customer = Customer.objects.filter(pk=customer_id).first() if customer_id.isdigit() else None
            progress = sends.progress(send)
            context.update(preview=sends.preview(send, customer), progress=progress,
                           percent=round(100 * progress["done"] / progress["total"]) if progress["total"] else 0,
                           will_receive=sends.audience(send).count() if send.can_cancel else None,
                           can_send=self.has_change_permission(request, send))  # fmt: skip
        return super().change_view(request, object_id, form_url, context)

    def schedule_view(self, request, send_id: int):
        send = self._posted(request, send_id)
        at = None
        if request.POST.get("at"):
            at = parse_datetime(request.POST["at"])
            if at is None:
                self.message_user(request, "The time to send is not a date and time.", messages.ERROR)
                return redirect("admin:automations_send_change", send_id)
            at = timezone.make_aware(at) if timezone.is_naive(at) else at
        if sends.schedule(send, at):
            self.message_user(request, f"Scheduled for {timezone.localtime(at):%Y-%m-%d %H:%M}." if at else "Sending.")
        else:
            self.message_user(request, "This send has already started or was cancelled.", messages.ERROR)
        return redirect("admin:automations_send_change", send_id)

    def cancel_view(self, request, send_id: int):
        send = self._posted(request, send_id)
        if sends.cancel(send):
            self.message_user(request, "Cancelled.")
        else:
            self.message_user(request, "Too late to cancel: the send has started.", messages.ERROR)
        return redirect("admin:automations_send_change", send_id)

    def _posted(self, request, send_id: int) -> Send:
        if request.method != "POST":
            raise PermissionDenied
        send = Send.objects.filter(pk=send_id).first()
        if send is None or not self.has_change_permission(request, send):
            raise PermissionDenied
        return send

    def get_inlines(self, request, obj):
        return [RecipientInline] if obj is not None else []
