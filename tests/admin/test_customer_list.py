"""The customer list: its Import and Export CSV buttons, the group filters, and the export of what it shows."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

LIST = "admin:customers_customer_changelist"
EXPORT = "admin:customers_customer_export"


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def emails(response) -> list[str]:
    return [row["email"] for row in csv.DictReader(io.StringIO(body(response).decode()))]


def test_the_list_offers_import_and_an_export_of_what_it_shows(admin_client, customers, dynamic_group):
    html = admin_client.get(reverse(LIST) + f"?in_group={dynamic_group.pk}&q=ann").content.decode()
    assert f'href="{reverse("admin:customers_customer_import")}"' in html
    assert f'href="{reverse(EXPORT)}?in_group={dynamic_group.pk}&amp;q=ann"' in html


def test_the_export_follows_the_group_filters_the_other_filters_and_the_search(admin_client, customers, dynamic_group):
    url = reverse(EXPORT)
    assert emails(admin_client.get(url)) == ["ann@example.com", "bob@example.com", "cat@example.com"]
    assert emails(admin_client.get(url, {"in_group": dynamic_group.pk})) == ["ann@example.com", "cat@example.com"]
    assert emails(admin_client.get(url, {"not_in_group": dynamic_group.pk})) == ["bob@example.com"]
    assert emails(admin_client.get(url, {"role": "customer", "q": "cat"})) == ["cat@example.com"]


def test_not_in_group_filters_the_list_itself(admin_client, customers, dynamic_group):
    html = admin_client.get(reverse(LIST), {"not_in_group": dynamic_group.pk}).content.decode()
    assert "bob@example.com" in html and "ann@example.com" not in html and "cat@example.com" not in html
    assert "By not in group" in html


def test_the_export_writes_what_the_api_export_writes(admin_client, staff_user, customers, dynamic_group):
    customers[0].phone = "=1+2"  # a formula, quoted by the same rule in both
    customers[0].save()
    api = APIClient()
    api.force_authenticate(staff_user)
    columns = "id,email,phone,sms_consent"
    from_api = api.get("/api/customers/export.csv", {"group": dynamic_group.pk, "columns": columns})
    from_list = admin_client.get(reverse(EXPORT), {"in_group": dynamic_group.pk, "columns": columns})
    assert from_list["Content-Type"] == "text/csv; charset=utf-8" and from_list.streaming
    written = body(from_list)
    assert written == body(from_api)
    assert "'=1+2" in written.decode()


def test_the_default_columns_include_phone_and_consents(admin_client, customers):
    header = body(admin_client.get(reverse(EXPORT))).decode().splitlines()[0]
    assert header == "id,external_id,email,phone,first_name,last_name,email_consent,sms_consent"


def test_unknown_columns_and_filters_are_refused_with_their_name(admin_client, customers):
    response = admin_client.get(reverse(EXPORT), {"columns": "email,password"})
    assert response.status_code == 400 and "'password'" in response.content.decode()
    assert admin_client.get(reverse(EXPORT), {"no_such_filter": "1"}).status_code == 400


def test_staff_who_may_only_view_customers_get_no_buttons_and_no_export(viewer_client, customers):
    html = viewer_client.get(reverse(LIST)).content.decode()
    assert 'id="import-customers"' not in html and 'id="export-customers"' not in html
    response = viewer_client.get(reverse(EXPORT))
    assert response.status_code == 403
    assert "Can export customers and group members as CSV" in response.content.decode()


def test_the_export_permission_alone_brings_the_button_and_the_download(viewer_client, viewer, customers):
    viewer.user_permissions.add(Permission.objects.get(codename="export_customer"))
    assert 'id="export-customers"' in viewer_client.get(reverse(LIST)).content.decode()
    assert emails(viewer_client.get(reverse(EXPORT)))[0] == "ann@example.com"


def test_times_on_the_customer_list_and_page_say_their_zone(admin_client, customers, settings):
    from datetime import UTC, datetime

    from customers.models import Customer

    settings.TIME_ZONE = "Europe/Paris"
    ann = Customer.objects.get(email="ann@example.com")
    Customer.objects.filter(pk=ann.pk).update(created_at=datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    listed = admin_client.get(reverse(LIST) + "?q=ann").content.decode()
    assert "July 1, 2026, 2 p.m. CEST" in listed  # noon UTC, shown in the site's zone with its name
    page = admin_client.get(reverse("admin:customers_customer_change", args=[ann.pk])).content.decode()
    assert "July 1, 2026, 2 p.m. CEST" in page
