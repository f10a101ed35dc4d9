"""The automations API: triggers, their firings (also per group and per customer) and manager tasks."""

from __future__ import annotations

from django.db import transaction
from django_filters import rest_framework as filters
from rest_framework import mixins, serializers, viewsets

from groups.models import CustomerGroup

from .actions import action_class
from .models import Firing, Task, Trigger


class TriggerSerializer(serializers.ModelSerializer):
    group = serializers.PrimaryKeyRelatedField(queryset=CustomerGroup.objects.all())
    suppressed_by = serializers.PrimaryKeyRelatedField(queryset=CustomerGroup.objects.all(), many=True, required=False)

    class Meta:
        model = Trigger
        fields = ["id", "name", "group", "on", "action", "settings", "is_active", "reentry", "cooldown",
                  "minimum_time", "origin", "suppressed_by", "quiet_start", "quiet_end", "last_fired_at",
                  "last_error", "failure_count", "created_at"]  # fmt: skip
        read_only_fields = ["last_fired_at", "last_error", "failure_count", "created_at"]

    def validate(self, data):
        def current(name, default=None):
            return data[name] if name in data else getattr(self.instance, name, default)

        errors = action_class(current("action")).settings_errors_for(current("settings", {}))
        if errors:
            raise serializers.ValidationError({"settings": errors})
        if (current("quiet_start") is None) != (current("quiet_end") is None):
            raise serializers.ValidationError({"quiet_end": ["Quiet hours need both a start and an end."]})
        return data

    def save(self, **kwargs):
        with transaction.atomic():
            return super().save(**kwargs)


class TriggerViewSet(viewsets.ModelViewSet):
    """Triggers: act when a customer enters or leaves a group (see docs/automations.md)."""

    queryset = Trigger.objects.prefetch_related("suppressed_by").order_by("pk")
    serializer_class = TriggerSerializer
    filterset_fields = ["group", "action", "on", "is_active"]


class FiringSerializer(serializers.ModelSerializer):
    trigger_name = serializers.CharField(source="trigger.name", read_only=True)
    group = serializers.IntegerField(source="trigger.group_id", read_only=True)

    class Meta:
        model = Firing
        fields = ["id", "trigger", "trigger_name", "group", "customer", "change_id", "reason", "changed_at",
                  "due_at", "status", "detail", "attempts", "created_at", "finished_at"]  # fmt: skip


class FiringFilter(filters.FilterSet):
    group = filters.NumberFilter(field_name="trigger__group_id")

    class Meta:
        model = Firing
        fields = ["trigger", "customer", "status", "group"]


class FiringViewSet(viewsets.ReadOnlyModelViewSet):
    """What each trigger did for each customer: sent, skipped (and why), failed (with the error), pending."""

    queryset = Firing.objects.select_related("trigger").order_by("-created_at", "-id")
    serializer_class = FiringSerializer
    filterset_class = FiringFilter


class TaskSerializer(serializers.ModelSerializer):
    class Meta:
        model = Task
        fields = ["id", "title", "assignee", "customer", "group", "firing", "due_date", "status", "notes",
                  "created_at"]  # fmt: skip
        read_only_fields = ["firing", "created_at"]


class TaskFilter(filters.FilterSet):
    mine = filters.BooleanFilter(method="filter_mine", label="Assigned to me")

    class Meta:
        model = Task
        fields = ["assignee", "customer", "group", "status"]

    def filter_mine(self, queryset, name, value):
        return queryset.filter(assignee=self.request.user) if value else queryset.exclude(assignee=self.request.user)


class TaskViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, mixins.CreateModelMixin,
                  viewsets.GenericViewSet):  # fmt: skip
    """Tasks for managers; `?mine=true&status=open` is "My open tasks"."""

    queryset = Task.objects.select_related("assignee").order_by("status", "due_date", "id")
    serializer_class = TaskSerializer
    filterset_class = TaskFilter
