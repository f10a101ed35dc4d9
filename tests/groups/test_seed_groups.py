"""The demo's example groups come with their members computed by the engine."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from customers.models import Customer
from groups.models import CustomerGroup

from .history import members, replay

pytestmark = pytest.mark.django_db(transaction=True)


def test_seeded_example_groups_hold_their_members():
    call_command("seed_demo", "--customers", "300", stdout=StringIO())

    staff = CustomerGroup.objects.get(name="Staff")
    assert members(staff) == set(Customer.objects.filter(role__iexact="staff").values_list("id", flat=True))
    no_email = CustomerGroup.objects.get(name="No email")
    no_email_customers = Customer.objects.filter(email="", role__iexact="customer")
    assert members(no_email) == set(no_email_customers.values_list("id", flat=True))
    assert len(members(CustomerGroup.objects.get(slug="tasting-panel"))) == 12
    for group in CustomerGroup.objects.all():
        assert replay(group) == members(group), group.name
        assert group.member_count == len(members(group)), group.name
