"""Schemathesis drives every operation of the OpenAPI schema: no server errors, every answer declared and in
its declared shape."""

from __future__ import annotations

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from config.wsgi import application
from customers.models import Account, AttributeDefinition, Customer, Event
from groups.models import CustomerGroup

# A few examples per operation keep the suite fast while still sending odd input everywhere.
MAX_EXAMPLES = 6


@pytest.fixture
def token(transactional_db) -> str:
    """A staff token and a little data, so generated ids sometimes hit real rows."""
    user = get_user_model().objects.create_superuser("schema", "schema@example.com", "a-long-test-password")
    AttributeDefinition.objects.create(key="points", type="number")
    account = Account.objects.create(external_id="h1", kind="household")
    customers = [
        Customer.objects.create(external_id=str(i), email=f"c{i}@example.com", role="customer") for i in range(1, 4)
    ]
    customers[0].accounts.add(account)
    Event.objects.create(customer=customers[0], name="purchase", occurred_at="2024-01-01T00:00:00Z", amount=3)
    CustomerGroup.objects.create(
        name="Customers", slug="customers", rules={"field": "role", "op": "eq", "value": "customer"}
    )
    CustomerGroup.objects.create(name="Manual", slug="manual", kind="manual")
    return Token.objects.create(user=user).key


def test_every_operation_answers_without_server_errors_and_within_its_schema(token):
    # Hypothesis is driven directly (schemathesis' lazy pytest fixture loader does not run under this pytest).
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    headers = {"Authorization": f"Token {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case):
            case.call_and_validate(
                headers=headers, checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
            )

        check()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/", "/api/docs/redoc/"])
def test_the_schema_and_the_docs_pages_are_served(client, url):
    response = client.get(url)
    assert response.status_code == 200
