"""Customers: list, retrieve, create, update, identify (upsert), attributes, filters and group membership."""

from __future__ import annotations

import pytest

from customers.models import Account, AccountMembership, AttributeDefinition, Customer
from groups import services
from groups.models import CustomerGroup, Membership

pytestmark = pytest.mark.django_db(transaction=True)

CUSTOMERS_RULE = {"field": "role", "op": "eq", "value": "customer"}


def members(group) -> set[int]:
    return set(Membership.objects.filter(group=group).values_list("customer_id", flat=True))


@pytest.fixture
def customers_group():
    return CustomerGroup.objects.create(name="Customers", slug="customers", rules=CUSTOMERS_RULE)


def test_create_returns_the_customer_and_the_group_is_current(api, customers_group):
    response = api.post("/api/customers/", {"email": "ann@example.com", "role": "Customer"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "ann@example.com" and body["accounts"] == [] and body["external_id"] is None
    assert members(customers_group) == {body["id"]}


def test_update_moves_the_customer_out_of_the_group_before_the_call_returns(api, customers_group):
    customer = Customer.objects.create(email="ann@example.com", role="customer")
    assert members(customers_group) == {customer.pk}
    response = api.patch(f"/api/customers/{customer.pk}/", {"role": "staff"}, format="json")
    assert response.status_code == 200 and response.json()["role"] == "staff"
    assert members(customers_group) == set()


def test_list_and_retrieve(api):
    ann = Customer.objects.create(email="ann@example.com", external_id="a1")
    Customer.objects.create(email="bob@example.com")
    listing = api.get("/api/customers/").json()
    assert listing["count"] == 2 and [c["email"] for c in listing["results"]] == ["ann@example.com", "bob@example.com"]
    assert api.get(f"/api/customers/{ann.pk}/").json()["external_id"] == "a1"
    assert api.get("/api/customers/999999/").status_code == 404


def test_bad_fields_are_400_with_the_field_named(api):
    response = api.post("/api/customers/", {"email": "not an email", "birthdate": "31/12/1990"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"email", "birthdate"}


def test_declared_attributes_are_coerced_and_a_value_that_does_not_fit_is_400_at_its_key(api):
    AttributeDefinition.objects.create(key="points", type="number")
    AttributeDefinition.objects.create(key="vip_since", type="date")
    ok = api.post(
        "/api/customers/", {"email": "a@example.com", "attributes": {"points": "12", "note": "hi"}}, format="json"
    )
    assert ok.status_code == 201 and ok.json()["attributes"] == {"points": 12, "note": "hi"}
    bad = api.post("/api/customers/", {"attributes": {"points": "lots", "vip_since": "yesterday"}}, format="json")
    assert bad.status_code == 400
    errors = bad.json()["attributes"]
    assert set(errors) == {"points", "vip_since"}
    assert "number" in errors["points"][0] and "points" in errors["points"][0]
    assert Customer.objects.count() == 1


def test_attributes_must_be_an_object(api):
    response = api.post("/api/customers/", {"attributes": [1, 2]}, format="json")
    assert response.status_code == 400 and "attributes" in response.json()


def test_identify_creates_then_updates_by_external_id(api, customers_group):
    first = api.post(
        "/api/customers/identify/", {"external_id": "pos-1", "email": "ann@example.com", "role": "staff"}, format="json"
    )
    assert first.status_code == 201
    second = api.post(
        "/api/customers/identify/",
        {"external_id": "pos-1", "role": "customer", "attributes": {"tier": "gold"}},
        format="json",
    )
    assert second.status_code == 200
    body = second.json()
    assert body["id"] == first.json()["id"] and body["email"] == "ann@example.com" and body["role"] == "customer"
    assert members(customers_group) == {body["id"]}


def test_identify_matches_email_ignoring_case_and_merges_attributes(api):
    customer = Customer.objects.create(email="Ann@Example.com", attributes={"tier": "gold", "points": 3})
    response = api.post(
        "/api/customers/identify/", {"email": "ann@example.COM", "attributes": {"points": 4}}, format="json"
    )
    assert response.status_code == 200 and response.json()["id"] == customer.pk
    customer.refresh_from_db()
    assert customer.attributes == {"tier": "gold", "points": 4}


def test_identify_with_a_new_external_id_claims_the_web_sign_up_with_that_email(api):
    web = Customer.objects.create(email="ann@example.com")
    response = api.post("/api/customers/identify/", {"external_id": "pos-9", "email": "ANN@example.com"}, format="json")
    assert response.status_code == 200 and response.json()["id"] == web.pk
    web.refresh_from_db()
    assert web.external_id == "pos-9"


def test_identify_needs_an_external_id_or_an_email(api):
    response = api.post("/api/customers/identify/", {"first_name": "Ann"}, format="json")
    assert response.status_code == 400 and "external_id" in response.json()


def test_identify_links_accounts_and_groups_reading_accounts_are_current(api):
    group = CustomerGroup.objects.create(
        name="Households",
        slug="households",
        rules={"account": {"field": "kind", "op": "eq", "value": "household"}},
    )
    Account.objects.create(external_id="h1", kind="household")
    response = api.post(
        "/api/customers/identify/",
        {"external_id": "c1", "accounts": [{"external_id": "h1", "role": "owner"}, {"external_id": "new-acct"}]},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert sorted(a["external_id"] for a in body["accounts"]) == ["h1", "new-acct"]
    assert AccountMembership.objects.get(account__external_id="h1").role == "owner"
    assert members(group) == {body["id"]}


@pytest.fixture
def cast():
    ann = Customer.objects.create(email="Ann@Example.com", role="Customer", status="active", external_id="a")
    bob = Customer.objects.create(email="bob@example.com", role="staff", status="inactive", external_id="b")
    cy = Customer.objects.create(email="cy@example.com", role="customer", email_consent=True)
    return ann, bob, cy


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {c["id"] for c in response.json()["results"]}


def test_filters_by_fields(api, cast):
    ann, bob, cy = cast
    assert ids(api.get("/api/customers/?role=customer")) == {ann.pk, cy.pk}
    assert ids(api.get("/api/customers/?email=ann@example.com")) == {ann.pk}
    assert ids(api.get("/api/customers/?external_id=b")) == {bob.pk}
    assert ids(api.get("/api/customers/?status=ACTIVE")) == {ann.pk}
    assert ids(api.get("/api/customers/?email_consent=true")) == {cy.pk}


def test_filters_by_group_and_not_in_group(api, cast, customers_group):
    ann, bob, cy = cast
    services.refresh(customers_group)
    assert ids(api.get(f"/api/customers/?group={customers_group.pk}")) == {ann.pk, cy.pk}
    assert ids(api.get(f"/api/customers/?not_in_group={customers_group.pk}")) == {bob.pk}
    assert ids(api.get(f"/api/customers/?group={customers_group.pk}&email_consent=true")) == {cy.pk}


def test_filtered_customers_export_as_csv(api, cast, customers_group):
    services.refresh(customers_group)
    response = api.get(f"/api/customers/export.csv?group={customers_group.pk}&columns=external_id,email")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines == ["external_id,email", "a,Ann@Example.com", ",cy@example.com"]


def test_identify_takes_null_as_no_value_and_null_attributes_away(api):
    AttributeDefinition.objects.create(key="points", type="number")
    customer = Customer.objects.create(
        external_id="pos-1", email="ann@example.com", phone="+44 20", birthdate="1990-02-01",
        attributes={"tier": "gold", "points": 3, "note": "x"},
    )  # fmt: skip
    response = api.post(
        "/api/customers/identify/",
        {"external_id": "pos-1", "phone": None, "birthdate": None, "attributes": {"tier": None, "points": None,
                                                                                 "note": "y"}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200, response.json()
    assert response.json()["phone"] == "" and response.json()["attributes"] == {"note": "y"}
    customer.refresh_from_db()
    assert (customer.phone, customer.birthdate, customer.email) == ("", None, "ann@example.com")
    assert customer.attributes == {"note": "y"}


def test_groups_follow_a_value_removed_by_null(api):
    group = CustomerGroup.objects.create(
        name="With a phone", slug="with-a-phone", rules={"field": "phone", "op": "is_not_empty"}
    )
    customer = Customer.objects.create(external_id="pos-1", phone="+44 20")
    services.refresh(group)
    assert members(group) == {customer.pk}
    api.post("/api/customers/identify/", {"external_id": "pos-1", "phone": None}, format="json")
    assert members(group) == set()


@pytest.mark.parametrize("field", ["email_consent", "sms_consent"])
def test_consents_refuse_null_with_a_clear_message(api, field):
    customer = Customer.objects.create(external_id="pos-1", **{field: True})
    response = api.post("/api/customers/identify/", {"external_id": "pos-1", field: None}, format="json")
    assert response.status_code == 400
    assert response.json() == {field: [f"{field} is true or false, not null: send false when the customer has "
                                       "not consented"]}  # fmt: skip
    customer.refresh_from_db()
    assert getattr(customer, field) is True


def test_a_patch_with_a_null_attribute_leaves_the_key_out(api):
    customer = Customer.objects.create(email="ann@example.com", attributes={"tier": "gold"})
    response = api.patch(f"/api/customers/{customer.pk}/", {"attributes": {"tier": None, "vip": True}}, format="json")
    assert response.status_code == 200 and response.json()["attributes"] == {"vip": True}
