"""The cast of the automations tests: a real SMTP server, a group people enter by buying tea, a manager."""

from __future__ import annotations

import time

import pytest

from config.celery import app as celery_app
from customers.models import Customer
from groups.models import CustomerGroup

BOUGHT_TEA = {"event": "purchase", "where": [{"property": "category", "op": "eq", "value": "Chinese tea"}]}


@pytest.fixture(autouse=True)
def eager_tasks():
    """Tasks run where they are sent, as the change commits (a real worker is tested apart)."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def tea_group():
    return CustomerGroup.objects.create(name="Bought tea", slug="tea", rules=BOUGHT_TEA)


@pytest.fixture
def ann():
    return Customer.objects.create(external_id="ann", first_name="Ann", email="ann@example.com", email_consent=True,
                                   phone="+15558675309", sms_consent=True)  # fmt: skip


@pytest.fixture
def manager(django_user_model):
    return django_user_model.objects.create_user("maria", "maria@example.com", "a-long-test-password", is_staff=True)


@pytest.fixture
def api(staff_user):
    from tests.api.conftest import client_for

    return client_for(staff_user)


def buy_tea(api, external_id: str, when: str = "2026-05-01T09:30:00Z") -> None:
    """Data arrives: a purchase through the API, which puts the customer in the tea group."""
    response = api.post("/api/events/", {"customer": external_id, "name": "purchase", "occurred_at": when,
                                         "properties": {"category": "Chinese tea"}}, format="json")  # fmt: skip
    assert response.status_code == 201, response.content


def settle(timeout: float = 300) -> None:
    """Wait until the feed hands out every change so far: no older transaction is still open on the
    server (another engineer's test or benchmark may hold one for a while)."""
    from django.db.models import Max

    from groups import feed
    from groups.models import MembershipChange

    latest = MembershipChange.objects.aggregate(latest=Max("xact_id"))["latest"] or 0
    deadline = time.monotonic() + timeout
    while feed.head().xact <= latest:
        assert time.monotonic() < deadline, "the feed's horizon did not pass the latest change"
        time.sleep(0.2)


def run_automations() -> None:
    """What a worker does each minute (the sweep): read every trigger's feed and act on due firings."""
    from automations.tasks import sweep

    settle()
    sweep()


def forget_connections() -> None:
    """Drop broker connections made for the previous broker settings."""
    # Not closed: kombu keeps one pool per broker for the whole process, and the next test reuses it.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
