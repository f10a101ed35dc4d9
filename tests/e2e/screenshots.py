"""`make screenshots`: the README's pictures of the back office, taken from seeded demo data.

Run explicitly (pytest collects only test_*.py files by itself). The demo data is the same as
`make run` seeds; the size history before today is drawn as a gentle random walk, because a fresh
database has only today's snapshot and a flat chart would not show what the chart is for.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from customers.models import Customer
from groups import services
from groups.models import CustomerGroup, SizeSnapshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
HISTORY_DAYS = 60


def add_size_history(seed: int = 7) -> None:
    rng = random.Random(seed)
    now = timezone.now()
    for group in CustomerGroup.objects.all():
        count, rows = group.member_count, []
        for days_ago in range(1, HISTORY_DAYS + 1):
            count = max(0, round(count * (1 + rng.uniform(-0.04, 0.035))))
            moment = now - timedelta(days=days_ago)
            rows.append(SizeSnapshot(group=group, kind="daily", taken_at=moment, day=moment.date(), member_count=count))
        SizeSnapshot.objects.bulk_create(rows, ignore_conflicts=True)


def shoot(page, name: str) -> None:
    """The whole page at once: a viewport as tall as the page, since Chromium's full-page capture
    draws the admin's sticky fieldset headings as blank bars."""
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": 1500, "height": max(900, height)})
    page.screenshot(path=OUT / name)
    page.set_viewport_size({"width": 1500, "height": 900})


def test_screenshots(page, django_user_model):
    call_command("seed_demo", customers=1500, seed=1, verbosity=0)
    add_size_history()
    OUT.mkdir(parents=True, exist_ok=True)
    base = page.base
    page.set_viewport_size({"width": 1500, "height": 900})
    # The navigation sidebar takes a third of the width; the pictures are about the groups.
    page.evaluate("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")

    page.goto(f"{base}/admin/groups/customergroup/")
    shoot(page, "group-list.png")

    group = CustomerGroup.objects.get(slug="lapsed-vips")
    change = f"{base}/admin/groups/customergroup/{group.pk}/change/"
    page.goto(
        change + "?tab=members&range=90&columns=id&columns=email&columns=first_name&columns=last_name"
        "&columns=attributes.tier&columns=added_at"
    )
    shoot(page, "members.png")

    # A little life in the history: three VIPs are no longer flagged, and leave on the event path.
    for customer in Customer.objects.filter(group_memberships__group=group).order_by("pk")[:3]:
        customer.attributes = {**customer.attributes, "vip": False}
        customer.save()
    today = timezone.localdate().isoformat()
    page.goto(change + f"?tab=history&on={today}")
    shoot(page, "history.png")

    page.goto(change + "?tab=settings")
    page.wait_for_selector(".rb-preview.rb-ok")  # the live preview has answered
    shoot(page, "settings.png")

    # Trying other rules: the preview names who would enter and who would leave, before saving.
    lapsed = CustomerGroup.objects.get(slug="lapsed-60-days")
    tried = {"all": [{"in_group": lapsed.pk}, {"field": "attributes.tier", "op": "eq", "value": "platinum"}]}
    page.click("text=Rules as JSON")
    page.fill("#id_rules", json.dumps(tried))
    page.wait_for_selector(".rb-leaving")
    page.click("text=Rules as JSON")  # folded again, as staff see it
    page.locator(".rule-builder").screenshot(path=OUT / "preview.png")

    # Saved by a manager: the rule history shows both versions and what changed.
    services.change_rules(group, tried, initiated_by=django_user_model.objects.get(username="boss"))
    page.goto(change + "?tab=settings")
    page.locator("#rule-history").screenshot(path=OUT / "rule-history.png")

    page.goto(f"{base}/admin/groups/customergroup/columns/")
    page.locator("#content").screenshot(path=OUT / "columns.png")


def test_customer_screenshots(page, tmp_path):
    call_command("seed_demo", customers=1500, seed=1, verbosity=0)
    OUT.mkdir(parents=True, exist_ok=True)
    base = page.base
    page.set_viewport_size({"width": 1500, "height": 900})
    page.evaluate("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")

    # The customer list, filtered to the customers not in a group, with its Import and Export buttons.
    vips = CustomerGroup.objects.get(slug="lapsed-vips")
    page.goto(f"{base}/admin/customers/customer/?role=customer&not_in_group={vips.pk}")
    page.screenshot(path=OUT / "customers.png")  # the first screenful: a hundred rows say no more

    # An import with bad rows: each problem with its value, and the good rows one click away.
    upload = tmp_path / "till-export.csv"
    upload.write_text(
        "Customer ID;Email;First name;Phone\n'7210448301122;mia@example.com;Mia;'+44 20 7946 0001\n"
        "'7210448301123;not-an-email;Noor;\n'7210448301124;leo@example.com;Leo;+44 20 7946 0003\n",
        encoding="utf-8",
    )
    page.goto(f"{base}/admin/customers/customer/import/")
    page.set_input_files("#id_file", str(upload))
    page.click("input[type=submit].default")
    page.select_option("select[name=target_0]", "external_id")
    page.click("input[type=submit].default")
    page.wait_for_selector("#import-good-rows")
    page.locator("#content").screenshot(path=OUT / "import-report.png")


def test_automation_screenshots(page):
    from automations.models import Trigger

    call_command("seed_demo", customers=1500, seed=1, verbosity=0)
    OUT.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1500, "height": 900})
    page.evaluate("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")

    # The demo's thank-you email: its preview with a real member, then the fields of the email action only.
    trigger = Trigger.objects.get(name="Thank tea buyers with a code")
    page.goto(f"{page.base}/admin/automations/trigger/{trigger.pk}/change/")
    page.wait_for_selector("#message-preview .preview-subject")
    page.locator("#content").screenshot(path=OUT / "trigger-form.png")
