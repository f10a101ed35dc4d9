"""The REST API's routes, mounted at /api/, with its OpenAPI schema and docs."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from automations.api import FiringViewSet, SendViewSet, TaskViewSet, TriggerViewSet
from customers.api import AccountViewSet, AttributeDefinitionViewSet, EventViewSet
from groups.api import (
    CustomerExportView,
    CustomerViewSetWithGroups,
    GroupExportView,
    GroupMembersViewSet,
    GroupRuleVersionsViewSet,
    GroupRunsViewSet,
)
from integrations.api import ConnectionViewSet, GroupHistoryWithSyncViewSet, GroupWithSyncViewSet

router = DefaultRouter()
router.register("customers", CustomerViewSetWithGroups)
router.register("accounts", AccountViewSet)
router.register("events", EventViewSet, basename="event")
router.register("attributes", AttributeDefinitionViewSet)
router.register("connections", ConnectionViewSet)
router.register("groups", GroupWithSyncViewSet)
router.register(r"groups/(?P<group_pk>[0-9]+)/members", GroupMembersViewSet, basename="group-members")
router.register(r"groups/(?P<group_pk>[0-9]+)/history", GroupHistoryWithSyncViewSet, basename="group-history")
router.register(r"groups/(?P<group_pk>[0-9]+)/runs", GroupRunsViewSet, basename="group-runs")
router.register(r"groups/(?P<group_pk>[0-9]+)/rule-versions", GroupRuleVersionsViewSet, basename="group-rule-versions")
router.register("triggers", TriggerViewSet)
router.register("firings", FiringViewSet)
router.register("tasks", TaskViewSet)
router.register("sends", SendViewSet)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("docs/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    # Downloads are named like files, without the trailing slash of the other routes.
    path("customers/export.csv", CustomerExportView.as_view(), name="customer-export"),
    path("groups/<int:pk>/export.csv", GroupExportView.as_view(), name="group-export"),
    path("", include(router.urls)),
]
