"""`manage.py refresh_groups`: refresh by hand from the command line."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from customers.models import Customer
from groups.models import CustomerGroup, RefreshRun

from .history import members

pytestmark = pytest.mark.django_db(transaction=True)


def test_refresh_groups_brings_the_named_groups_up_to_date_and_reports_it():
    group = CustomerGroup.objects.create(
        name="Staff", slug="staff", rules={"field": "role", "op": "eq", "value": "staff"}
    )
    other = CustomerGroup.objects.create(name="Other", slug="other", rules={"field": "role", "op": "eq", "value": "x"})
    customer = Customer.objects.create(email="s@example.com", role="customer")
    with connection.cursor() as cursor:  # a change the event path never heard of
        cursor.execute("UPDATE customers_customer SET role = 'staff' WHERE id = %s", [customer.pk])

    out, err = StringIO(), StringIO()
    call_command("refresh_groups", "--group", str(group.pk), stdout=out, stderr=err)

    assert members(group) == {customer.pk}
    assert "Staff: +1 -0" in out.getvalue() and "Refreshed 1 groups." in out.getvalue()
    assert RefreshRun.objects.filter(group=group, reason="manual_refresh", status="succeeded").count() == 1
    assert not RefreshRun.objects.filter(group=other).exists()


def test_refresh_groups_needs_a_choice_and_known_ids():
    with pytest.raises(CommandError, match="either --group"):
        call_command("refresh_groups")
    with pytest.raises(CommandError, match="No dynamic group with id 999"):
        call_command("refresh_groups", "--group", "999")


def test_refresh_groups_all_reports_a_failing_group_and_carries_on():
    good = CustomerGroup.objects.create(name="Good", slug="good", rules={"field": "role", "op": "eq", "value": "c"})
    broken = CustomerGroup.objects.create(name="Broken", slug="broken", rules={})
    # Rules that bypassed validation (a hand edit in the database) make the refresh fail for real.
    CustomerGroup.objects.filter(pk=broken.pk).update(rules={"field": "no_such_field", "op": "eq", "value": 1})
    Customer.objects.create(email="c@example.com", role="c")

    with pytest.raises(CommandError, match="1 of 2 groups failed"):
        call_command("refresh_groups", "--all", stdout=StringIO(), stderr=StringIO())

    assert len(members(good)) == 1
    run = RefreshRun.objects.get(group=broken)
    assert run.status == "failed" and "no_such_field" in run.error
