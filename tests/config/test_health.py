"""/healthz answers 200 only when the database answers and the broker accepts a connection."""

from __future__ import annotations

import pytest
from django.db import connection

from config.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_url():
    """Point the Celery app at another broker for one test."""
    previous = app.conf.broker_url

    def use(url: str) -> None:
        app.conf.broker_url = url

    yield use
    app.conf.broker_url = previous


def test_healthy_with_the_file_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content.decode() == "database: ok\nbroker: ok\n"


def test_healthy_with_a_redis_broker_that_answers(client, broker_url):
    broker_url("redis://127.0.0.1:6379/0")
    assert client.get("/healthz").status_code == 200


def test_a_broker_that_refuses_connections_is_named(client, broker_url):
    broker_url("redis://127.0.0.1:1/0")  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.content.decode()
    assert "database: ok" in body and "broker: failed (OperationalError:" in body and "Connection refused" in body


def test_a_database_that_does_not_answer_is_named(client):
    settings = connection.settings_dict
    previous = settings["PORT"], settings["HOST"]
    connection.close()
    settings["HOST"], settings["PORT"] = "127.0.0.1", "1"  # nothing listens there
    try:
        response = client.get("/healthz")
    finally:
        connection.close()
        settings["PORT"], settings["HOST"] = previous
    assert response.status_code == 503
    body = response.content.decode()
    assert body.startswith("database: failed (OperationalError:") and "broker: ok" in body
