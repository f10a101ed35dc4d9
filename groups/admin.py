"""Back-office pages for groups: the group list, the group page with its tabs, and read-only history and runs."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from config.refusals import needs_sentence
from customers.models import Customer

from . import admin_columns, admin_health, admin_tabs, admin_views, charts, exports, rule_history, schedules, services
from .admin_readonly import ReadableSettings
from .dependencies import dependants_of
from .forms import CustomerGroupForm
from .models import CustomerGroup, Membership, MembershipChange, RefreshRun, SizeSnapshot, Tag

SPARKLINE_DAYS = 30


class ReadOnlyAdmin(admin.ModelAdmin):
    """Membership, history and runs are written by the membership engine only, never by hand here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class RunStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("ok", "Succeeded"), ("failing", "Failed or failing"), ("never", "Never run"),
                ("inactive", "Inactive")]  # fmt: skip

    def queryset(self, request, queryset):
        if self.value() == "ok":
            return queryset.filter(last_run_status=CustomerGroup.RunStatus.SUCCEEDED)
        if self.value() == "failing":
            return queryset.filter(
                last_run_status__in=[CustomerGroup.RunStatus.FAILED, CustomerGroup.RunStatus.FAILING]
            )
        if self.value() == "never":
            return queryset.filter(last_run_status="")
        if self.value() == "inactive":
            return queryset.filter(is_active=False)
        return queryset


