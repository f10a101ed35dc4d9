"""The groups API: groups and, under each group, members, history, runs, refresh, query, preview,
explain, CSV export and members at a past moment; and the customer list and its CSV export, which
filter by group membership (customers knows nothing of groups).

Saving a group goes through the services (a rule change refreshes, activation fills or empties the
group, the schedule keeps its beat task), so the group is current when the call returns.
"""

from __future__ import annotations

from django import forms
from django.db import transaction
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from config.pagination import GrowingListPagination, TotalOrderingFilter
from customers.api import CustomerFilter, CustomerViewSet, MomentFilter, StoredJSONField
from customers.models import Customer

from . import exports, membership_filters, schedules, services
from .models import CustomerGroup, Membership, MembershipChange, Reason, RefreshRun, RuleVersion, Tag
from .preview import ENTER, LEAVE
from .preview import changes as preview_changes
from .preview import preview as preview_rules
from .rules import (
    Catalogue,
    RulesInvalid,
    validate_rules,
)

MAX_MEMBER_EDIT = 10_000

# --- serializers -------------------------------------------------------------------------------------


class TagsField(serializers.ListField):
    """Tags by name; unknown names are created."""

    child = serializers.CharField(max_length=100)

    def to_representation(self, tags) -> list[str]:
        return [tag.name for tag in tags.all()]


