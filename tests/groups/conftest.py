"""The common cast of the group tests: a few customers."""

from __future__ import annotations

import pytest

from customers.models import Customer


@pytest.fixture
def customers() -> dict[str, Customer]:
    """Ana is a customer (a member of the groups make_group creates), Bo is staff (never a member)."""
    return {
        "ana": Customer.objects.create(email="ana@example.com", role="customer"),
        "bo": Customer.objects.create(email="bo@example.com", role="staff"),
    }
