"""The sync parts of the API: each group's syncs, per-app delivery in its history, and the connections.

`groups` must not import `integrations`, so its group and history views are extended here and
routed in their place (config/api.py), as `groups` does for the customer views.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, viewsets

from groups.api import GroupHistoryViewSet, GroupSerializer, GroupViewSet, HistorySerializer

from . import status
from .models import Connection, GroupSync


class SyncSerializer(serializers.Serializer):
    connection = serializers.CharField()
    connection_id = serializers.IntegerField()
    kind = serializers.CharField()
    state = serializers.ChoiceField(choices=GroupSync.State.choices)
    remote_id = serializers.CharField()
    pending_changes = serializers.IntegerField(help_text="Changes committed but not yet sent.")
    lag_seconds = serializers.FloatField(help_text="Age of the oldest change not yet sent.")
    backfill_remaining = serializers.IntegerField(help_text="Members still to send in the first sync.")
    estimated_seconds_left = serializers.FloatField(
        allow_null=True, help_text="For apps with a slow published pace (Lightspeed): time to send what remains."
    )
    last_synced_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField()
    last_error_at = serializers.DateTimeField(allow_null=True)
    last_reconcile_at = serializers.DateTimeField(allow_null=True)
    last_reconcile = serializers.JSONField(help_text="added, removed, left_alone, remote_only")


class GroupWithSyncSerializer(GroupSerializer):
    syncs = serializers.SerializerMethodField(help_text="The group's sync to each connected app.")

    class Meta(GroupSerializer.Meta):
        fields = [*GroupSerializer.Meta.fields, "syncs"]

    @extend_schema_field(SyncSerializer(many=True))
    def get_syncs(self, group) -> list:
        shown = [s for s in group.syncs.all() if s.state != GroupSync.State.OFF]
        return SyncSerializer([status.summary(s) for s in shown], many=True).data


class GroupWithSyncViewSet(GroupViewSet):
    __doc__ = GroupViewSet.__doc__
    queryset = GroupViewSet.queryset.prefetch_related("syncs__connection")
    serializer_class = GroupWithSyncSerializer


class HistoryWithSyncSerializer(HistorySerializer):
    sync = serializers.SerializerMethodField(
        help_text="Per connected app (by connection name): status (synced, pending, failed, paused, skipped, "
        "before), synced_at, detail (the error or the reason for a skip)."
    )

    @extend_schema_field({
        "type": "object", "additionalProperties": {"type": "object", "properties": {
            "status": {"type": "string"}, "synced_at": {"type": "string", "format": "date-time", "nullable": True},
            "detail": {"type": "string"}}}})  # fmt: skip
    def get_sync(self, change) -> dict:
        names = self.context.get("sync_names", [])
        found = self.context.get("deliveries", {}).get(change.id, [])
        return {
            name: {"status": d.status, "synced_at": d.synced_at, "detail": d.detail}
            for name, d in zip(names, found, strict=False)
        }


class GroupHistoryWithSyncViewSet(GroupHistoryViewSet):
    __doc__ = GroupHistoryViewSet.__doc__
    serializer_class = HistoryWithSyncSerializer

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        changes = page if page is not None else list(queryset)
        syncs = status.shown_syncs(self.get_group().pk)
        self._sync_names = [s.connection.name for s in syncs]
        self._deliveries = status.deliveries(syncs, changes)
        return page

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "sync_names": getattr(self, "_sync_names", []),
                "deliveries": getattr(self, "_deliveries", {})}  # fmt: skip


class ConnectionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Connection
        # Never the credentials.
        fields = ["id", "kind", "name", "settings", "consent", "status", "account", "last_error", "last_error_at",
                  "last_success_at", "created_at"]  # fmt: skip
        read_only_fields = fields


class ConnectionViewSet(viewsets.ReadOnlyModelViewSet):
    """Connected apps (their credentials are never shown)."""

    queryset = Connection.objects.order_by("name", "pk")
    serializer_class = ConnectionSerializer
    filterset_fields = ["kind", "status"]