class GroupSerializer(serializers.ModelSerializer):
    tags = TagsField(required=False)
    slug = serializers.SlugField(max_length=255, required=False, help_text="Made from the name when left out.")
    rules = serializers.JSONField(
        required=False, help_text="The rules document of a dynamic group (the rule language); {} for a manual group."
    )
    schedule = StoredJSONField(
        required=False, help_text='e.g. {"frequency": "daily", "time": "06:00"}; needed for events_and_schedule.'
    )
    next_scheduled_run_at = serializers.SerializerMethodField()

    class Meta:
        model = CustomerGroup
        fields = [
            "id", "name", "slug", "description", "kind", "rules", "refresh_mode", "schedule", "time_zone",
            "is_active", "activate_at", "deactivate_at", "tags", "sync_enabled", "member_count", "rule_version",
            "last_refreshed_at", "last_scheduled_run_at", "next_scheduled_run_at", "last_run_status", "last_error",
            "created_at", "updated_at",
        ]  # fmt: skip
        extra_kwargs = {
            "activate_at": {"help_text": "Activate the group at this time (checked by the minute sweep)."},
            "deactivate_at": {"help_text": "Deactivate the group at this time; it then lets go of every member."},
        }
        read_only_fields = [
            "id", "member_count", "rule_version", "last_refreshed_at", "last_scheduled_run_at", "last_run_status",
            "last_error", "created_at", "updated_at",
        ]  # fmt: skip

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_next_scheduled_run_at(self, group: CustomerGroup):
        if not schedules.is_scheduled(group) or not group.is_active:
            return None
        runs = schedules.next_runs(group, 1)
        return serializers.DateTimeField().to_representation(runs[0]) if runs else None

    def validate_slug(self, value):
        clash = CustomerGroup.objects.filter(slug=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError(f"another group already uses the slug '{value}'")
        return value

    def validate_name(self, value):
        if services.name_taken(value, exclude=self.instance.pk if self.instance else None):
            raise ValidationError(f"another group is already named '{value.strip()}'")
        return value

    def validate(self, data):
        instance = self.instance

        def current(name, default):
            return data.get(name, getattr(instance, name) if instance else default)

        kind = current("kind", CustomerGroup.Kind.DYNAMIC)
        errors: dict = {}
        if instance is not None and "kind" in data and data["kind"] != instance.kind:
            errors["kind"] = ["a group's kind cannot change; create a new group of the other kind"]
        rules = current("rules", None)
        if kind == CustomerGroup.Kind.DYNAMIC:
            if rules is None or rules == {}:
                errors["rules"] = [
                    {
                        "path": "",
                        "message": "a dynamic group needs rules, e.g. "
                        '{"field": "role", "op": "eq", "value": "customer"}',
                    }
                ]
            elif instance is None or "rules" in data:
                problems = validate_rules(rules, catalogue=Catalogue.load(), group_id=instance.pk if instance else None)
                if problems:
                    errors["rules"] = problems
        elif rules not in (None, {}):
            errors["rules"] = [{"path": "", "message": "a manual group has no rules: its members are added by hand"}]
        if instance is None and "refresh_mode" not in data:
            data["refresh_mode"] = services.default_refresh_mode(kind, rules)
        refresh_mode = current("refresh_mode", CustomerGroup.RefreshMode.EVENTS)
        schedule = current("schedule", {}) or {}
        time_zone = current("time_zone", "")
        for problem in services.settings_errors(
            kind=kind, refresh_mode=refresh_mode, schedule=schedule, time_zone=time_zone
        ):
            if problem["path"] in ("/refresh_mode", "/time_zone"):
                errors.setdefault(problem["path"].strip("/"), []).append(problem["message"])
            else:
                errors.setdefault("schedule", []).append(problem)
        for problem in services.activation_errors(
            is_active=current("is_active", True),
            activate_at=current("activate_at", None),
            deactivate_at=current("deactivate_at", None),
            saved=instance,
        ):
            errors.setdefault(problem["path"].strip("/"), []).append(problem["message"])
        if errors:
            raise ValidationError(errors)
        if kind == CustomerGroup.Kind.MANUAL:
            data["rules"] = {}
        return data

    def create(self, validated_data):
        tags = validated_data.pop("tags", None)
        if not validated_data.get("slug"):
            validated_data["slug"] = services.free_slug(validated_data["name"])
        with transaction.atomic():
            group = CustomerGroup.objects.create(**validated_data)
            if tags is not None:
                group.tags.set(_tags(tags))
        services.fill_new_group(group, initiated_by=_user(self))
        group.refresh_from_db()
        return group

    def update(self, group, validated_data):
        tags = validated_data.pop("tags", None)
        rules = validated_data.pop("rules", group.rules)
        active = validated_data.pop("is_active", group.is_active)
        with transaction.atomic():
            for name, value in validated_data.items():
                setattr(group, name, value)
            group.save()
            if tags is not None:
                group.tags.set(_tags(tags))
            services.apply_settings(group, rules=rules, is_active=active, initiated_by=_user(self))
        return group


def _user(serializer):
    request = serializer.context.get("request")
    return request.user if request is not None and request.user.is_authenticated else None


def _tags(names: list[str]) -> list[Tag]:
    names = sorted({n.strip() for n in names if n.strip()})
    Tag.objects.bulk_create([Tag(name=n) for n in names], ignore_conflicts=True)
    return list(Tag.objects.filter(name__in=names))


class MemberSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="customer_id", read_only=True)
    external_id = serializers.CharField(source="customer.external_id", read_only=True, allow_null=True)
    email = serializers.CharField(source="customer.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "external_id", "email", "added_at"]
        read_only_fields = fields


class MemberEditSerializer(serializers.Serializer):
    customer_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False, max_length=MAX_MEMBER_EDIT
    )
    external_ids = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, max_length=MAX_MEMBER_EDIT
    )

    def validate(self, data):
        if not data.get("customer_ids") and not data.get("external_ids"):
            raise ValidationError({"customer_ids": ["give customer_ids and/or external_ids"]})
        return data


class CustomerBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "external_id", "email"]
        read_only_fields = fields


class HistorySerializer(serializers.ModelSerializer):
    customer = CustomerBriefSerializer(read_only=True)
    sync = serializers.SerializerMethodField(
        help_text="Per connected app: {status, synced_at}. Sync to other apps does not exist yet, so this is "
        "always an empty object."
    )

    initiated_by = serializers.SerializerMethodField(
        help_text="The id of the user who made the change by hand or started its run (a refresh, a rule change, "
        "an activation); null when no one did (events, schedules)."
    )

    class Meta:
        model = MembershipChange
        fields = ["id", "change", "customer", "changed_at", "reason", "rule_version", "run", "initiated_by", "sync"]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_initiated_by(self, change) -> int | None:
        return change.made_by_id

    @extend_schema_field(
        {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "status": {"type": "string"},
                    "synced_at": {"type": "string", "format": "date-time", "nullable": True},
                },
            },
        }
    )
    def get_sync(self, change) -> dict:
        return {}


class RuleVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = RuleVersion
        fields = ["version", "rules", "created_by", "created_at", "restored_from"]
        read_only_fields = fields


