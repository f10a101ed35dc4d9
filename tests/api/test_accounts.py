"""Accounts: identify (upsert by external_id) and linking customers, with groups kept current."""

from __future__ import annotations

import pytest

from customers.models import Account, AccountMembership, AttributeDefinition, Customer
from groups.models import CustomerGroup, Membership

pytestmark = pytest.mark.django_db(transaction=True)

ACTIVE_HOUSEHOLD = {
    "account": {
        "all": [
            {"field": "kind", "op": "eq", "value": "household"},
            {"field": "attributes.subscription", "op": "eq", "value": "active"},
        ]
    }
}


def members(group) -> set[int]:
    return set(Membership.objects.filter(group=group).values_list("customer_id", flat=True))


def test_identify_creates_then_updates_and_members_follow_the_account_state(api):
    group = CustomerGroup.objects.create(name="Active households", slug="ah", rules=ACTIVE_HOUSEHOLD)
    created = api.post(
        "/api/accounts/identify/", {"external_id": "h1", "kind": "household", "name": "Smiths"}, format="json"
    )
    assert created.status_code == 201
    account = Account.objects.get(external_id="h1")
    ann = Customer.objects.create(email="ann@example.com")
    AccountMembership.objects.create(account=account, customer=ann)
    assert members(group) == set()
    updated = api.post(
        "/api/accounts/identify/", {"external_id": "h1", "attributes": {"subscription": "active"}}, format="json"
    )
    assert updated.status_code == 200 and updated.json()["name"] == "Smiths"
    assert members(group) == {ann.pk}


def test_identify_checks_declared_account_attributes(api):
    AttributeDefinition.objects.create(entity="account", key="credit", type="number")
    response = api.post(
        "/api/accounts/identify/", {"external_id": "h1", "attributes": {"credit": "ten"}}, format="json"
    )
    assert response.status_code == 400 and "credit" in response.json()["attributes"]
    assert not Account.objects.exists()


def test_members_add_and_remove_keep_groups_current(api):
    group = CustomerGroup.objects.create(name="Active households", slug="ah", rules=ACTIVE_HOUSEHOLD)
    account = Account.objects.create(external_id="h1", kind="household", attributes={"subscription": "active"})
    ann = Customer.objects.create(email="ann@example.com", external_id="ann")
    bob = Customer.objects.create(email="bob@example.com")
    added = api.post(
        f"/api/accounts/{account.pk}/members/add/",
        {"members": [{"customer": "ann", "role": "owner"}, {"customer_id": bob.pk}]},
        format="json",
    )
    assert added.status_code == 200 and added.json() == {"linked": 2}
    assert members(group) == {ann.pk, bob.pk}
    removed = api.post(
        f"/api/accounts/{account.pk}/members/remove/", {"members": [{"customer_id": bob.pk}]}, format="json"
    )
    assert removed.json() == {"unlinked": 1}
    assert members(group) == {ann.pk}


def test_members_add_names_each_unknown_customer_and_links_nobody(api):
    account = Account.objects.create(external_id="h1")
    ann = Customer.objects.create(email="ann@example.com")
    malformed = api.post(
        f"/api/accounts/{account.pk}/members/add/", {"members": [{"customer_id": ann.pk}, {}]}, format="json"
    )
    assert malformed.status_code == 400 and set(malformed.json()["members"]) == {"1"}
    unknown = api.post(
        f"/api/accounts/{account.pk}/members/add/",
        {"members": [{"customer_id": ann.pk}, {"customer": "ghost"}]},
        format="json",
    )
    assert unknown.status_code == 400
    assert unknown.json() == {"members": {"1": {"customer": ["no customer with external_id 'ghost'"]}}}
    assert not AccountMembership.objects.exists()


def test_account_list_and_retrieve(api):
    account = Account.objects.create(external_id="h1", kind="household")
    assert api.get("/api/accounts/?kind=household").json()["count"] == 1
    assert api.get(f"/api/accounts/{account.pk}/").json()["external_id"] == "h1"
