"""The back office's CSV import page: upload, map columns (a new attribute with its type), report."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from config.celery import app as celery_app
from customers import import_jobs
from customers.models import AttributeDefinition, Customer, CustomerImport
from groups.models import CustomerGroup, Membership

pytestmark = pytest.mark.django_db(transaction=True)

FILE = b"Mail,Role,Points\nann@example.com,customer,12\nbob@example.com,staff,3\n"


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def upload(client, data: bytes = FILE):
    response = client.post(
        reverse("admin:customers_customer_import"),
        {"file": SimpleUploadedFile("people.csv", data, content_type="text/csv")},
    )
    assert response.status_code == 302, response.content
    return CustomerImport.objects.latest("pk")


def test_upload_map_and_import_while_waiting_with_groups_current(staff_client):
    group = CustomerGroup.objects.create(
        name="Customers", slug="customers", rules={"field": "role", "op": "eq", "value": "customer"}
    )
    assert staff_client.get(reverse("admin:customers_customer_import")).status_code == 200
    job = upload(staff_client)
    page = staff_client.get(reverse("admin:customers_customer_import_mapping", args=[job.pk]))
    assert page.status_code == 200 and b"New attribute points" in page.content
    response = staff_client.post(
        reverse("admin:customers_customer_import_mapping", args=[job.pk]),
        {"target_0": "email", "target_1": "role", "target_2": "attributes.points", "type_2": "number"},
    )
    assert response.status_code == 302
    report_page = staff_client.get(response["Location"])
    assert b"Imported 2 rows: 2 created, 0 updated" in report_page.content
    assert Customer.objects.get(email="ann@example.com").attributes == {"points": 12}
    assert AttributeDefinition.objects.get(key="points").type == "number"
    assert list(Membership.objects.filter(group=group).values_list("customer__email", flat=True)) == ["ann@example.com"]


def test_bad_rows_are_listed_with_their_value_and_nothing_is_imported(staff_client):
    job = upload(staff_client, b"Mail\nann@example.com\nnot-an-email\n")
    response = staff_client.post(
        reverse("admin:customers_customer_import_mapping", args=[job.pk]), {"target_0": "email"}, follow=True
    )
    html = response.content.decode()
    assert "Nothing imported: 1 of 2 rows has problems." in html
    assert "<td>3</td><td>Mail</td><td><code>not-an-email</code></td><td>Enter a valid email address.</td>" in html
    assert not Customer.objects.exists()


def test_the_good_rows_of_a_rejected_file_import_without_uploading_it_again(staff_client):
    group = CustomerGroup.objects.create(
        name="Customers", slug="customers", rules={"field": "role", "op": "eq", "value": "customer"}
    )
    job = upload(staff_client, b"Mail;Role\nann@example.com;customer\nnot-an-email;customer\nbob@example.com;staff\n")
    mapping = reverse("admin:customers_customer_import_mapping", args=[job.pk])
    report = staff_client.post(mapping, {"target_0": "email", "target_1": "role"}, follow=True).content.decode()
    assert "Nothing imported: 1 of 3 rows has problems." in report
    assert 'value="Import the good 2 rows"' in report
    good_rows = reverse("admin:customers_customer_import_good_rows", args=[job.pk])
    assert staff_client.get(good_rows).status_code == 405  # it changes customers: POST only
    done = staff_client.post(good_rows, follow=True).content.decode()
    assert "Imported 2 rows: 2 created, 0 updated, 1 bad row skipped." in done
    assert 'id="import-good-rows"' not in done
    assert sorted(Customer.objects.values_list("email", flat=True)) == ["ann@example.com", "bob@example.com"]
    assert list(Membership.objects.filter(group=group).values_list("customer__email", flat=True)) == ["ann@example.com"]
    job.refresh_from_db()
    assert job.status == "succeeded" and bytes(job.data) == b""  # the file is gone once imported
    again = staff_client.post(good_rows, follow=True).content.decode()
    assert "no longer waiting for its good rows" in again and Customer.objects.count() == 2


def test_a_file_with_only_bad_rows_offers_no_good_rows(staff_client):
    job = upload(staff_client, b"Mail\nnot-an-email\n")
    mapping = reverse("admin:customers_customer_import_mapping", args=[job.pk])
    report = staff_client.post(mapping, {"target_0": "email"}, follow=True).content.decode()
    assert "Nothing imported: 1 of 1 row has problems." in report and 'id="import-good-rows"' not in report


def test_a_mapping_without_a_match_column_is_refused_on_the_page(staff_client):
    job = upload(staff_client)
    response = staff_client.post(
        reverse("admin:customers_customer_import_mapping", args=[job.pk]), {"target_1": "role"}
    )
    assert response.status_code == 200 and b"external_id or to email" in response.content
    assert CustomerImport.objects.get(pk=job.pk).status == "draft"


def test_a_large_file_goes_to_the_background(staff_client, monkeypatch):
    monkeypatch.setattr(import_jobs, "INLINE_LIMIT_BYTES", 10)
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        job = upload(staff_client)
        staff_client.post(
            reverse("admin:customers_customer_import_mapping", args=[job.pk]), {"target_0": "email", "target_1": "role"}
        )
    finally:
        celery_app.conf.task_always_eager = previous
    job.refresh_from_db()
    assert job.status == "succeeded" and job.rows_read == 2 and Customer.objects.count() == 2


def test_staff_without_permission_to_add_customers_are_refused(client, django_user_model):
    user = django_user_model.objects.create_user("clerk", password="a-long-test-password", is_staff=True)
    client.force_login(user)
    assert client.get(reverse("admin:customers_customer_import")).status_code == 403