class RunSerializer(serializers.ModelSerializer):
    class Meta:
        model = RefreshRun
        fields = ["id", "group", "status", "reason", "initiated_by", "rule_version", "created_at", "started_at",
                  "finished_at", "added", "removed", "duration_ms", "error"]  # fmt: skip
        read_only_fields = fields


class PreviewRequestSerializer(serializers.Serializer):
    rules = serializers.JSONField(help_text="The rules document to try.")


class PreviewChangesRequestSerializer(serializers.Serializer):
    rules = serializers.JSONField(help_text="The rules document to try.")
    after = serializers.IntegerField(
        min_value=0,
        max_value=2**63 - 1,
        default=0,
        help_text="Customers with a greater id: the previous page's next_after.",
    )


PREVIEW_CUSTOMER = inline_serializer(
    "GroupPreviewCustomer",
    {
        "id": serializers.IntegerField(),
        "external_id": serializers.CharField(allow_null=True),
        "email": serializers.CharField(),
        "first_name": serializers.CharField(),
        "last_name": serializers.CharField(),
    },
    many=True,
)
PREVIEW_RESPONSE = inline_serializer(
    "GroupPreview",
    {
        "count": serializers.IntegerField(),
        "would_enter": serializers.IntegerField(),
        "would_leave": serializers.IntegerField(),
        "sample": PREVIEW_CUSTOMER,
        "entering": PREVIEW_CUSTOMER,
        "leaving": PREVIEW_CUSTOMER,
    },
)
PREVIEW_CHANGES_RESPONSE = inline_serializer(
    "GroupPreviewChanges",
    {"results": PREVIEW_CUSTOMER, "next_after": serializers.IntegerField(allow_null=True)},
)
PREVIEW_CHANGES_PAGE = 100
QUERY_RESPONSE = inline_serializer(
    "GroupQuery", {"sentence": serializers.CharField(), "sql": serializers.CharField(allow_null=True)}
)
EDIT_RESPONSE = inline_serializer(
    "GroupMembersEdited", {"changed": serializers.IntegerField(), "member_count": serializers.IntegerField()}
)
# A 400 may name other fields too; "rules" (when present) lists every problem of the rules document.
RULES_ERRORS = inline_serializer(
    "RulesErrors",
    {
        "rules": inline_serializer(
            "RulesError",
            {"path": serializers.CharField(), "message": serializers.CharField()},
            many=True,
            required=False,
        )
    },
)


# --- filters -----------------------------------------------------------------------------------------


class IdFilter(filters.NumberFilter):
    """A row id: a whole number in the database's range, else a 400 naming the parameter."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class HistoryFilter(filters.FilterSet):
    changed_after = MomentFilter(field_name="changed_at", lookup_expr="gte")
    changed_before = MomentFilter(field_name="changed_at", lookup_expr="lt")
    customer = IdFilter(field_name="customer_id")
    run = IdFilter(field_name="run_id")
    change = filters.ChoiceFilter(choices=MembershipChange.Change.choices)
    reason = filters.ChoiceFilter(choices=Reason.choices)

    class Meta:
        model = MembershipChange
        fields = ["change", "reason", "customer", "run"]


class CustomerFilterWithGroups(CustomerFilter):
    """The customer list's filters, with membership of a group."""

    group = IdFilter(method="filter_group", help_text="Only current members of this group.")
    not_in_group = IdFilter(method="filter_not_in_group", help_text="Only customers not in this group.")

    def filter_group(self, queryset, name, value):
        return queryset.filter(membership_filters.in_group(value))

    def filter_not_in_group(self, queryset, name, value):
        return queryset.filter(membership_filters.not_in_group(value))


# --- views -------------------------------------------------------------------------------------------


class CustomerViewSetWithGroups(CustomerViewSet):
    __doc__ = CustomerViewSet.__doc__
    filterset_class = CustomerFilterWithGroups


GROUP_VIEW = ["groups.view_customergroup"]
GROUP_CHANGE = ["groups.change_customergroup"]


