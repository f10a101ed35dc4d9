"""Long, growing lists (history, members) page by cursor: every row exactly once, in a total order,
even while rows are added and removed between pages."""

from __future__ import annotations

import pytest
from django.db import connection

from customers.models import Customer
from groups import services
from groups.models import CustomerGroup, MembershipChange

pytestmark = pytest.mark.django_db


def make_customers(n: int, role: str = "customer") -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO customers_customer (external_id, email, phone, first_name, last_name, status, role,
                signup_source, member_id, email_consent, sms_consent, attributes, created_at, updated_at)
            SELECT %s || n, '', '', '', '', '', %s, '', '', false, false, '{}', now(), now()
            FROM generate_series(1, %s) n
            """,
            [role, role, n],
        )


def every_page(api, url: str) -> list[dict]:
    rows = []
    while url:
        body = api.get(url).json()
        rows += body["results"]
        url = body["next"]
    return rows


@pytest.fixture
def big_group(db):
    make_customers(450)
    group = CustomerGroup.objects.create(name="Customers", slug="customers",
                                         rules={"field": "role", "op": "eq", "value": "customer"})  # fmt: skip
    services.refresh(group)  # one refresh: 450 history rows with the same time
    return group


@pytest.mark.parametrize("ordering", ["changed_at", "-changed_at", "id", "-id", None])
def test_history_pages_show_each_row_once_in_a_total_order(api, big_group, ordering):
    assert MembershipChange.objects.filter(group=big_group).values("changed_at").distinct().count() == 1
    query = f"?ordering={ordering}" if ordering else ""
    rows = every_page(api, f"/api/groups/{big_group.pk}/history/{query}")
    ids = [row["id"] for row in rows]
    assert len(ids) == 450 == len(set(ids))
    assert ids == sorted(ids, reverse=bool(ordering is None or ordering.startswith("-")))


@pytest.mark.django_db(transaction=True)  # each refresh commits on its own, with its own time, as in production
def test_history_paged_while_the_group_changes_sees_every_earlier_row_once(api, big_group):
    before = set(MembershipChange.objects.filter(group=big_group).values_list("pk", flat=True))
    first = api.get(f"/api/groups/{big_group.pk}/history/").json()  # newest first, the default
    Customer.objects.filter(external_id__in=[f"customer{n}" for n in range(1, 60)]).update(role="staff")
    services.refresh(big_group)
    seen = [row["id"] for row in first["results"]] + [row["id"] for row in every_page(api, first["next"])]
    assert len(seen) == len(set(seen))
    assert before <= set(seen)


@pytest.mark.django_db(transaction=True)
def test_members_paged_while_members_leave_sees_everyone_who_stayed(api, big_group):
    first = api.get(f"/api/groups/{big_group.pk}/members/").json()
    leaving = [row["id"] for row in first["results"][:50]]
    Customer.objects.filter(pk__in=leaving).update(role="staff")
    services.refresh(big_group)
    seen = [row["id"] for row in first["results"]] + [row["id"] for row in every_page(api, first["next"])]
    stayed = set(big_group.memberships.values_list("customer_id", flat=True))
    assert len(seen) == len(set(seen))
    assert stayed <= set(seen)


def test_history_rejects_an_ordering_it_does_not_offer(api, big_group):
    rows = api.get(f"/api/groups/{big_group.pk}/history/?ordering=reason").json()["results"]
    ids = [row["id"] for row in rows]
    assert ids == sorted(ids, reverse=True)  # the default order, as DRF ignores unknown fields


def test_previous_links_lead_back_to_the_same_pages(api, big_group):
    url = f"/api/groups/{big_group.pk}/history/?ordering=changed_at&page_size=50"
    first = api.get(url).json()
    second = api.get(first["next"]).json()
    assert first["previous"] is None
    back = api.get(second["previous"]).json()
    assert [row["id"] for row in back["results"]] == [row["id"] for row in first["results"]]


def test_a_forged_cursor_is_a_404_not_a_500(api, big_group):
    answer = api.get(f"/api/groups/{big_group.pk}/history/?cursor=bm90LWEtY3Vyc29y")
    assert answer.status_code == 404