@admin.register(CustomerGroup)
class CustomerGroupAdmin(ReadableSettings, admin.ModelAdmin):
    form = CustomerGroupForm
    list_display = ["name", "kind_short", "active", "members", "trend", "refresh", "last_refreshed",
                    "next_run", "tag_list", "sync"]  # fmt: skip
    list_display_links = ["name"]
    list_filter = ["tags", "kind", RunStatusFilter, "refresh_mode", "is_active"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["tags"]
    actions = ["refresh_groups", "activate_groups", "deactivate_groups", "duplicate_groups", "export_groups",
               "delete_groups"]  # fmt: skip
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "kind", "tags"]}),
        ("Rules", {"fields": ["rules"], "description": "Who belongs to the group. Manual groups have no rules."}),
        (
            "Refresh",
            {
                "fields": [
                    "refresh_mode",
                    "schedule_frequency",
                    "schedule_time",
                    "schedule_minute",
                    "schedule_weekdays",
                    "schedule_day",
                    "schedule_cron",
                    "time_zone",
                ]
            },
        ),
        ("Activation", {"fields": ["is_active", "activate_at", "deactivate_at"]}),
        ("Sync to other apps", {"fields": ["sync_enabled"]}),
    ]

    class Media:
        js = ["groups/group_form.js"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and not obj.is_dynamic:
            # A manual group is never refreshed: refresh mode and schedule mean nothing for it.
            return [(name, options) for name, options in fieldsets if name not in ("Rules", "Refresh")]
        return fieldsets

    # --- the list ----------------------------------------------------------------------------------

    def get_queryset(self, request):
        since = timezone.now() - timedelta(days=SPARKLINE_DAYS)
        daily = SizeSnapshot.objects.filter(kind=SizeSnapshot.Kind.DAILY, taken_at__gte=since).order_by("taken_at")
        return (
            super()
            .get_queryset(request)
            .prefetch_related("tags", Prefetch("size_snapshots", queryset=daily, to_attr="recent_sizes"))
        )

    @admin.display(description="Kind", ordering="kind")
    def kind_short(self, group: CustomerGroup) -> str:
        return "Dynamic" if group.is_dynamic else "Manual"

    @admin.display(description="Active", boolean=True, ordering="is_active")
    def active(self, group: CustomerGroup) -> bool:
        return group.is_active

    @admin.display(description="Members", ordering="member_count")
    def members(self, group: CustomerGroup) -> int:
        return group.member_count

    @admin.display(description=f"Trend ({SPARKLINE_DAYS} days)")
    def trend(self, group: CustomerGroup):
        return charts.sparkline(admin_tabs.recent_sizes(group))

    @admin.display(description="Refresh mode", ordering="refresh_mode")
    def refresh(self, group: CustomerGroup) -> str:
        return group.get_refresh_mode_display() if group.is_dynamic else "—"

    @admin.display(description="Last refreshed", ordering="last_refreshed_at")
    def last_refreshed(self, group: CustomerGroup):
        if not group.is_dynamic:
            return "—"
        when = (
            timezone.localtime(group.last_refreshed_at).strftime("%d %b %H:%M %Z") if group.last_refreshed_at else "—"
        )
        status = group.last_run_status
        if status in (CustomerGroup.RunStatus.FAILED, CustomerGroup.RunStatus.FAILING):
            # Failures stand out: red, with the error one hover away.
            return format_html(
                '{}<br><strong class="run-failed" title="{}">✖ {}</strong>',
                when,
                group.last_error,
                group.get_last_run_status_display(),
            )
        if status == CustomerGroup.RunStatus.SUCCEEDED:
            return format_html('{}<br><span class="run-ok">✔ Succeeded</span>', when)
        return when

    @admin.display(description="Next run")
    def next_run(self, group: CustomerGroup) -> str:
        if not group.is_dynamic:
            return "—"
        if not group.is_active:
            return "Inactive"
        upcoming = schedules.next_runs(group, 1)
        return upcoming[0].strftime("%d %b %H:%M %Z") if upcoming else "On events"

    @admin.display(description="Tags")
    def tag_list(self, group: CustomerGroup):
        return format_html_join(" ", '<span class="group-tag">{}</span>', ((t.name,) for t in group.tags.all()))

    @admin.display(description="Sync")
    def sync(self, group: CustomerGroup) -> str:
        return "On (no connected apps)" if group.sync_enabled else "Off"

    def get_list_display(self, request):
        return admin_columns.list_display_for(self, request)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_refresh": self.has_change_permission(request)}
        return super().changelist_view(request, extra_context)

    # --- actions -----------------------------------------------------------------------------------

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # replaced by delete_groups, which says what deletion removes
        return actions

    @admin.action(description="Refresh selected groups", permissions=["change"])
    def refresh_groups(self, request, queryset):
        dynamic = [g for g in queryset if g.is_dynamic]
        for group in dynamic:
            services.queue_refresh(group, initiated_by=request.user)
        skipped = len(queryset) - len(dynamic)
        note = f" ({skipped} manual groups skipped: they change only by hand)" if skipped else ""
        self.message_user(request, f"Refresh queued for {len(dynamic)} groups{note}.")

    @admin.action(description="Activate selected groups", permissions=["change"])
    def activate_groups(self, request, queryset):
        changed = [g for g in queryset if not g.is_active]
        for group in changed:
            services.set_active(group, True, initiated_by=request.user)
        self.message_user(request, f"{len(changed)} groups activated.")

    @admin.action(description="Deactivate selected groups", permissions=["change"])
    def deactivate_groups(self, request, queryset):
        changed = [g for g in queryset if g.is_active]
        for group in changed:
            services.set_active(group, False, initiated_by=request.user)
        self.message_user(request, f"{len(changed)} groups deactivated; they hold no members until activated.")

    @admin.action(description="Duplicate selected groups", permissions=["add"])
    def duplicate_groups(self, request, queryset):
        copies = [services.duplicate_group(group, initiated_by=request.user) for group in queryset]
        self.message_user(request, f"{len(copies)} groups duplicated: " + ", ".join(c.name for c in copies) + ".")

    def has_export_permission(self, request) -> bool:
        """Members' emails and phones leave with an export: it takes a permission of its own."""
        return exports.may_export(request.user)

    @admin.action(description="Export members of selected groups as CSV", permissions=["export"])
    def export_groups(self, request, queryset):
        groups = list(queryset)
        if len(groups) == 1:
            return exports.export_response(groups[0])
        # Several groups: each customer once, whichever of the groups they are in.
        customers = Customer.objects.filter(group_memberships__group__in=groups).distinct()
        return exports.export_response(customers, filename="groups.csv")

    @admin.action(description="Delete selected groups", permissions=["delete"])
    def delete_groups(self, request, queryset):
        return self._delete_confirmation(request, list(queryset), from_action=True)

    def _delete_confirmation(self, request, groups: list[CustomerGroup], *, from_action: bool):
        """Like Django's delete_selected: a summary of what goes, then the same POST with "post"=yes deletes."""
        if not self.has_delete_permission(request):
            raise PermissionDenied(needs_sentence(["groups.delete_customergroup"]))
        if request.POST.get("post") == "yes":
            names = ", ".join(g.name for g in groups)
            doomed = CustomerGroup.objects.filter(pk__in=[g.pk for g in groups])
            with transaction.atomic():
                self.log_deletions(request, doomed)
                doomed.delete()
            self.message_user(request, f"Deleted {len(groups)} groups: {names}.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:groups_customergroup_changelist"))
        ids = [g.pk for g in groups]
        summary = [
            {
                "group": g,
                "members": g.member_count,
                "history": MembershipChange.objects.filter(group=g).count(),
                "runs": RefreshRun.objects.filter(group=g).count(),
                "scheduled": schedules.is_scheduled(g),
                "dependants": [d.name for d in dependants_of(g) if d.pk not in ids],
            }
            for g in groups
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Are you sure?",
            "opts": self.model._meta,
            "summary": summary,
            "queryset": groups,
            "from_action": from_action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/groups/customergroup/delete_confirmation.html", context)

    def delete_view(self, request, object_id, extra_context=None):
        group = self.get_object(request, unquote(object_id))
        if group is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        return self._delete_confirmation(request, [group], from_action=False)

    # --- the group page ----------------------------------------------------------------------------

    def get_urls(self):
        return admin_views.urls(self) + admin_health.urls(self) + super().get_urls()

    def index_links(self, request) -> list[tuple[str, str]]:
        """The group health page on the back office's home page, beside the groups (config.admin_site)."""
        return (
            [("Group health", reverse("admin:groups_customergroup_health"))]
            if self.has_view_permission(request)
            else []
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "rules" in form.base_fields:
            form.base_fields["rules"].widget.preview_url = reverse("admin:groups_customergroup_preview")
            form.base_fields["rules"].widget.values_url = reverse("admin:groups_customergroup_values")
        return form

    # Apps that add a tab of their own extend `tabs` and `tab_context`; the tab's context names its
    # template as `tab_template`.
    tabs = admin_tabs.TABS

    def change_view(self, request, object_id, form_url="", extra_context=None):
        group = self.get_object(request, unquote(object_id))
        if group is None or not self.has_view_or_change_permission(request, group):
            return super().change_view(request, object_id, form_url, extra_context)
        # A posted form that comes back has errors to show, and those are on the Settings tab.
        tab = "settings" if request.method == "POST" else request.GET.get("tab", "members")
        tab = tab if tab in dict(self.tabs) else "members"
        context = {
            "tab": tab,
            "tabs": self.tabs,
            "can_change": self.has_change_permission(request, group),
            "can_add": self.has_add_permission(request),
            "can_delete": self.has_delete_permission(request, group),
            "can_view_customers": request.user.has_perm("customers.view_customer"),
            "can_export": self.has_export_permission(request),
        }
        context.update(self.tab_context(request, group, tab))
        return super().change_view(request, object_id, form_url, {**context, **(extra_context or {})})

    def tab_context(self, request, group: CustomerGroup, tab: str) -> dict:
        """The open tab's context; apps that extend the group page (sync, automations) add to it."""
        if tab == "members":
            return admin_tabs.members_context(group, request.GET)
        if tab == "history":
            return admin_tabs.history_context(group, request.GET)
        return admin_tabs.settings_context(group) | (
            rule_history.history_context(group, request.GET) if group.is_dynamic else {}
        )

    def response_change(self, request, obj):
        response = super().response_change(request, obj)
        if "_continue" in request.POST and isinstance(response, HttpResponseRedirect):
            response["Location"] = reverse("admin:groups_customergroup_change", args=[obj.pk]) + "?tab=settings"
        return response

    def save_model(self, request, obj: CustomerGroup, form, change: bool) -> None:
        """Rules and activation go through the services, so every change is refreshed and recorded."""
        if not change:
            obj.save()
            return
        saved = CustomerGroup.objects.get(pk=obj.pk)
        rules, active = obj.rules, obj.is_active
        obj.rules, obj.is_active = saved.rules, saved.is_active
        # Only what the form edits: the run status and counters on the row belong to the engine.
        columns = {field.name for field in CustomerGroup._meta.concrete_fields} - {"rules", "is_active", "kind"}
        edited = [name for name in form.changed_data if name in columns]
        # The slug may follow a new name without being edited itself (see the form).
        obj.save(update_fields=[*dict.fromkeys([*edited, "slug"]), "schedule", "updated_at"])
        form.pending_changes = (rules, active)  # on the form: one per request

    def save_related(self, request, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        group = form.instance
        if not change:
            services.fill_new_group(group, initiated_by=request.user)
            return
        rules, active = form.pending_changes
        services.apply_settings(group, rules=rules, is_active=active, initiated_by=request.user)


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["group", "customer", "added_at"]
    list_filter = ["group"]
    list_select_related = ["group", "customer"]
    raw_id_fields = ["customer"]
    show_full_result_count = False


@admin.register(MembershipChange)
class MembershipChangeAdmin(ReadOnlyAdmin):
    list_display = ["changed_at", "group", "customer", "change", "reason", "rule_version", "run"]
    list_filter = ["change", "reason", "group"]
    list_select_related = ["group", "customer"]
    raw_id_fields = ["customer", "run"]
    show_full_result_count = False


@admin.register(RefreshRun)
class RefreshRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "group", "status", "reason", "created_at", "added", "removed", "duration_ms"]
    list_filter = ["status", "reason", "group"]
    list_select_related = ["group"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ["name"]


# The customer pages' group parts live in the groups app, which may import customers (not the reverse).
from . import admin_customers  # noqa: E402,F401
