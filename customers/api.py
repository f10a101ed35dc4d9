"""The customers API: customers (with identify), accounts, events and the attribute catalogue.

Views validate and call `customers.services`; every write runs in one transaction so the groups
evaluate the touched customers once, after commit, and membership is current when the call returns.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.db import transaction
from django.db.models.functions import Lower
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from . import fields as customer_fields
from . import services
from .attributes import clean_attributes, declared_types
from .models import Account, AttributeDefinition, Customer, Event
from .services import CustomerRef

MAX_BATCH_EVENTS = 1000
MAX_ACCOUNT_MEMBERS = 1000


# --- serializers -------------------------------------------------------------------------------------


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class StoredJSONField(serializers.JSONField):
    """JSON as PostgreSQL stores it (jsonb), which has no place for the NUL character in text."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if _has_nul(data):
            raise ValidationError("text in JSON cannot contain the NUL character (\\u0000)")
        return data


class AttributesField(StoredJSONField):
    """A JSON object of custom attributes; declared keys are checked against the catalogue."""

    def __init__(self, entity: str = AttributeDefinition.Entity.CUSTOMER, **kwargs) -> None:
        self.entity = entity
        kwargs.setdefault("help_text", "Custom attributes (a JSON object); declared keys must fit their type.")
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        cleaned, errors = clean_attributes(data, declared_types(self.entity))
        if errors:
            raise ValidationError(errors.get("") or {key: [message] for key, message in errors.items()})
        return cleaned


class AccountLinkSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=255)
    role = serializers.CharField(max_length=64, allow_blank=True, required=False, default="")


TEXT_FIELDS = customer_fields.of_type(customer_fields.CUSTOMER_FIELDS, customer_fields.TEXT)
BOOLEAN_FIELDS = customer_fields.of_type(customer_fields.CUSTOMER_FIELDS, customer_fields.BOOLEAN)


def _refuse_null(name: str) -> str:
    return f"{name} is true or false, not null: send false when the customer has not consented"


class CustomerSerializer(serializers.ModelSerializer):
    """A customer. `null` for a text field means "none" (stored as empty text); in `attributes`, a key
    sent as `null` is removed. Consents are true or false only."""

    email = serializers.EmailField(max_length=320, allow_blank=True, allow_null=True, required=False)
    attributes = AttributesField(required=False)
    accounts = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = [
            "id",
            *customer_fields.CUSTOMER_FIELDS,
            "attributes",
            "accounts",
            *customer_fields.CUSTOMER_TIMESTAMPS,
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {
            **{name: {"allow_null": True} for name in TEXT_FIELDS if name != "email"},
            **{name: {"error_messages": {"null": _refuse_null(name)}} for name in BOOLEAN_FIELDS},
        }

    def validate_external_id(self, value):
        return value or None

    def validate(self, data):
        for name in TEXT_FIELDS:
            if name != "external_id" and name in data and data[name] is None:
                data[name] = ""
        return data

    def create(self, validated_data):
        return super().create(_without_removed_attributes(validated_data))

    def update(self, instance, validated_data):
        return super().update(instance, _without_removed_attributes(validated_data))

    @extend_schema_field(AccountLinkSerializer(many=True))
    def get_accounts(self, customer: Customer) -> list[dict]:
        return [{"external_id": m.account.external_id, "role": m.role} for m in customer.account_memberships.all()]


class IdentifySerializer(CustomerSerializer):
    """Upsert: only the keys sent are written; attributes are merged; accounts are linked."""

    external_id = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    accounts = AccountLinkSerializer(many=True, required=False)

    class Meta(CustomerSerializer.Meta):
        pass

    def validate(self, data):
        data = super().validate(data)
        if not data.get("external_id") and not data.get("email"):
            raise ValidationError({"external_id": ["give an external_id or an email to identify the customer"]})
        return data


def _without_removed_attributes(data: dict) -> dict:
    """Create and update store `attributes` as sent: a key sent as null is one the customer does not have."""
    if data.get("attributes"):
        data = {**data, "attributes": {k: v for k, v in data["attributes"].items() if v is not None}}
    return data


class AccountSerializer(serializers.ModelSerializer):
    attributes = AttributesField(entity=AttributeDefinition.Entity.ACCOUNT, required=False)

    class Meta:
        model = Account
        fields = ["id", "external_id", "name", "kind", "attributes", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class AccountIdentifySerializer(AccountSerializer):
    external_id = serializers.CharField(max_length=255)

    class Meta(AccountSerializer.Meta):
        pass


class CustomerRefSerializer(serializers.Serializer):
    """A customer named by our `customer_id` or by their `customer` external_id (exactly one)."""

    customer = serializers.CharField(max_length=255, required=False, help_text="The customer's external_id.")
    customer_id = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)

    def validate(self, data):
        if ("customer" in data) == ("customer_id" in data):
            raise ValidationError({"customer": ["give either customer (an external_id) or customer_id"]})
        return data

    @staticmethod
    def ref(data: dict) -> CustomerRef:
        return CustomerRef(customer_id=data.get("customer_id"), external_id=data.get("customer"))


class AccountMemberSerializer(CustomerRefSerializer):
    role = serializers.CharField(max_length=64, allow_blank=True, required=False, default="")


class AccountMembersSerializer(serializers.Serializer):
    members = AccountMemberSerializer(many=True, allow_empty=False, max_length=MAX_ACCOUNT_MEMBERS)


class EventSerializer(CustomerRefSerializer):
    name = serializers.CharField(max_length=255)
    occurred_at = serializers.DateTimeField()
    amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, required=False, allow_null=True, coerce_to_string=False
    )
    properties = StoredJSONField(required=False, default=dict)
    account = serializers.CharField(
        max_length=255, required=False, allow_null=True, allow_blank=True, help_text="The account's external_id."
    )
    unique_id = serializers.CharField(
        max_length=255,
        required=False,
        allow_null=True,
        help_text="Your own id for this event (a receipt number, a message id). An event whose customer "
        "already has one of this name and unique_id is not recorded again: the answer names the event "
        "recorded first. Send one so that a batch sent again after a lost answer counts once.",
    )

    def validate_properties(self, value):
        if not isinstance(value, dict):
            raise ValidationError("properties must be a JSON object")
        return value


