"""A real browser (Debian's Chromium through Playwright) against a live server, and a real Celery worker.

The browser is the system's Chromium, never one Playwright downloads. Without it the tests are skipped
on a workstation with the reason said, but in CI (where .ci/run installs it) they must run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "a-long-e2e-password"


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists() or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django refuses database calls from a
    # thread with a running loop unless told that this is deliberate (the calls are synchronous).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("boss", "boss@example.com", PASSWORD)


@pytest.fixture
def page(browser, live_server, superuser):
    """A logged-in page; `page.base` is the live server's address."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.base = live_server.url
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", superuser.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    yield page
    context.close()


@pytest.fixture
def celery_worker_thread():
    """A real Celery worker in a thread, fed through an in-memory broker, for "Refresh now"."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    previous = app.conf.broker_url, app.conf.task_always_eager
    app.conf.update(broker_url="memory://", task_always_eager=False)
    _forget_connections(app)  # connections made for the configured broker must not be reused
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING",
                      shutdown_timeout=10):  # fmt: skip
        yield app
    app.conf.update(broker_url=previous[0], task_always_eager=previous[1])
    _forget_connections(app)


def _forget_connections(app) -> None:
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
