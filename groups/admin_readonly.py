"""The Settings tab for staff who may look but not change: the group's settings in words, as an editor
reads them in the form, rather than the raw value of every field."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html

from . import schedules
from .models import CustomerGroup
from .rules import Catalogue

READABLE_FIELDSETS = [
    (None, {"fields": ["name", "slug", "description", "kind", "tag_names"]}),
    ("Rules", {"fields": ["rules_in_words"], "description": "Who belongs to the group."}),
    ("Refresh", {"fields": ["refresh_in_words"]}),
    ("Activation", {"fields": ["activation_in_words"]}),
    ("Sync to other apps", {"fields": ["sync_enabled"]}),
]
READABLE_FIELDS = ["tag_names", "rules_in_words", "refresh_in_words", "activation_in_words"]


class ReadableSettings:
    """For a ModelAdmin of groups: what a view-only user's change form shows."""

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return READABLE_FIELDSETS
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and not self.has_change_permission(request, obj):
            fields += READABLE_FIELDS
        return fields

    @admin.display(description="Tags")
    def tag_names(self, group: CustomerGroup) -> str:
        return ", ".join(tag.name for tag in group.tags.all()) or "—"

    @admin.display(description="Rules")
    def rules_in_words(self, group: CustomerGroup) -> str:
        if not group.rules:
            return "No rules yet: the group has no members."
        return format_html(
            '<p id="rules-in-words">{}</p><details><summary>Rules as JSON</summary><pre>{}</pre></details>',
            group.rule_sentence(Catalogue.load()),
            json.dumps(group.rules, indent=2, ensure_ascii=False),
        )

    @admin.display(description="Refresh")
    def refresh_in_words(self, group: CustomerGroup) -> str:
        return schedules.describe(group)

    @admin.display(description="Activation")
    def activation_in_words(self, group: CustomerGroup) -> str:
        parts = ["Active" if group.is_active else "Inactive: it holds no members until activated"]
        if group.activate_at:
            parts.append(f"activates {_moment(group.activate_at)}")
        if group.deactivate_at:
            parts.append(f"deactivates {_moment(group.deactivate_at)}")
        return "; ".join(parts)


def _moment(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M %Z")  # the site's zone, said
