"""The back office's home page: marketing objects first, the technical tables under "System"."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def headings(html: str) -> list[str]:
    import re

    return re.findall(r'class="section"[^>]*>([^<]+)</a>', html)


def test_marketing_objects_come_first_and_the_rest_under_system(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert headings(html) == ["Customer groups", "Customers", "Automations", "Integrations", "System"]
    system = html[html.index(">System</a>") :]
    for name in ("API keys", "Staff roles", "Users", "Periodic tasks", "Crontabs", "Access attempts"):
        assert name in system, name
    marketing = html[: html.index(">System</a>")]
    assert "Periodic tasks" not in marketing and "API keys" not in marketing


def test_the_home_page_links_to_the_customer_import(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    customers = html[html.index(">Customers</a>") : html.index(">Automations</a>")]
    assert f'href="{reverse("admin:customers_customer_import")}"' in customers
    assert "Import customers from CSV" in customers


def test_a_viewer_sees_no_system_heading_and_no_import(viewer_client):
    html = viewer_client.get(reverse("admin:index")).content.decode()
    assert "Customer groups" in headings(html) and "System" not in headings(html)
    assert "Import customers from CSV" not in html


def test_an_app_page_keeps_its_own_models(admin_client):
    html = admin_client.get(reverse("admin:app_list", args=["customers"])).content.decode()
    assert "Import customers from CSV" in html and "Periodic tasks" not in html.split('id="content-main"')[1]
