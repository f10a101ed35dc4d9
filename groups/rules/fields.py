"""The fields rules can read, their types, the operators each type allows, and the attribute catalogue."""

from __future__ import annotations

from collections.abc import Mapping

TEXT = "text"
NUMBER = "number"
BOOLEAN = "boolean"
DATE = "date"
DATETIME = "datetime"
# An attribute key that the catalogue does not declare: compared by the JSON type of the operand.
JSON = "json"

ATTRIBUTE_TYPES = (TEXT, NUMBER, BOOLEAN, DATE, DATETIME)

CUSTOMER = "customer"
ACCOUNT = "account"

CUSTOMER_FIELDS: dict[str, str] = {
    "external_id": TEXT,
    "member_id": TEXT,
    "email": TEXT,
    "signup_source": TEXT,
    "phone": TEXT,
    "birthdate": DATE,
    "first_name": TEXT,
    "created_at": DATETIME,
    "last_name": TEXT,
    "email_consent": BOOLEAN,
    "status": TEXT,
    "sms_consent": BOOLEAN,
    "role": TEXT,
}

ACCOUNT_FIELDS: dict[str, str] = {
    "external_id": TEXT,
    "name": TEXT,
    "kind": TEXT,
    "created_at": DATETIME,
}

ATTRIBUTES_PREFIX = "attributes."

# Operators that take no value.
NO_VALUE_OPS = frozenset({"is_empty", "is_not_empty", "is_true", "is_false"})
# Negative operators are exact negations of these positive ones.
NEGATIONS = {"neq": "eq", "not_in": "in", "not_contains": "contains"}
DATE_OPS = ("before", "after", "on", "between", "within_last", "more_than_ago", "within_next")

TEXT_OPS = (
    "is_empty",
    "is_not_empty",
    "eq",
    "neq",
    "in",
    "not_in",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
)
NUMBER_OPS = ("is_empty", "is_not_empty", "eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "between")
BOOLEAN_OPS = ("is_empty", "is_not_empty", "eq", "neq", "is_true", "is_false")

OPERATORS: dict[str, tuple[str, ...]] = {
    TEXT: TEXT_OPS,
    NUMBER: NUMBER_OPS,
    BOOLEAN: BOOLEAN_OPS,
    DATE: ("is_empty", "is_not_empty", *DATE_OPS, "anniversary_within_next"),
    DATETIME: ("is_empty", "is_not_empty", *DATE_OPS),
    # Undeclared keys: every text, number and boolean operator; the operand's JSON type decides the comparison.
    JSON: tuple(dict.fromkeys((*TEXT_OPS, *NUMBER_OPS, *BOOLEAN_OPS))),
}
ALL_OPERATORS: tuple[str, ...] = tuple(dict.fromkeys(op for ops in OPERATORS.values() for op in ops))

AGGREGATE_OPS = ("eq", "neq", "gt", "gte", "lt", "lte", "between")
CALENDAR_WINDOWS = (
    "today",
    "yesterday",
    "this_week",
    "last_week",
    "this_month",
    "last_month",
    "this_year",
    "last_year",
)
DURATION_UNITS = ("days", "hours", "weeks")

MAX_DEPTH = 10
MAX_CONDITIONS = 200
MAX_IN_VALUES = 1000
MAX_TEXT_LENGTH = 1000
# Durations beyond this are surely a typo, and would overflow date arithmetic.
MAX_DURATION = 100_000
MIN_YEAR, MAX_YEAR = 1000, 8999

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
