"""The common cast for sync tests: a webhook receiver on 127.0.0.1, a connection to it, a manual group."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection as db

from customers.models import Customer
from groups.models import CustomerGroup
from integrations.models import Connection
from integrations.providers.webhook import new_secret
from tests.fakes.webhook_receiver import WebhookReceiver


@pytest.fixture
def secret():
    return new_secret()


@pytest.fixture
def receiver(secret):
    with WebhookReceiver(secret) as running:
        yield running


@pytest.fixture
def webhook(receiver, secret):
    return Connection.objects.create(
        kind="webhook", name="Receiver", settings={"url": receiver.url, "timeout": 3.0}, credentials={"secret": secret}
    )


@pytest.fixture
def group():
    return CustomerGroup.objects.create(name="Regulars", slug="regulars", kind=CustomerGroup.Kind.MANUAL)


@pytest.fixture
def people():
    return [Customer.objects.create(email=f"p{i}@example.com", email_consent=i % 2 == 0) for i in range(10)]


@pytest.fixture
def other_session():
    """A second, independent session on the test database, to hold a transaction open."""
    settings = db.settings_dict
    conn = psycopg.connect(dbname=settings["NAME"], user=settings["USER"], password=settings["PASSWORD"] or None,
                           host=settings["HOST"] or None, port=settings["PORT"] or None)  # fmt: skip
    yield conn
    conn.rollback()
    conn.close()


def _forget_connections(app) -> None:
    import kombu.pools

    kombu.pools.reset()  # the producer pools are kept per broker address, across apps
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture(autouse=True)
def memory_broker():
    """Tasks queued by a test go to an in-memory broker: run by the `worker` fixture, or by nobody."""
    from config.celery import app

    previous = app.conf.broker_url, app.conf.task_always_eager
    app.conf.update(broker_url="memory://", task_always_eager=False)
    _forget_connections(app)
    yield app
    app.conf.update(broker_url=previous[0], task_always_eager=previous[1])
    _forget_connections(app)


@pytest.fixture
def worker(memory_broker):
    """A real Celery worker in a thread, taking the tasks the test queues."""
    from celery.contrib.testing.worker import start_worker

    with start_worker(memory_broker, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING",
                      shutdown_timeout=10):  # fmt: skip
        yield


def wait_until(condition, timeout: float = 60.0, what: str = "the condition") -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
