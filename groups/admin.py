"""Back-office pages for groups: simple registrations until the group admin is built."""

from __future__ import annotations

from django.contrib import admin

from .models import CustomerGroup, Membership, MembershipChange, RefreshRun, Tag


class ReadOnlyAdmin(admin.ModelAdmin):
    """Membership, history and runs are written by the membership engine only, never by hand here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CustomerGroup)
class CustomerGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "refresh_mode", "is_active", "member_count", "last_refreshed_at",
                    "last_run_status"]  # fmt: skip
    list_filter = ["kind", "refresh_mode", "is_active", "tags"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["tags"]
    readonly_fields = ["member_count", "last_refreshed_at", "last_scheduled_run_at", "last_run_status",
                       "last_error", "failure_count", "created_at", "updated_at"]  # fmt: skip


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
