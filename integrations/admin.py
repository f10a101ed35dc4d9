"""Back-office pages for sync: connections (with "Test connection"), and the sync parts of the group pages.

`groups` must not import `integrations`, so the group admin is extended here (the Settings tab's
sync panel, the History tab's per-app columns, the list's Sync column) and registered in its place.
"""

from __future__ import annotations

import copy

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from config.refusals import needs_sentence
from groups import exports
from groups.admin import CustomerGroupAdmin
from groups.models import CustomerGroup

from . import marsello, services, status
from .models import Connection, GroupSync, ReceivedWebhook
from .providers.base import cleaned, kinds, provider_class
from .providers.webhook import new_secret

SETTING, SECRET = "setting_", "secret_"


class ConnectionForm(forms.ModelForm):
    """Name and consent, then the provider's own settings and secrets as fields (see `for_kind`)."""

    kind = ""

    class Meta:
        model = Connection
        fields = ["name", "consent"]

    @classmethod
    def for_kind(cls, kind: str, instance: Connection | None) -> type[ConnectionForm]:
        provider = provider_class(kind)
        stored = services._readable(instance.credentials) if instance and instance.pk else {}
        attrs: dict = {"kind": kind}
        for name, field in provider.settings_fields.items():
            attrs[SETTING + name] = _copy(field)
        for name, field in provider.credential_fields.items():
            secret = _copy(field)
            secret.widget = forms.PasswordInput(render_value=False)
            if name in stored:
                secret.required = False
                secret.help_text = f"Stored: {services.mask(str(stored[name]))}. Leave blank to keep it. " + str(
                    field.help_text)  # fmt: skip
            elif kind == "webhook":
                secret.required = False
                secret.help_text = "Leave blank to have one made (shown once). " + str(field.help_text)
            attrs[SECRET + name] = secret
        return type(f"{provider.__name__}ConnectionForm", (cls,), attrs)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, value in (self.instance.settings or {}).items():
            if SETTING + name in self.fields:
                self.initial.setdefault(SETTING + name, value)

    def clean(self):
        data = super().clean()
        provider = provider_class(self.kind)
        stored = services._readable(self.instance.credentials) if self.instance.pk else {}
        settings = {n: data.get(SETTING + n) for n in provider.settings_fields if data.get(SETTING + n) is not None}
        credentials = {n: data.get(SECRET + n) or stored.get(n) for n in provider.credential_fields}
        if self.kind == "webhook" and not credentials.get("secret"):
            credentials["secret"] = self.generated_secret = new_secret()
        credentials = {n: v for n, v in credentials.items() if v}
        try:
            self.clean_settings = cleaned(provider.settings_fields, settings, "Settings")
            self.clean_credentials = cleaned(provider.credential_fields, credentials, "Credentials")
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return data

    def save(self, commit: bool = True):
        self.instance.kind = self.kind
        self.instance.settings = self.clean_settings
        self.instance.credentials = self.clean_credentials
        return super().save(commit)


