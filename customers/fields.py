"""The customer's built-in fields and the attribute types: the one list that import, export, the rule
language and the API read and write by name."""

from __future__ import annotations

TEXT = "text"
NUMBER = "number"
BOOLEAN = "boolean"
DATE = "date"
DATETIME = "datetime"

# What a declared custom attribute can hold (AttributeDefinition.type).
ATTRIBUTE_TYPES = (TEXT, NUMBER, BOOLEAN, DATE, DATETIME)

# The fields staff and other systems write (identify, CSV import, the API), with their types, in the
# order they are listed and exported.
CUSTOMER_FIELDS: dict[str, str] = {
    "external_id": TEXT, "member_id": TEXT, "email": TEXT, "phone": TEXT, "first_name": TEXT,
    "last_name": TEXT, "status": TEXT, "role": TEXT, "signup_source": TEXT,
    "birthdate": DATE, "email_consent": BOOLEAN, "sms_consent": BOOLEAN,
}  # fmt: skip
# Kept by the application: read by rules and exports, never written by callers.
CUSTOMER_TIMESTAMPS: dict[str, str] = {"created_at": DATETIME, "updated_at": DATETIME}

# The account fields callers write; an account is found by its external_id.
ACCOUNT_FIELDS: dict[str, str] = {"name": TEXT, "kind": TEXT}


def of_type(fields: dict[str, str], type_: str) -> tuple[str, ...]:
    """The names of the fields of one type, in their order."""
    return tuple(name for name, field_type in fields.items() if field_type == type_)
