"""The fields rules can read: the built-in ones, the declared attributes (the catalogue), and their types."""

from __future__ import annotations

from collections.abc import Mapping

from customers import fields as customer_fields
from customers.fields import ATTRIBUTE_TYPES, DATETIME, TEXT

# An attribute key that the catalogue does not declare: compared by the JSON type of the operand.
JSON = "json"

CUSTOMER = "customer"
ACCOUNT = "account"

# The built-in fields rules read: what callers write, and when the customer or account was created.
CUSTOMER_FIELDS: dict[str, str] = {**customer_fields.CUSTOMER_FIELDS, "created_at": DATETIME}
ACCOUNT_FIELDS: dict[str, str] = {"external_id": TEXT, **customer_fields.ACCOUNT_FIELDS, "created_at": DATETIME}

ATTRIBUTES_PREFIX = "attributes."

# The shapes a declared date or datetime attribute holds once coerced; the SQL casts only strings of
# these shapes (and only real days), so a malformed value is "not a date" instead of an error.
_SQL_DAY = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
DATE_SQL_PATTERN = rf"^{_SQL_DAY}$"
DATETIME_SQL_PATTERN = rf"^{_SQL_DAY}[T ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{{1,6}})?(Z|[+-](0\d|1[0-4]):[0-5]\d)?$"


class Catalogue:
    """The declared custom attributes of customers and accounts: key -> type."""

    def __init__(
        self,
        customer: Mapping[str, str] | None = None,
        account: Mapping[str, str] | None = None,
        *,
        labels: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self.customer: dict[str, str] = dict(customer or {})
        self.account: dict[str, str] = dict(account or {})
        self.labels: dict[tuple[str, str], str] = dict(labels or {})
        for entity, types in ((CUSTOMER, self.customer), (ACCOUNT, self.account)):
            for key, type_ in types.items():
                if type_ not in ATTRIBUTE_TYPES:
                    raise ValueError(f"{entity} attribute '{key}' has unknown type '{type_}'")

    @classmethod
    def load(cls) -> Catalogue:
        """The catalogue as declared in the database."""
        from customers.models import AttributeDefinition

        types: dict[str, dict[str, str]] = {CUSTOMER: {}, ACCOUNT: {}}
        labels: dict[tuple[str, str], str] = {}
        for entity, key, type_, label in AttributeDefinition.objects.values_list("entity", "key", "type", "label"):
            types.setdefault(entity, {})[key] = type_
            if label:
                labels[(entity, key)] = label
        return cls(types[CUSTOMER], types[ACCOUNT], labels=labels)

    def attribute_type(self, entity: str, key: str) -> str | None:
        """The declared type of `attributes.<key>` of a customer or an account, None when undeclared."""
        return (self.customer if entity == CUSTOMER else self.account).get(key)

    def field_type(self, entity: str, field: str) -> str | None:
        """The type of a field name as written in rules; JSON for undeclared attributes, None when unknown."""
        if field.startswith(ATTRIBUTES_PREFIX):
            key = field[len(ATTRIBUTES_PREFIX) :]
            if not key:
                return None
            return self.attribute_type(entity, key) or JSON
        builtins = CUSTOMER_FIELDS if entity == CUSTOMER else ACCOUNT_FIELDS
        return builtins.get(field)

    def field_names(self, entity: str) -> list[str]:
        """Every field name a rule may use, for suggestions."""
        builtins = CUSTOMER_FIELDS if entity == CUSTOMER else ACCOUNT_FIELDS
        declared = self.customer if entity == CUSTOMER else self.account
        return [*builtins, *(ATTRIBUTES_PREFIX + key for key in declared)]

    def label(self, entity: str, field: str) -> str:
        """How a field reads in a sentence: 'first name', or the attribute's label."""
        if field.startswith(ATTRIBUTES_PREFIX):
            key = field[len(ATTRIBUTES_PREFIX) :]
            return self.labels.get((entity, key)) or key.replace("_", " ")
        return field.replace("_", " ")

    def __repr__(self) -> str:
        return f"Catalogue(customer={self.customer!r}, account={self.account!r})"
