"""The automations API: triggers, their firings (also per group and per customer), manager tasks and
one-off sends."""

from __future__ import annotations

from django.db import transaction
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from customers.models import Customer
from groups.models import CustomerGroup

from . import sends
from .actions import action_class
from .models import Firing, Send, SendRecipient, Task, Trigger


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


class SendSerializer(serializers.ModelSerializer):
    group = serializers.PrimaryKeyRelatedField(queryset=CustomerGroup.objects.all())
    suppressed_by = serializers.PrimaryKeyRelatedField(queryset=CustomerGroup.objects.all(), many=True, required=False)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Send
        fields = ["id", "name", "group", "channel", "settings", "suppressed_by", "status", "scheduled_for",
                  "created_at", "started_at", "finished_at", "progress", "report"]  # fmt: skip
        read_only_fields = ["status", "scheduled_for", "created_at", "started_at", "finished_at", "report"]

    def get_progress(self, send) -> dict:
        return sends.progress(send)

    def validate(self, data):
        channel = data.get("channel", getattr(self.instance, "channel", Send.Channel.EMAIL))
        errors = action_class(channel).settings_errors_for(data.get("settings", getattr(self.instance, "settings", {})))
        if errors:
            raise serializers.ValidationError({"settings": errors})
        if self.instance is not None and not self.instance.can_cancel:
            raise serializers.ValidationError({"status": ["A send that has started cannot be changed."]})
        return data


class ScheduleSerializer(serializers.Serializer):
    at = serializers.DateTimeField(required=False, allow_null=True, help_text="Empty: start now.")


class RecipientSerializer(serializers.ModelSerializer):
    class Meta:
        model = SendRecipient
        fields = ["id", "customer", "status", "detail", "attempts", "finished_at"]


SEND_VIEW = ["automations.view_send"]
SEND_CHANGE = ["automations.change_send"]


class SendViewSet(viewsets.ModelViewSet):
    """One-off sends to every current member of a group: preview, audience, schedule or start, cancel."""

    queryset = Send.objects.prefetch_related("suppressed_by").order_by("-created_at", "-id")
    serializer_class = SendSerializer
    filterset_fields = ["group", "status", "channel"]
    action_permissions = {"preview": SEND_VIEW, "recipients": [*SEND_VIEW, "customers.view_customer"],
                          "schedule": SEND_CHANGE, "cancel": SEND_CHANGE}  # fmt: skip

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="The message for a real member, and who would get it")
    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        send = self.get_object()
        customer = None
        if request.query_params.get("customer"):
            customer = Customer.objects.filter(pk=request.query_params["customer"]).first()
            if customer is None:
                raise NotFound("No such customer.")
        shown = sends.preview(send, customer)
        return Response({"customer": shown["customer"].pk if shown["customer"] else None, "subject": shown["subject"],
                         "body": shown["body"], "error": shown["error"],
                         "will_receive": sends.audience(send).count()})  # fmt: skip

    @extend_schema(request=ScheduleSerializer, responses={202: SendSerializer})
    @action(detail=True, methods=["post"], serializer_class=ScheduleSerializer)
    def schedule(self, request, pk=None):
        send = self.get_object()
        serializer = ScheduleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not sends.schedule(send, serializer.validated_data.get("at")):
            raise serializers.ValidationError({"status": [f"A {send.get_status_display().lower()} send cannot start."]})
        send.refresh_from_db()
        return Response(SendSerializer(send).data, status=202)

    @extend_schema(request=None, responses={200: SendSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        send = self.get_object()
        if not sends.cancel(send):
            raise serializers.ValidationError({"status": ["Only a send that has not started can be cancelled."]})
        send.refresh_from_db()
        return Response(SendSerializer(send).data)

    @extend_schema(responses=RecipientSerializer(many=True))
    @action(detail=True, methods=["get"])
    def recipients(self, request, pk=None):
        send = self.get_object()
        page = self.paginate_queryset(send.recipients.order_by("id"))
        return self.get_paginated_response(RecipientSerializer(page, many=True).data)