def _copy(field: forms.Field) -> forms.Field:
    return copy.deepcopy(field)


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = ["name", "app", "status_badge", "last_success_at", "error", "synced_groups"]
    list_filter = ["kind", "status"]
    search_fields = ["name"]
    readonly_fields = ["kind_label", "status", "account", "last_success_at", "last_error", "last_error_at"]

    @admin.display(description="App", ordering="kind")
    def app(self, connection: Connection) -> str:
        return _label(connection.kind)

    @admin.display(description="App")
    def kind_label(self, connection: Connection) -> str:
        return _label(connection.kind)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, connection: Connection):
        css = {"ok": "run-ok", "failing": "run-failed", "disabled": "run-failed"}.get(connection.status, "")
        return format_html('<span class="{}">{}</span>', css, connection.get_status_display())

    @admin.display(description="Last error")
    def error(self, connection: Connection) -> str:
        return connection.last_error[:120]

    @admin.display(description="Groups synced")
    def synced_groups(self, connection: Connection) -> int:
        return connection.syncs.exclude(state=GroupSync.State.OFF).count()

    def _kind(self, request, obj) -> str:
        return obj.kind if obj and obj.pk else request.GET.get("kind", "") or request.POST.get("kind", "")

    def get_form(self, request, obj=None, change=False, **kwargs):
        return ConnectionForm.for_kind(self._kind(request, obj), obj)

    def get_fieldsets(self, request, obj=None):
        provider = provider_class(self._kind(request, obj))
        fieldsets = [
            (None, {"fields": ["name", "consent"]}),
            ("Settings", {"fields": [SETTING + n for n in provider.settings_fields]}),
            ("Credentials", {"fields": [SECRET + n for n in provider.credential_fields],
                             "description": "Stored encrypted; never shown back in full."}),
        ]  # fmt: skip
        if obj and obj.pk:
            fieldsets.append(("Status", {"fields": self.readonly_fields}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj and obj.pk else []

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):  # the choice of app comes before Django's own check
            raise PermissionDenied(needs_sentence(["integrations.add_connection"]))
        kind = request.GET.get("kind") or request.POST.get("kind")
        if kind not in {p.kind for p in kinds()}:
            # Plain values: a template calls a class it is given, and that would instantiate it.
            providers = [{"kind": p.kind, "label": p.label, "target": p.target} for p in kinds()]
            context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                       "title": "Connect an app", "providers": providers}  # fmt: skip
            return TemplateResponse(request, "admin/integrations/connection/choose_kind.html", context)
        context = {**(extra_context or {}), "kind": kind, "title": f"Connect {_label(kind)}"}
        return super().add_view(request, form_url, context)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        secret = getattr(form, "generated_secret", None)
        if secret:
            self.message_user(request, f"Signing secret (shown only this once; give it to the receiver): {secret}",
                              messages.WARNING)  # fmt: skip

    def get_urls(self):
        test = self.admin_site.admin_view(require_POST(self.test_view))
        return [path("<path:object_id>/test/", test, name="integrations_connection_test"), *super().get_urls()]

    def test_view(self, request, object_id):
        connection = self.get_object(request, unquote(object_id))
        if connection is None:
            raise Http404("No such connection.")
        if not self.has_change_permission(request, connection):
            raise PermissionDenied
        ok, message = services.test_connection(connection)
        if ok:
            self.message_user(request, f"“{connection}” works: {message}", messages.SUCCESS)
            failing = connection.syncs.filter(state=GroupSync.State.FAILING)
            for sync in failing:
                services.resume(sync)
            if failing:
                self.message_user(request, f"{len(failing)} failing syncs resume from where they stopped.")
        else:
            self.message_user(request, f"“{connection}” does not work: {message}", messages.ERROR)
        return redirect(reverse("admin:integrations_connection_change", args=[connection.pk]))


def _label(kind: str) -> str:
    try:
        return provider_class(kind).label
    except ValueError:
        return kind