class EventOutSerializer(serializers.ModelSerializer):
    """A recorded event as the API returns it."""

    customer_id = serializers.IntegerField(read_only=True)
    account_id = serializers.IntegerField(read_only=True, allow_null=True)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True, coerce_to_string=False)

    class Meta:
        model = Event
        fields = ["id", "customer_id", "account_id", "name", "occurred_at", "amount", "properties", "unique_id",
                  "created_at"]  # fmt: skip
        read_only_fields = fields


class EventBatchSerializer(serializers.Serializer):
    events = EventSerializer(many=True, allow_empty=False, max_length=MAX_BATCH_EVENTS)


class AttributeDefinitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = AttributeDefinition
        fields = ["id", "entity", "key", "label", "type", "created_at"]
        read_only_fields = ["id", "created_at"]


# --- filters -----------------------------------------------------------------------------------------


class MomentField(IsoDateTimeField):
    """An ISO 8601 moment in UTC: PostgreSQL refuses offsets beyond ±15:59 that Python accepts, and a
    moment whose UTC time falls outside years 1 to 9999 has no place in either."""

    def to_python(self, value):
        try:
            moment = super().to_python(value)
            return moment.astimezone(dt.UTC) if moment is not None else None
        except OverflowError as exc:
            raise forms.ValidationError("this moment is outside the years 1 to 9999 in UTC") from exc


class MomentFilter(filters.IsoDateTimeFilter):
    field_class = MomentField


class CustomerFilter(filters.FilterSet):
    email = filters.CharFilter(method="filter_email", help_text="Exact email, ignoring case.")
    role = filters.CharFilter(lookup_expr="iexact", help_text="Ignoring case, as rules compare text.")
    status = filters.CharFilter(lookup_expr="iexact")
    signup_source = filters.CharFilter(lookup_expr="iexact")
    created_after = MomentFilter(field_name="created_at", lookup_expr="gte")
    created_before = MomentFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Customer
        fields = ["external_id", "member_id", "email_consent", "sms_consent", "birthdate"]

    def filter_email(self, queryset, name, value):
        return queryset.alias(email_ci=Lower("email")).filter(email_ci=value.lower())