class GroupViewSet(viewsets.ModelViewSet):
    """Customer groups: dynamic (by rules) and manual (by hand)."""

    queryset = CustomerGroup.objects.prefetch_related("tags").order_by("name", "pk")
    serializer_class = GroupSerializer
    filterset_fields = ["kind", "is_active", "refresh_mode", "slug", "tags__name"]
    action_permissions = {
        "refresh": GROUP_CHANGE,
        "query": GROUP_VIEW,
        "preview": GROUP_VIEW,
        "preview_entering": GROUP_VIEW,
        "preview_leaving": GROUP_VIEW,
        "explain": [*GROUP_VIEW, "customers.view_customer"],
        "members_at": [*GROUP_VIEW, "customers.view_customer"],
    }

    @extend_schema(responses={201: GroupSerializer, 400: RULES_ERRORS})
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    @extend_schema(request=None, responses={202: RunSerializer}, summary="Queue a full refresh of the group")
    @action(detail=True, methods=["post"])
    def refresh(self, request, pk=None):
        group = self.get_object()
        run = services.queue_refresh(group, initiated_by=request.user)
        run.refresh_from_db()
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=QUERY_RESPONSE, summary="The rules as a sentence and as the SQL that runs")
    @action(detail=True, methods=["get"])
    def query(self, request, pk=None):
        group = self.get_object()
        if not group.is_dynamic:
            return Response({"sentence": "Members are added and removed by hand", "sql": None})
        catalogue = Catalogue.load()
        _ensure_stored_rules_valid(group, catalogue)
        return Response({"sentence": group.rule_sentence(catalogue), "sql": group.rule_sql(catalogue, timezone.now())})

    @extend_schema(
        request=PreviewRequestSerializer,
        responses={200: PREVIEW_RESPONSE, 400: RULES_ERRORS},
        summary="Who these rules would select now, and who would enter or leave this group",
    )
    @action(detail=True, methods=["post"], serializer_class=PreviewRequestSerializer)
    def preview(self, request, pk=None):
        group = self.get_object()
        serializer = PreviewRequestSerializer(data=request.data)
        if not serializer.is_valid():  # in the shape every other 400 of the preview has
            raise ValidationError({"rules": [{"path": "", "message": 'send the rules to try as {"rules": {...}}'}]})
        try:
            result = preview_rules(serializer.validated_data["rules"], group=group)
        except RulesInvalid as exc:
            raise ValidationError({"rules": exc.errors}) from exc
        return Response(
            {
                "count": result.count,
                "would_enter": result.would_enter,
                "would_leave": result.would_leave,
                "sample": result.sample,
                "entering": result.entering,
                "leaving": result.leaving,
            }
        )

    @extend_schema(
        request=PreviewChangesRequestSerializer,
        responses={200: PREVIEW_CHANGES_RESPONSE, 400: RULES_ERRORS},
        summary="Everyone these rules would add to the group, by customer id, 100 at a time",
    )
    @action(
        detail=True, methods=["post"], url_path="preview/entering", serializer_class=PreviewChangesRequestSerializer
    )
    def preview_entering(self, request, pk=None):
        return self._preview_changes(request, ENTER)

    @extend_schema(
        request=PreviewChangesRequestSerializer,
        responses={200: PREVIEW_CHANGES_RESPONSE, 400: RULES_ERRORS},
        summary="Every member these rules would remove from the group, by customer id, 100 at a time",
    )
    @action(detail=True, methods=["post"], url_path="preview/leaving", serializer_class=PreviewChangesRequestSerializer)
    def preview_leaving(self, request, pk=None):
        return self._preview_changes(request, LEAVE)

    def _preview_changes(self, request, side: str) -> Response:
        group = self.get_object()
        serializer = PreviewChangesRequestSerializer(data=request.data)
        if not serializer.is_valid():  # "rules" in the shape every other 400 of the preview has
            errors = dict(serializer.errors)
            if "rules" in errors:
                errors["rules"] = [{"path": "", "message": 'send the rules to try as {"rules": {...}}'}]
            raise ValidationError(errors)
        data = serializer.validated_data
        try:
            found = preview_changes(data["rules"], group, side, after=data["after"], limit=PREVIEW_CHANGES_PAGE + 1)
        except RulesInvalid as exc:
            raise ValidationError({"rules": exc.errors}) from exc
        results = found[:PREVIEW_CHANGES_PAGE]
        more = len(found) > PREVIEW_CHANGES_PAGE
        return Response({"results": results, "next_after": results[-1]["id"] if more else None})

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        summary="Which parts of the rules hold for one customer, with the values that decided",
    )
    @action(detail=True, methods=["get"], url_path=r"explain/(?P<customer_id>[0-9]+)")
    def explain(self, request, pk=None, customer_id=None):
        group = self.get_object()
        if not group.is_dynamic:
            raise ValidationError({"detail": "a manual group has no rules to explain"})
        _ensure_stored_rules_valid(group, Catalogue.load())
        try:
            tree = group.explain(int(customer_id), Catalogue.load(), timezone.now())
        except LookupError:
            return Response({"detail": f"no customer with id {customer_id}"}, status=status.HTTP_404_NOT_FOUND)
        tree["member"] = Membership.objects.filter(group=group, customer_id=customer_id).exists()
        return Response(tree)

    @extend_schema(
        parameters=[OpenApiParameter("at", OpenApiTypes.DATETIME, required=True, description="The moment.")],
        responses=CustomerBriefSerializer(many=True),
        summary="The members at a past moment, rebuilt from the history",
    )
    @action(detail=True, methods=["get"], url_path="members-at", filter_backends=[])
    def members_at(self, request, pk=None):
        group = self.get_object()
        field = serializers.DateTimeField()
        try:
            at = field.to_internal_value(request.query_params.get("at") or "")
        except ValidationError as exc:
            raise ValidationError(
                {"at": ["give the moment as an ISO 8601 date and time, e.g. 2024-05-01T09:30:00Z"]}
            ) from exc
        ids = services.members_at(group, at)
        page = self.paginate_queryset(ids)
        chosen = page if page is not None else ids
        customers = Customer.objects.in_bulk(chosen)
        data = CustomerBriefSerializer([customers[i] for i in chosen if i in customers], many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)


