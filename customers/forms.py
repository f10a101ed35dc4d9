"""The customer and account forms of the back office: attributes checked against the catalogue, as the API
and the import check them."""

from __future__ import annotations

from django import forms

from . import fields
from .attributes import clean_attributes, declared_types
from .models import Account, AttributeDefinition, Customer


class AttributesCheckedForm(forms.ModelForm):
    """Declared attributes must fit their type and are stored in it ("12" for a number is 12); a key
    given as null is removed, as in the API."""

    entity = AttributeDefinition.Entity.CUSTOMER

    def clean_attributes(self):
        value = self.cleaned_data.get("attributes")
        cleaned, errors = clean_attributes({} if value is None else value, declared_types(self.entity))
        if errors:
            named = [message if not key or message.startswith(f"'{key}'") else f"'{key}': {message}"
                     for key, message in errors.items()]  # fmt: skip
            raise forms.ValidationError(named)
        return {key: item for key, item in cleaned.items() if item is not None}


class CustomerForm(AttributesCheckedForm):
    class Meta:
        model = Customer
        fields = [*fields.CUSTOMER_FIELDS, "attributes"]


class AccountForm(AttributesCheckedForm):
    entity = AttributeDefinition.Entity.ACCOUNT

    class Meta:
        model = Account
        fields = ["external_id", *fields.ACCOUNT_FIELDS, "attributes"]
