"""The API keys page: superusers only; a key is shown in full once, when it is created."""

from __future__ import annotations

from django.contrib import admin, messages
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from .models import ApiKey

# DRF's own page lists every key in clear to anyone with its view permission.
admin.site.unregister(TokenProxy)


@admin.register(ApiKey)
class ApiKeyAdmin(TokenAdmin):
    list_display = ("prefix", "user", "created")

    @admin.display(description="key")
    def prefix(self, key: ApiKey) -> str:
        return f"{key.key[:4]}…"

    # A key writes through the API as its owner: only superusers, who could act as anyone anyway,
    # may see or make them, whatever permissions a role grants.
    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a key is made or revoked, never edited

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        messages.warning(request, f"The new API key for {obj.user} is {obj.key} — copy it now: it is not shown again.")