def _ensure_stored_rules_valid(group: CustomerGroup, catalogue: Catalogue) -> None:
    """Stored rules can stop being valid (an attribute's type changed, a group was deleted): say what
    is wrong, as a save would, rather than fail while compiling them."""
    problems = validate_rules(group.rules, catalogue=catalogue, group_id=group.pk)
    if problems:
        raise ValidationError({"rules": problems})


class MembersPagination(GrowingListPagination):
    ordering = "customer_id"


class GroupChildMixin:
    """A list under /groups/<group_pk>/...; an unknown group is a 404."""

    def get_group(self) -> CustomerGroup:
        if not hasattr(self, "_group"):
            self._group = get_object_or_404(CustomerGroup, pk=self.kwargs["group_pk"])
        return self._group


class GroupMembersViewSet(GroupChildMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The current members of a group, by customer id, a cursor per page; manual groups are edited here."""

    serializer_class = MemberSerializer
    queryset = Membership.objects.all()
    filter_backends: list = []
    pagination_class = MembersPagination
    action_permissions = {"add": GROUP_CHANGE, "remove": GROUP_CHANGE}

    def get_queryset(self):
        return (
            Membership.objects.filter(group=self.get_group())
            .select_related("customer")
            .only("customer_id", "added_at", "customer__external_id", "customer__email")
            .order_by("customer_id")
        )

    def _edit(self, request, *, add: bool) -> Response:
        group = self.get_group()
        serializer = MemberEditSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ids = set(serializer.validated_data.get("customer_ids", []))
        external_ids = set(serializer.validated_data.get("external_ids", []))
        found = set(Customer.objects.filter(pk__in=ids).values_list("pk", flat=True))
        by_external = dict(Customer.objects.filter(external_id__in=external_ids).values_list("external_id", "pk"))
        errors = {}
        if ids - found:
            errors["customer_ids"] = [f"no customer with id {', '.join(map(str, sorted(ids - found)))}"]
        if external_ids - set(by_external):
            missing = ", ".join(repr(e) for e in sorted(external_ids - set(by_external)))
            errors["external_ids"] = [f"no customer with external_id {missing}"]
        if group.is_dynamic:
            errors["detail"] = f"'{group}' is a dynamic group: its members follow its rules, not edits by hand"
        if errors:
            raise ValidationError(errors)
        edit = services.add_members if add else services.remove_members
        changed = edit(group, found | set(by_external.values()), initiated_by=request.user)
        group.refresh_from_db()
        return Response({"changed": changed, "member_count": group.member_count})

    @extend_schema(request=MemberEditSerializer, responses=EDIT_RESPONSE, summary="Add customers to a manual group")
    @action(detail=False, methods=["post"], serializer_class=MemberEditSerializer)
    def add(self, request, group_pk=None):
        return self._edit(request, add=True)

    @extend_schema(
        request=MemberEditSerializer, responses=EDIT_RESPONSE, summary="Remove customers from a manual group"
    )
    @action(detail=False, methods=["post"], serializer_class=MemberEditSerializer)
    def remove(self, request, group_pk=None):
        return self._edit(request, add=False)


class GroupHistoryViewSet(GroupChildMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Every add and remove of a group: who, when, why (newest first unless ?ordering= says otherwise),
    a cursor per page."""

    serializer_class = HistorySerializer
    queryset = MembershipChange.objects.all()
    filter_backends = [filters.DjangoFilterBackend, TotalOrderingFilter]
    filterset_class = HistoryFilter
    pagination_class = GrowingListPagination
    ordering_fields = ["changed_at", "id"]
    ordering = ["-changed_at", "-id"]

    def get_queryset(self):
        return MembershipChange.objects.filter(group=self.get_group()).select_related("customer", "run")


class GroupRunsViewSet(GroupChildMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The group's refresh runs, newest first."""

    serializer_class = RunSerializer
    queryset = RefreshRun.objects.all()
    filterset_fields = ["status", "reason"]

    def get_queryset(self):
        return RefreshRun.objects.filter(group=self.get_group()).order_by("-created_at", "-id")


class GroupRuleVersionsViewSet(GroupChildMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Every version of the group's rules, newest first: the rules, who saved them and when. To restore one,
    send its rules as the group's `rules`."""

    serializer_class = RuleVersionSerializer
    queryset = RuleVersion.objects.all()
    filter_backends: list = []
    action_permissions = {"list": GROUP_VIEW}  # part of the group, as its history is

    def get_queryset(self):
        return RuleVersion.objects.filter(group=self.get_group()).order_by("-version")


EXPORT_PARAMETERS = [
    OpenApiParameter("columns", str, description="Comma-separated: built-in fields and attributes.<key> (a "
                     "group's export also has added_at). Default: " + ",".join(exports.DEFAULT_COLUMNS) + "."),
    OpenApiParameter("bom", bool, description="Start with a UTF-8 byte order mark (for spreadsheets)."),
]  # fmt: skip


class GroupExportView(GenericAPIView):
    """GET /api/groups/<id>/export.csv: the members as CSV, streamed."""

    queryset = CustomerGroup.objects.all()
    required_permissions = [*GROUP_VIEW, "customers.view_customer", exports.EXPORT_PERMISSION]
    filter_backends: list = []
    pagination_class = None

    @extend_schema(
        summary="Download the members as CSV (streamed)",
        parameters=EXPORT_PARAMETERS,
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request, pk: int):
        return _export(request, self.get_object())


class CustomerExportView(GenericAPIView):
    """GET /api/customers/export.csv: the customers matching the list's filters, as CSV, streamed."""

    queryset = Customer.objects.all()
    filterset_class = CustomerFilterWithGroups
    pagination_class = None
    required_permissions = ["customers.view_customer", exports.EXPORT_PERMISSION]

    @extend_schema(
        summary="Download the filtered customers as CSV (streamed); takes the same filters as the list",
        parameters=[
            OpenApiParameter(
                "columns",
                str,
                description="Comma-separated: built-in fields and attributes.<key>. "
                "Default: " + ",".join(exports.DEFAULT_COLUMNS) + ".",
            ),
            OpenApiParameter("bom", bool, description="Start with a UTF-8 byte order mark (for spreadsheets)."),
        ],
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request):
        return _export(request, self.filter_queryset(self.get_queryset()), filename="customers.csv")


def _export(request, source: CustomerGroup | QuerySet, *, filename: str | None = None) -> StreamingHttpResponse:
    """The API's export: `?columns=a,b&bom=true`; a bad column is a 400 naming it."""
    bom = str(request.query_params.get("bom", "")).lower() in ("1", "true", "yes", "on")
    try:
        return exports.export_response(source, request.query_params.get("columns"), bom, filename=filename)
    except exports.ColumnsInvalid as exc:
        raise ValidationError({"columns": [str(exc)]}) from exc
