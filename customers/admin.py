"""Back-office pages for customers, their accounts, their events and the attribute catalogue."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse

from .forms import AccountForm, CustomerForm
from .models import Account, AccountMembership, AttributeDefinition, Customer, Event

RECENT_EVENTS = 50


class AccountMembershipInline(admin.TabularInline):
    model = AccountMembership
    extra = 0
    # A select of every customer would not load with a few million of them.
    raw_id_fields = ["customer"]
    fields = ["customer", "role", "created_at"]
    readonly_fields = ["created_at"]


class CustomerAccountInline(admin.TabularInline):
    """The households and business accounts a customer belongs to, on the customer's page."""

    model = AccountMembership
    extra = 0
    raw_id_fields = ["account"]
    fields = ["account", "role", "created_at"]
    readonly_fields = ["created_at"]
    verbose_name = "account"
    verbose_name_plural = "Accounts (households and businesses)"


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    form = CustomerForm
    list_display = ["__str__", "email", "external_id", "role", "status", "signup_source", "created_at"]
    list_filter = ["role", "status", "signup_source", "email_consent", "sms_consent"]
    search_fields = ["=external_id", "=member_id", "email", "first_name", "last_name", "phone"]
    readonly_fields = ["created_at", "updated_at"]
    # Counting every row for the "N total" link is slow on large tables; Django then shows "Show all".
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["first_name", "last_name", "email", "phone", "birthdate"]}),
        ("Identity", {"fields": ["external_id", "member_id", "role", "status", "signup_source"]}),
        ("Consent", {"fields": ["email_consent", "sms_consent"]}),
        ("Custom attributes", {"fields": ["attributes"]}),
        ("Timestamps", {"fields": ["created_at", "updated_at"]}),
    ]
    inlines = [CustomerAccountInline]

    def index_links(self, request) -> list[tuple[str, str]]:
        """The import on the back office's home page, beside the customers (config.admin_site)."""
        from .admin_import import may_import

        return (
            [("Import customers from CSV", reverse("admin:customers_customer_import"))]
            if may_import(self, request)
            else []
        )

    def changelist_view(self, request, extra_context=None):
        from .admin_import import may_import

        context = {"can_import": may_import(self, request), **(extra_context or {})}
        return super().changelist_view(request, context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The latest events as a read-only table: an inline of every event would not load for a regular.
        context = {**(extra_context or {})}
        if object_id and object_id.isdigit() and request.user.has_perm("customers.view_event"):
            events = Event.objects.filter(customer_id=int(object_id)).order_by("-occurred_at")
            context["recent_events"] = events[:RECENT_EVENTS]
            context["event_count"] = events.count()
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self):
        from . import admin_import  # the CSV import page lives in its own module

        return admin_import.urls(self) + super().get_urls()


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    form = AccountForm
    list_display = ["__str__", "kind", "external_id", "created_at"]
    list_filter = ["kind"]
    search_fields = ["=external_id", "name"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [AccountMembershipInline]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["name", "customer", "occurred_at", "amount", "account"]
    list_filter = ["name"]
    search_fields = ["=customer__external_id", "customer__email"]
    raw_id_fields = ["customer", "account"]
    list_select_related = ["customer", "account"]
    readonly_fields = ["created_at"]
    show_full_result_count = False
    ordering = ["-occurred_at"]


@admin.register(AttributeDefinition)
class AttributeDefinitionAdmin(admin.ModelAdmin):
    list_display = ["key", "entity", "label", "type"]
    list_filter = ["entity", "type"]
    search_fields = ["key", "label"]
