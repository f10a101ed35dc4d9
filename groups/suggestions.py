"""Values the rule builder offers for a text field: the most common ones stored, with how many have each.

Staff then see that "Staff" and "staff" are both in use before they write a rule that catches one.
A value that only one customer has (an email, a phone number) is never offered.
"""

from __future__ import annotations

from django.conf import settings
from django.db import OperationalError, connection, transaction
from psycopg.errors import QueryCanceled

from customers.fields import TEXT

from .rules import Catalogue
from .rules.fields import ACCOUNT, ACCOUNT_FIELDS, ATTRIBUTES_PREFIX, CUSTOMER, CUSTOMER_FIELDS, JSON

TABLES = {CUSTOMER: "customers_customer", ACCOUNT: "customers_account"}
SHOWN = 15


def common_values(entity: str, field: str, *, catalogue: Catalogue, limit: int = SHOWN) -> list[tuple[str, int]]:
    """[(value, how many), ...], most common first, for a text field or attribute; [] for any other field.

    Runs under the preview's time limit, and offers nothing when the table is too large to count in time.
    """
    if entity not in TABLES:
        return []
    if field.startswith(ATTRIBUTES_PREFIX):
        key = field.removeprefix(ATTRIBUTES_PREFIX)
        if (catalogue.attribute_type(entity, key) or JSON) not in (TEXT, JSON):
            return []
        # Only strings: an undeclared key may also hold numbers, which the builder types as numbers.
        value, where, params = "attributes ->> %s", "jsonb_typeof(attributes -> %s) = 'string'", [key, key]
    elif (CUSTOMER_FIELDS if entity == CUSTOMER else ACCOUNT_FIELDS).get(field) == TEXT:
        column = connection.ops.quote_name(field)
        value, where, params = column, f"{column} <> ''", []
    else:
        return []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{settings.PREVIEW_TIME_LIMIT_MS}ms"])
            cursor.execute(
                f"""SELECT {value}, count(*) FROM {TABLES[entity]} WHERE {where}
                    GROUP BY 1 HAVING count(*) > 1 ORDER BY 2 DESC, 1 LIMIT %s""",
                [*params, limit],
            )
            return cursor.fetchall()
    except OperationalError as exc:
        if isinstance(exc.__cause__, QueryCanceled):
            return []
        raise
