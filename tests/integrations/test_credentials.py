"""Credentials are encrypted at rest, rotate to a new key, and are locked while a provider refreshes them."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.db import connection as db
from django.test import override_settings

from integrations import services
from integrations.models import Connection

pytestmark = pytest.mark.django_db(transaction=True)


def stored_text(connection: Connection) -> str:
    with db.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_connection WHERE id = %s", [connection.pk])
        return cursor.fetchone()[0]


def fresh(connection: Connection) -> Connection:
    # A new field instance per key set: the library caches its keys on the field.
    field = Connection._meta.get_field("credentials")
    for name in ("keys", "f"):
        field.__dict__.pop(name, None)
    return Connection.objects.get(pk=connection.pk)


@pytest.fixture(autouse=True)
def forget_keys_after():
    yield
    field = Connection._meta.get_field("credentials")
    for name in ("keys", "f"):
        field.__dict__.pop(name, None)


def test_credentials_are_stored_encrypted_and_read_back(webhook, secret):
    assert secret not in stored_text(webhook)
    assert fresh(webhook).credentials == {"secret": secret}


def test_rotating_keys_keeps_credentials_readable_and_moves_them_to_the_new_key(webhook, secret):
    before = stored_text(webhook)
    with override_settings(SALT_KEY=["new-key", "customer-groups-credentials"]):
        assert fresh(webhook).credentials == {"secret": secret}  # the old key still decrypts
        call_command("rotate_credentials")
        assert stored_text(webhook) != before
    with override_settings(SALT_KEY=["new-key"]):
        assert fresh(webhook).credentials == {"secret": secret}  # only the new key is needed now
    with override_settings(SALT_KEY=["another-key"]):
        with pytest.raises(services.CredentialsUnreadable):
            services.provider_for(fresh(webhook))


def test_the_credentials_lock_serialises_refreshes_and_hands_out_the_freshest(webhook):
    order = []
    inside = threading.Event()

    def first():
        with services.credentials_lock(webhook.pk) as credentials:
            inside.set()
            order.append(("first saw", credentials["secret"][:6]))
            services.store_credentials(webhook.pk, {"secret": "rotated"})
            threading.Event().wait(0.3)
        db.close()

    thread = threading.Thread(target=first)
    thread.start()
    inside.wait(5)
    with services.credentials_lock(webhook.pk) as credentials:  # waits for the first to commit
        order.append(("second saw", credentials["secret"]))
    thread.join()
    assert order == [("first saw", "whsec_"), ("second saw", "rotated")]


def test_secrets_are_shown_back_only_masked():
    assert services.mask("whsec_abcdefghijklmnop") == "••••••••mnop"
    assert services.mask("short") == "••••••••"
