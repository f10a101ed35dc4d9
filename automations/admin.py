"""Back-office pages for automations: triggers, firings, tasks ("My open tasks"), one-off sends, and the Automations
tab on the group page and firings on the customer page, added from this side (groups imports nothing here)."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from customers.models import Customer
from groups.models import CustomerGroup

from . import previews, sends
from .actions import action_class
from .forms import SECRET_SETTINGS, SendForm, TriggerForm, setting_field_name
from .models import Firing, Send, SendRecipient, Task, Trigger

FIRINGS_SHOWN = 50


def settings_in_words(kind: str, settings: dict):
    """An action's settings as its form's labels and values, for pages that show rather than edit them."""
    parts = [
        (
            field.label,
            "(stored, not shown)" if name in SECRET_SETTINGS and settings.get(name) else settings.get(name, ""),
        )
        for name, field in action_class(kind).settings_fields.items()
    ]
    return format_html_join("", '<p><strong>{}</strong></p><pre style="white-space:pre-wrap">{}</pre>', parts)


@admin.register(Trigger)
class TriggerAdmin(admin.ModelAdmin):
    form = TriggerForm
    list_display = ["name", "group", "on", "action", "is_active", "last_fired_at", "failure_count"]
    list_filter = ["is_active", "action", "on", "group"]
    search_fields = ["name", "group__name"]
    autocomplete_fields = ["group"]
    filter_horizontal = ["suppressed_by"]
    change_form_template = "admin/automations/trigger/change_form.html"

    def get_fieldsets(self, request, obj=None):
        # Whoever may only look reads the chosen action's settings in words; editors get every action's fields.
        editing = self.has_change_permission(request, obj) if obj is not None else True
        fieldsets = [
            (None, {"fields": ["name", "group", "on", "is_active", "action"]}),
            *(TriggerForm.action_fieldsets() if editing else [("Settings", {"fields": ["action_settings"]})]),
            ("Policy", {"fields": ["reentry", "cooldown", "minimum_time", "origin", "suppressed_by", "quiet_start",
                                   "quiet_end"]}),
        ]  # fmt: skip
        if obj is not None:
            fieldsets.append(("Last result", {"fields": ["last_fired_at", "last_error", "failure_count"]}))
        if obj is not None and request.user.is_superuser:
            # What the API returns, for whoever scripts triggers; the fields above are how they are edited.
            fieldsets.append(("As stored", {"fields": ["settings_json"], "classes": ["collapse"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return ["last_fired_at", "last_error", "failure_count", "settings_json", "action_settings"]

    @admin.display(description="Settings")
    def action_settings(self, trigger: Trigger):
        return settings_in_words(trigger.action, trigger.settings or {})

    @admin.display(description="Settings (JSON, as the API has them)")
    def settings_json(self, trigger: Trigger):
        shown = {n: ("(hidden)" if n in SECRET_SETTINGS else v) for n, v in (trigger.settings or {}).items()}
        return format_html("<pre>{}</pre>", json.dumps(shown, indent=2, ensure_ascii=False))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        found = Trigger.objects.select_related("group").filter(pk=object_id) if str(object_id).isdigit() else None
        trigger = found.first() if found is not None else None
        context = dict(extra_context or {})
        if trigger is not None:
            context.update(
                preview_context(trigger.action, trigger.settings, trigger.group, request.GET.get("preview", ""))
            )
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self):
        preview = self.admin_site.admin_view(require_POST(self.preview_view))
        return [path("preview/", preview, name="automations_trigger_preview"), *super().get_urls()]

    def preview_view(self, request):
        """The form's settings as they are on the page, saved or not, rendered for a member of its group."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        kind = request.POST.get("action", "")
        group_id = request.POST.get("group", "")
        group = CustomerGroup.objects.filter(pk=group_id).first() if group_id.isdigit() else None
        if kind not in Trigger.Action.values or group is None:
            context = {"preview": {"error": "Choose a group and an action to preview."}}
        else:
            settings = {name: request.POST.get(setting_field_name(kind, name), "")
                        for name in action_class(kind).settings_fields}  # fmt: skip
            context = preview_context(kind, settings, group, request.POST.get("preview", ""))
        context["preview_url"] = reverse("admin:automations_trigger_preview")
        return TemplateResponse(request, "admin/automations/preview.html", context)


def preview_context(kind: str, settings: dict, group: CustomerGroup, query: str) -> dict:
    customer = previews.find_member(group, query)
    return {
        "preview": previews.render_for(kind, settings, group, customer),
        "preview_query": query,
        "preview_group": group,
        "group_is_empty": not previews.members(group).exists(),
    }


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
    form = SendForm
    list_display = ["name", "group", "channel", "status", "scheduled_for", "started_at", "finished_at"]
    list_filter = ["status", "channel", "group"]
    autocomplete_fields = ["group"]
    filter_horizontal = ["suppressed_by"]
    change_form_template = "admin/automations/send/change_form.html"

    def get_fieldsets(self, request, obj=None):
        # Started, or for whoever may only look: what it is, in words.
        if obj is not None and (not obj.can_cancel or not self.has_change_permission(request, obj)):
            return [(None, {"fields": ["name", "group", "channel", "message", "suppressed_by"]})]
        return [(None, {"fields": ["name", "group", "channel"]}), *SendForm.action_fieldsets(),
                (None, {"fields": ["suppressed_by"]})]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        started = obj is not None and not obj.can_cancel
        return ["name", "group", "channel", "message", "suppressed_by"] if started else []

    @admin.display(description="Message")
    def message(self, send: Send):
        return settings_in_words(send.channel, send.settings or {})

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
            query = request.GET.get("preview", "")
            customer = previews.find_member(send.group, query) if query else None
            progress = sends.progress(send)
            preview = (sends.preview(send, customer) if customer or not query else
                       {"customer": None, "error": f"No member of the group matches “{query}”."})  # fmt: skip
            context.update(preview=preview, preview_query=query, preview_group=send.group, progress=progress,
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
