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


@pytest.fixture(scope="module")
def browser():
    # Per module, not per session: Playwright's event loop stays in this thread while it is open,
    # and the tests that run after the browser tests must not find it there.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module", autouse=True)
def allow_database_calls_beside_playwright():
    """Playwright's sync API keeps an event loop in this thread; Django refuses database calls from a
    thread with a running loop unless told it is deliberate (these calls are synchronous). For the
    browser's lifetime only, so it never leaks into the rest of the suite (a deploy check flags it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


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
    with start_worker(
        app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10
    ):
        yield app
    app.conf.update(broker_url=previous[0], task_always_eager=previous[1])
    _forget_connections(app)


def _forget_connections(app) -> None:
    import kombu.pools

    # kombu also keeps pools per process: a connection made by an earlier test for another broker
    # would otherwise carry this test's messages there, and the worker would never see them.
    kombu.pools.reset()
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
