"""A real Celery worker killed in the middle of a send neither loses nor doubles a message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from automations import sends
from automations.models import Send, SendRecipient
from config.celery import app as celery_app
from config.env import database_url
from customers.models import Customer
from groups import services
from groups.models import CustomerGroup

from .conftest import forget_connections

pytestmark = pytest.mark.django_db(transaction=True)
BASE_DIR = Path(__file__).resolve().parents[2]
MEMBERS = 40


@pytest.fixture
def shared_broker(tmp_path):
    """A file broker in a temporary folder, shared by this test and the worker processes it starts."""
    folders = {name: tmp_path / "broker" / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    previous = celery_app.conf.broker_url, dict(celery_app.conf.broker_transport_options or {})
    celery_app.conf.task_always_eager = False
    celery_app.conf.broker_url = "filesystem://"
    celery_app.conf.broker_transport_options = {
        "data_folder_in": str(folders["queue"]), "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]), "control_folder": str(folders["control"]),
        "store_processed": False,
    }  # fmt: skip
    forget_connections()
    yield tmp_path
    celery_app.conf.broker_url, celery_app.conf.broker_transport_options = previous
    forget_connections()


def start_worker(var_dir: Path, smtp_port: int) -> subprocess.Popen:
    db = connection.settings_dict
    env = {**os.environ, "DEBUG": "true", "VAR_DIR": str(var_dir), "EMAIL_HOST": "127.0.0.1",
           "EMAIL_PORT": str(smtp_port), "CELERY_TASK_ALWAYS_EAGER": "false",
           "DATABASE_URL": database_url(db)}  # fmt: skip
    env.pop("CELERY_BROKER_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "WARNING"],
        cwd=BASE_DIR, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_worker_killed_mid_send_neither_loses_nor_doubles_a_message(smtp, shared_broker):
    from automations.tasks import sweep

    group = CustomerGroup.objects.create(name="Everyone", slug="everyone", kind=CustomerGroup.Kind.MANUAL)
    people = [Customer.objects.create(email=f"p{i}@example.com", email_consent=True) for i in range(MEMBERS)]
    services.add_members(group, [p.pk for p in people])
    send = Send.objects.create(name="News", group=group, settings={"subject": "News", "body": "Hello"})
    sends.schedule(send, None)  # on commit: queued for a worker

    smtp.hold_message(11)  # the 11th message waits, unanswered, while the worker is killed
    first = start_worker(shared_broker, smtp.port)
    try:
        assert smtp.holding.wait(120), "the worker never reached the 11th message"
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    time.sleep(0.5)  # the server sees the connection drop
    smtp.release()
    assert len(smtp.messages) == 10
    assert SendRecipient.objects.filter(send=send, status="sent").count() == 10

    second = start_worker(shared_broker, smtp.port)
    try:
        sweep.delay()  # what beat sends every minute: it finds the running send and resumes it
        wait_for(lambda: Send.objects.get(pk=send.pk).status == Send.Status.FINISHED)
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(30)
    received = sorted(m["To"] for m in smtp.messages)
    assert received == sorted(p.email for p in people)  # every member, once
    assert len({m["Message-ID"] for m in smtp.messages}) == MEMBERS
    assert Send.objects.get(pk=send.pk).report["sent"] == MEMBERS