# --- views -------------------------------------------------------------------------------------------


def _raise_indexed(serializer: serializers.Serializer, key: str) -> None:
    """Validate; per-item errors of the list at `key` come back as {"3": {...}} for the bad items only
    (DRF lists one entry per item, empty for the good ones, which hides which index is wrong)."""
    if serializer.is_valid():
        return
    errors = dict(serializer.errors)
    items = errors.get(key)
    if isinstance(items, list) and items and all(isinstance(item, dict) for item in items):
        errors[key] = {str(index): item for index, item in enumerate(items) if item}
    raise ValidationError(errors)


class CustomerViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Customers. Writes are evaluated by every active group before the call returns."""

    queryset = Customer.objects.order_by("pk").prefetch_related("account_memberships__account")
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    action_permissions = {
        "identify": ["customers.add_customer", "customers.change_customer"],
    }

    def perform_create(self, serializer):
        with transaction.atomic():
            serializer.save()

    def perform_update(self, serializer):
        with transaction.atomic():
            serializer.save()

    @extend_schema(
        request=IdentifySerializer,
        responses={200: CustomerSerializer, 201: CustomerSerializer},
        summary="Create or update a customer by external_id, else by email",
    )
    @action(detail=False, methods=["post"], serializer_class=IdentifySerializer)
    def identify(self, request):
        serializer = IdentifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        attributes = values.pop("attributes", None)
        accounts = values.pop("accounts", ())
        customer, created = services.identify_customer(values, attributes=attributes, accounts=accounts)
        customer = self.get_queryset().get(pk=customer.pk)
        return Response(
            CustomerSerializer(customer).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class AccountViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Households and business accounts, identified by their external_id."""

    queryset = Account.objects.order_by("pk")
    serializer_class = AccountSerializer
    filterset_fields = ["external_id", "kind"]
    action_permissions = {
        "identify": ["customers.add_account", "customers.change_account"],
        "add_members": ["customers.change_account", "customers.add_accountmembership"],
        "remove_members": ["customers.change_account", "customers.delete_accountmembership"],
    }

    @extend_schema(request=AccountIdentifySerializer, responses={200: AccountSerializer, 201: AccountSerializer})
    @action(detail=False, methods=["post"], serializer_class=AccountIdentifySerializer)
    def identify(self, request):
        serializer = AccountIdentifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        external_id = values.pop("external_id")
        attributes = values.pop("attributes", None)
        account, created = services.identify_account(external_id, values, attributes=attributes)
        return Response(
            AccountSerializer(account).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    def _members(self, request) -> list[tuple[int, str]]:
        serializer = AccountMembersSerializer(data=request.data)
        _raise_indexed(serializer, "members")
        items = serializer.validated_data["members"]
        ids = services.resolve_customers([CustomerRefSerializer.ref(item) for item in items])
        missing = {
            str(index): {"customer": [f"no customer with {_ref_words(item)}"]}
            for index, (item, customer_id) in enumerate(zip(items, ids, strict=True))
            if customer_id is None
        }
        if missing:
            raise ValidationError({"members": missing})
        return [(customer_id, item.get("role", "")) for item, customer_id in zip(items, ids, strict=True)]

    @extend_schema(
        request=AccountMembersSerializer,
        responses=inline_serializer("AccountMembersAdded", {"linked": serializers.IntegerField()}),
        summary="Link customers to the account (a linked customer gets the new role)",
    )
    @action(detail=True, methods=["post"], url_path="members/add", serializer_class=AccountMembersSerializer)
    def add_members(self, request, pk=None):
        account = self.get_object()
        members = self._members(request)
        return Response({"linked": services.add_account_members(account, members)})

    @extend_schema(
        request=AccountMembersSerializer,
        responses=inline_serializer("AccountMembersRemoved", {"unlinked": serializers.IntegerField()}),
        summary="Unlink customers from the account",
    )
    @action(detail=True, methods=["post"], url_path="members/remove", serializer_class=AccountMembersSerializer)
    def remove_members(self, request, pk=None):
        account = self.get_object()
        members = self._members(request)
        return Response({"unlinked": services.remove_account_members(account, [c for c, _ in members])})


def _ref_words(item: dict) -> str:
    if "customer_id" in item:
        return f"id {item['customer_id']}"
    return f"external_id {item['customer']!r}"


BATCH_CREATED = inline_serializer(
    "EventBatchCreated",
    {
        "created": serializers.IntegerField(help_text="Events recorded by this call."),
        "repeated": serializers.IntegerField(help_text="Events recorded before, under their unique_id."),
        "ids": serializers.ListField(
            child=serializers.IntegerField(), help_text="The id of each event in the batch, in order."
        ),
    },
)


class EventViewSet(viewsets.GenericViewSet):
    """Events: what customers did. Groups are current for the event's customers when the call returns."""

    queryset = Event.objects.all()
    serializer_class = EventSerializer
    pagination_class = None
    filter_backends: list = []
    action_permissions = {"batch": ["customers.add_event"]}

    @extend_schema(
        request=EventSerializer,
        responses={201: EventOutSerializer, 200: EventOutSerializer},
        summary="Record one event",
        description="201 when recorded; 200 with the event recorded before when its unique_id was.",
    )
    def create(self, request):
        serializer = EventSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        events, errors = self._build([serializer.validated_data])
        if errors:
            raise ValidationError(errors["0"])
        (outcome,) = services.record_events(events)
        if outcome.recorded:
            event = Event(pk=outcome.id, created_at=outcome.created_at, **events[0])
        else:
            event = Event.objects.get(pk=outcome.id)
        answer = status.HTTP_201_CREATED if outcome.recorded else status.HTTP_200_OK
        return Response(EventOutSerializer(event).data, status=answer)

    @extend_schema(
        request=EventBatchSerializer,
        responses={201: BATCH_CREATED},
        summary=f"Record up to {MAX_BATCH_EVENTS} events, all or nothing",
        description="A batch with any bad item records nothing; errors are keyed by the item's index, "
        'e.g. {"events": {"3": {"occurred_at": ["..."]}}}.',
    )
    @action(detail=False, methods=["post"], serializer_class=EventBatchSerializer)
    def batch(self, request):
        serializer = EventBatchSerializer(data=request.data)
        _raise_indexed(serializer, "events")
        events, errors = self._build(serializer.validated_data["events"])
        if errors:
            raise ValidationError({"events": errors})
        outcomes = services.record_events(events)
        created = sum(o.recorded for o in outcomes)
        return Response(
            {"created": created, "repeated": len(outcomes) - created, "ids": [o.id for o in outcomes]},
            status=status.HTTP_201_CREATED,
        )

    @staticmethod
    def _build(items: list[dict]) -> tuple[list[dict], dict]:
        """Each item as an event's column values, its customer and account resolved in a few queries;
        errors keyed by item index."""
        customer_ids = services.resolve_customers([CustomerRefSerializer.ref(item) for item in items])
        accounts = services.resolve_accounts(item.get("account") for item in items)
        events, errors = [], {}
        for index, (item, customer_id) in enumerate(zip(items, customer_ids, strict=True)):
            problems = {}
            if customer_id is None:
                key = "customer_id" if "customer_id" in item else "customer"
                problems[key] = [f"no customer with {_ref_words(item)}"]
            account = item.get("account") or None
            if account and account not in accounts:
                problems["account"] = [f"no account with external_id {account!r}"]
            if problems:
                errors[str(index)] = problems
                continue
            events.append(
                {
                    "customer_id": customer_id,
                    "account_id": accounts.get(account) if account else None,
                    "name": item["name"],
                    "occurred_at": item["occurred_at"],
                    "amount": item.get("amount"),
                    "properties": item.get("properties") or {},
                    "unique_id": item.get("unique_id"),
                }
            )
        return events, errors


class AttributeDefinitionViewSet(viewsets.ModelViewSet):
    """The attribute catalogue: declared attributes are typed in rules and checked on write."""

    queryset = AttributeDefinition.objects.all()
    serializer_class = AttributeDefinitionSerializer
    filterset_fields = ["entity", "key", "type"]