@admin.register(GroupSync)
class GroupSyncAdmin(admin.ModelAdmin):
    """Every group's sync at a glance; each is managed from its group's Settings tab."""

    list_display = ["group", "connection", "state", "last_synced_at", "last_reconcile_at", "last_error"]
    list_filter = ["state", "connection"]
    list_select_related = ["group", "connection"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# --- the group pages ---------------------------------------------------------------------------


class SyncingGroupAdmin(CustomerGroupAdmin):
    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("syncs__connection")

    @admin.display(description="Sync")
    def sync(self, group: CustomerGroup):
        syncs = [s for s in group.syncs.all() if s.state != GroupSync.State.OFF]
        if not syncs:
            return "Off"
        css = {"in_sync": "run-ok", "failing": "run-failed"}
        cells = ((css.get(s.state, ""), s.connection.name, s.get_state_display()) for s in syncs)
        held = "" if group.sync_enabled else " (held)"
        return format_html("{}{}", format_html_join(mark_safe("<br>"), '<span class="{}">{}: {}</span>', cells), held)

    def tab_context(self, request, group: CustomerGroup, tab: str) -> dict:
        context = super().tab_context(request, group, tab)
        if tab == "history":
            syncs = status.shown_syncs(group.pk)
            page = list(context["changes"].object_list)
            found = status.deliveries(syncs, page)
            for change in page:
                change.deliveries = found[change.id]
            context["history_apps"] = [s.connection.name for s in syncs]
            context["history_columns"] = 4 + max(1, len(syncs))
        elif tab == "settings":
            syncs = list(GroupSync.objects.filter(group=group).select_related("connection"))
            used = {s.connection_id for s in syncs if s.state != GroupSync.State.OFF}
            context["settings_panels"] = ["admin/integrations/group_sync_panel.html",
                                          "admin/integrations/marsello_panel.html"]  # fmt: skip
            context["group_syncs"] = [{"sync": s, **status.summary(s)} for s in syncs if s.state != GroupSync.State.OFF]
            context["connections_to_add"] = Connection.objects.exclude(pk__in=used).exclude(
                status=Connection.Status.DISABLED)  # fmt: skip
        return context

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(require_POST(function))

        return [
            path("<path:object_id>/marsello.csv", self.admin_site.admin_view(self.marsello_csv),
                 name="groups_customergroup_marsello_csv"),
            path("<path:object_id>/sync/on/", view(self.sync_on), name="groups_customergroup_sync_on"),
            path("<path:object_id>/sync/<int:sync_id>/<str:verb>/", view(self.sync_change),
                 name="groups_customergroup_sync_change"),
        ] + super().get_urls()  # fmt: skip

    def _group(self, request, object_id) -> CustomerGroup:
        group = self.get_object(request, unquote(object_id))
        if group is None:
            raise Http404("No such group.")
        if not self.has_change_permission(request, group):
            raise PermissionDenied
        return group

    def _settings(self, group: CustomerGroup) -> HttpResponseRedirect:
        return redirect(reverse("admin:groups_customergroup_change", args=[group.pk]) + "?tab=settings")

    def marsello_csv(self, request, object_id):
        group = self.get_object(request, unquote(object_id))
        if group is None:
            raise Http404("No such group.")
        if not self.has_view_permission(request, group) or not self.has_export_permission(request):
            raise PermissionDenied(exports.EXPORT_NEEDED)  # a file of members' names and emails
        return marsello.tag_csv_response(group)

    def sync_on(self, request, object_id):
        group = self._group(request, object_id)
        connection = Connection.objects.filter(pk=request.POST.get("connection")).first()
        if connection is None:
            self.message_user(request, "Choose a connected app.", messages.ERROR)
        else:
            services.turn_on(group, connection)
            self.message_user(request, f"“{group}” is being sent to {connection}: first its {group.member_count} "
                                       "members, then every change.")  # fmt: skip
        return self._settings(group)

    def sync_change(self, request, object_id, sync_id: int, verb: str):
        group = self._group(request, object_id)
        sync = GroupSync.objects.filter(pk=sync_id, group=group).select_related("connection").first()
        if sync is None:
            raise Http404("No such sync.")
        if verb == "pause":
            services.pause(sync)
            self.message_user(request, f"Sync to {sync.connection} paused; resuming sends what changed meanwhile.")
        elif verb == "resume":
            services.resume(sync)
            self.message_user(request, f"Sync to {sync.connection} resumes from where it stopped.")
        elif verb == "off":
            services.turn_off(sync)
            self.message_user(request, f"Sync to {sync.connection} turned off; its list or tag is removed there.")
        elif verb == "reconcile":
            from .tasks import reconcile

            remove = request.POST.get("remove_remote_only") == "1"
            reconcile.delay(sync.pk, remove)
            extra = " Members added there by hand will be removed." if remove else ""
            self.message_user(request, f"Reconcile with {sync.connection} queued; the report appears here.{extra}")
        else:
            raise Http404("No such operation.")
        return self._settings(group)


admin.site.unregister(CustomerGroup)
admin.site.register(CustomerGroup, SyncingGroupAdmin)


@admin.register(ReceivedWebhook)
class ReceivedWebhookAdmin(admin.ModelAdmin):
    """What the demo webhook receiver took: each delivery once, with how often it came again."""

    list_display = ["received_at", "event", "list_id", "members", "repeats"]
    list_filter = ["event"]
    readonly_fields = ["msg_id", "event", "received_at", "repeats", "payload"]

    @admin.display(description="List")
    def list_id(self, delivery: ReceivedWebhook) -> str:
        return str(delivery.payload.get("data", {}).get("list_id", ""))

    @admin.display(description="Members")
    def members(self, delivery: ReceivedWebhook) -> str:
        people = delivery.payload.get("data", {}).get("members", [])
        shown = ", ".join(m.get("email") or str(m.get("customer_id")) for m in people[:5])
        return f"{len(people)}: {shown}{'…' if len(people) > 5 else ''}" if people else ""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
