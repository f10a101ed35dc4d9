"""Custom attributes on write: declared keys are checked and stored in their catalogue type."""

from __future__ import annotations

import re
from typing import Any

from .models import AttributeDefinition
from .values import coerce_attribute_value

KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def declared_types(entity: str = AttributeDefinition.Entity.CUSTOMER) -> dict[str, str]:
    """key -> type of the attributes the catalogue declares for customers or accounts."""
    return dict(AttributeDefinition.objects.filter(entity=entity).values_list("key", "type"))


def clean_attributes(values: Any, types: dict[str, str]) -> tuple[dict, dict[str, str]]:
    """The attributes to store, and per key the reason a value does not fit ({} when all fit).

    Undeclared keys are stored as given (rules compare them by their JSON type); declared ones are
    coerced, e.g. "12" for a number attribute is stored as 12.
    """
    if not isinstance(values, dict):
        return {}, {"": "attributes must be a JSON object of key: value"}
    cleaned: dict = {}
    errors: dict[str, str] = {}
    for key, value in values.items():
        if not KEY_RE.match(str(key)):
            errors[str(key)] = "attribute keys are 1 to 100 letters, digits, _ or -"
            continue
        type_ = types.get(key)
        if type_ is None:
            cleaned[key] = value
            continue
        try:
            cleaned[key] = coerce_attribute_value(type_, value)
        except ValueError as exc:
            errors[key] = f"'{key}' is declared as {type_}: {exc}"
    return cleaned, errors
