"""CSV files that used to crash an import or lose rows silently: each gets a clear answer with its line."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from customers.imports import ImportInvalid, import_customers, parse_mapping
from customers.models import Customer, CustomerImport

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def upload(client, data: bytes):
    return client.post(
        reverse("admin:customers_customer_import"),
        {"file": SimpleUploadedFile("people.csv", data, content_type="text/csv")},
        follow=True,
    )


def test_a_nul_byte_in_a_cell_is_a_bad_row_with_its_line(tmp_path):
    report = import_customers(io.BytesIO(b"email,first_name\nann@example.com,Ann\nbob@example.com,B\x00b\n"))
    assert not report.imported
    assert [(e.line, e.column) for e in report.errors] == [(3, "first_name")]
    assert "NUL" in report.errors[0].reason
    path = tmp_path / "people.csv"
    path.write_bytes(b"email,first_name\nbob@example.com,B\x00b\n")
    with pytest.raises(CommandError, match="Nothing imported"):
        call_command("import_customers", str(path), verbosity=0)


def test_a_nul_byte_in_the_back_office_is_reported_not_a_500(staff_client):
    response = upload(staff_client, b"Mail,Name\nann@example.com,A\x00n\n")
    job = CustomerImport.objects.get()
    response = staff_client.post(reverse("admin:customers_customer_import_mapping", args=[job.pk]),
                                 {"target_0": "email", "target_1": "first_name"}, follow=True)  # fmt: skip
    assert response.status_code == 200
    job.refresh_from_db()
    assert job.status == CustomerImport.Status.REJECTED
    assert "NUL" in job.report["errors"][0]["reason"]


def test_a_utf16_file_is_refused_on_the_upload_page_with_what_to_do(staff_client):
    data = "Email,Name\nann@example.com,Ann\n".encode("utf-16")
    response = upload(staff_client, data)
    assert response.status_code == 200
    assert b"UTF-16" in response.content and b"UTF-8" in response.content
    assert not CustomerImport.objects.exists()
    with pytest.raises(ImportInvalid, match="UTF-16"):
        import_customers(io.BytesIO(data))


def test_a_header_with_too_many_columns_is_refused_at_upload(staff_client):
    header = ",".join(f"c{n}" for n in range(20_000)).encode()
    response = upload(staff_client, header + b"\n" + b"x," * 19_999 + b"x\n")
    assert response.status_code == 200
    assert b"at most 1000 columns" in response.content
    assert not CustomerImport.objects.exists()


def test_an_unterminated_quote_is_an_error_at_the_line_where_it_opens():
    data = b'email,first_name\nann@example.com,Ann\nbob@example.com,"Bob\ncat@example.com,Cat\n'
    with pytest.raises(ImportInvalid, match=r"line 3: .*quote"):
        import_customers(io.BytesIO(data))
    assert not Customer.objects.exists()


def test_a_column_named_twice_in_the_header_cannot_be_mapped_by_name():
    data = b"email,Name,Name\nann@example.com,Ann,Annie\n"
    with pytest.raises(ImportInvalid, match="'Name' appears 2 times"):
        import_customers(io.BytesIO(data), parse_mapping(["email=email", "Name=first_name"]))
    assert not Customer.objects.exists()


def test_a_field_too_large_is_reported_at_its_own_line():
    data = b"email,first_name\nann@example.com,Ann\nbob@example.com,Bob\ncat@example.com," + b"x" * 5_000_000 + b"\n"
    with pytest.raises(ImportInvalid, match=r"^line 4: .*larger than"):
        import_customers(io.BytesIO(data))
