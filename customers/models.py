"""Customers, their accounts (households, businesses), their events and the attribute catalogue."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models.functions import Lower
from django.db.models.lookups import Exact

from . import fields
from .querysets import AccountQuerySet, CustomerOwnedQuerySet, CustomerQuerySet, EventQuerySet


def json_object_constraint(name: str, field: str = "attributes") -> models.CheckConstraint:
    """Rules read `attributes.<key>`, so the column must always hold a JSON object."""
    typeof = models.Func(models.F(field), function="jsonb_typeof", output_field=models.CharField())
    return models.CheckConstraint(condition=Exact(typeof, models.Value("object")), name=name)


class Customer(models.Model):
    """A person the business knows. Text fields hold "" when unknown; rules treat "" as empty."""

    external_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    member_id = models.CharField(max_length=255, blank=True, default="")
    email = models.CharField(max_length=320, blank=True, default="")
    phone = models.CharField(max_length=64, blank=True, default="")
    first_name = models.CharField(max_length=255, blank=True, default="")
    last_name = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=64, blank=True, default="")
    role = models.CharField(max_length=64, blank=True, default="")
    signup_source = models.CharField(max_length=255, blank=True, default="")
    birthdate = models.DateField(null=True, blank=True)
    email_consent = models.BooleanField(default=False)
    sms_consent = models.BooleanField(default=False)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        indexes = [
            # Matching by email ignores case (identify, CSV import).
            models.Index(Lower("email"), name="customer_email_ci"),
            models.Index(fields=["role"], name="customer_role"),
            models.Index(fields=["status"], name="customer_status"),
            GinIndex(fields=["attributes"], name="customer_attributes_gin", opclasses=["jsonb_path_ops"]),
        ]
        constraints = [json_object_constraint("customer_attributes_is_object")]
        # Viewing a customer is not downloading them all: a CSV of the customer list or of a group's
        # members holds emails and phone numbers, so it takes a permission of its own.
        permissions = [("export_customer", "Can export customers and group members as CSV")]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or self.external_id or f"Customer {self.pk}"


class Account(models.Model):
    """A household or business account whose shared state (plan, subscription...) rules can read."""

    external_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    name = models.CharField(max_length=255, blank=True, default="")
    kind = models.CharField(max_length=64, blank=True, default="", help_text="e.g. household, business")
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    customers = models.ManyToManyField(Customer, through="AccountMembership", related_name="accounts")

    objects = AccountQuerySet.as_manager()

    class Meta:
        constraints = [json_object_constraint("account_attributes_is_object")]

    def __str__(self) -> str:
        return self.name or self.external_id or f"Account {self.pk}"


class AccountMembership(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="account_memberships")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=64, blank=True, default="", help_text="e.g. owner, member")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CustomerOwnedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "account"], name="account_membership_unique"),
        ]
        indexes = [models.Index(fields=["account", "customer"], name="account_membership_account")]

    def __str__(self) -> str:
        return f"{self.customer} in {self.account}"


class Event(models.Model):
    """Something a customer did: a purchase, a check-in, a sign-up."""

    # No single-column indexes: event_customer_name_time starts with the customer, and few events
    # name an account, so a partial index serves those. Every index is paid for on each ingest.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events", db_index=False)
    account = models.ForeignKey(
        Account, on_delete=models.SET_NULL, null=True, blank=True, related_name="events", db_index=False
    )
    name = models.CharField(max_length=255)
    occurred_at = models.DateTimeField()
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    # The sender's own id for the event (a receipt number, a message id): the same event sent again
    # (a retry after a lost answer) is recorded once per customer and name. NULL when there is none,
    # as for external_id, so the unique constraint leaves those events out.
    unique_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        indexes = [
            # Event conditions aggregate one customer's events of one name in a time window.
            models.Index(fields=["customer", "name", "occurred_at"], name="event_customer_name_time"),
            models.Index(fields=["name", "occurred_at"], name="event_name_time"),
            models.Index(fields=["account"], name="event_account", condition=models.Q(account__isnull=False)),
        ]
        constraints = [
            models.CheckConstraint(condition=~models.Q(name=""), name="event_name_not_empty"),
            json_object_constraint("event_properties_is_object", "properties"),
            models.UniqueConstraint(
                fields=["customer", "name", "unique_id"],
                condition=models.Q(unique_id__isnull=False),
                name="event_unique_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} at {self.occurred_at:%Y-%m-%d %H:%M}"


class AttributeDefinition(models.Model):
    """The catalogue: a declared custom attribute is typed in rules and coerced on write."""

    class Entity(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        ACCOUNT = "account", "Account"

    class Type(models.TextChoices):
        TEXT = fields.TEXT, "Text"
        NUMBER = fields.NUMBER, "Number"
        BOOLEAN = fields.BOOLEAN, "Boolean"
        DATE = fields.DATE, "Date"
        DATETIME = fields.DATETIME, "Date and time"

    entity = models.CharField(max_length=16, choices=Entity.choices, default=Entity.CUSTOMER)
    key = models.SlugField(max_length=100, allow_unicode=False, help_text="Letters, digits, _ and -")
    label = models.CharField(max_length=255, blank=True, default="")
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.TEXT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entity", "key"], name="attribute_definition_unique"),
            models.CheckConstraint(
                condition=models.Q(entity__in=["customer", "account"]), name="attribute_definition_entity"
            ),
            models.CheckConstraint(
                condition=models.Q(type__in=["text", "number", "boolean", "date", "datetime"]),
                name="attribute_definition_type",
            ),
        ]
        ordering = ["entity", "key"]

    def __str__(self) -> str:
        return f"{self.entity}.attributes.{self.key} ({self.type})"


class CustomerImport(models.Model):
    """A CSV import run in the background: the file, the choices made, progress and the report.

    The file is kept on the row (not on disk) so any worker machine can run the import; it is
    cleared once the import has finished, except when bad rows stopped it: then it waits for "Import
    the good rows".
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Waiting for the column mapping"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Imported"
        REJECTED = "rejected", "Nothing imported (bad rows)"
        FAILED = "failed", "Failed"

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    file_name = models.CharField(max_length=255, blank=True, default="")
    data = models.BinaryField(blank=True, default=b"")
    header = models.JSONField(default=list, blank=True)
    mapping = models.JSONField(default=list, blank=True, help_text='[{"column", "target", "type"}]')
    skip_bad_rows = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    rows_total = models.PositiveIntegerField(default=0, help_text="Lines in the file, less the header.")
    rows_read = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.file_name}): {self.get_status_display()}"
