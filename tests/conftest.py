"""Shared fixtures: the common cast of a staff user and a few customers."""

from __future__ import annotations

import pytest


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_superuser("staff", "staff@example.com", "a-long-test-password")


@pytest.fixture
def fake_klaviyo():
    """A fake Klaviyo on 127.0.0.1 (tests/fakes/klaviyo.py), its state fresh for each test."""
    from tests.fakes.klaviyo import FakeKlaviyo

    with FakeKlaviyo() as fake:
        yield fake


@pytest.fixture
def fake_mailchimp():
    """A fake Mailchimp on 127.0.0.1 (tests/fakes/mailchimp.py), its state fresh for each test."""
    from tests.fakes.mailchimp import FakeMailchimp

    with FakeMailchimp() as fake:
        yield fake


@pytest.fixture
def fake_lightspeed():
    """A fake Lightspeed Retail (R-Series) on 127.0.0.1 (tests/fakes/lightspeed.py)."""
    from tests.fakes.lightspeed import FakeLightspeed

    with FakeLightspeed() as fake:
        yield fake


@pytest.fixture
def smtp(settings):
    """Django's SMTP backend pointed at a real SMTP server on a free local port (tests/fakes/smtp.py)."""
    from tests.fakes.smtp import SmtpServer

    with SmtpServer() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        yield server.inbox


@pytest.fixture(autouse=True)
def _fresh_cache():
    """API throttle counts live in the cache; each test starts with full allowances."""
    from django.core.cache import cache

    cache.clear()
    yield
