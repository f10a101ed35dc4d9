"""Lightspeed's rotating refresh token with the service's own credentials lock: workers that each
load the connection and find the access token missing refresh it once, and the rotated refresh
token is what the database keeps."""

from __future__ import annotations

import threading

import pytest
from django.db import connection as db

from integrations import services
from integrations.models import Connection

pytestmark = pytest.mark.django_db(transaction=True)


def test_workers_of_one_connection_refresh_once_and_the_database_keeps_the_rotated_token(fake_lightspeed):
    connection = Connection.objects.create(
        kind="lightspeed",
        name="Shop POS",
        settings={"account_id": fake_lightspeed.account_id, "api_url": fake_lightspeed.api_url,
                  "token_url": fake_lightspeed.token_url},
        credentials=fake_lightspeed.credentials(),
    )  # fmt: skip
    answers, start = [], threading.Barrier(3)

    def worker():
        try:
            provider = services.provider_for(Connection.objects.get(pk=connection.pk))
            start.wait()
            answers.append(provider.check())
        finally:
            db.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert answers == ["Corner Café"] * 3
    assert fake_lightspeed.refreshes == 1
    stored = Connection.objects.get(pk=connection.pk).credentials
    assert stored["refresh_token"] == fake_lightspeed.refresh_token == "rt-1"
    assert stored["access_token"] in fake_lightspeed.access_tokens
