"""`make run`'s preparation: the first administrator, and the three programs it runs together."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from config import run


@pytest.mark.django_db
def test_the_first_run_creates_an_administrator_and_shows_its_password_once():
    notes = "\n".join(run.ensure_admin_user())
    admin = get_user_model().objects.get(username="admin")
    password = notes.split("password: ")[1].split()[0]
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password(password)

    again = "\n".join(run.ensure_admin_user())

    assert "password:" not in again
    assert get_user_model().objects.count() == 1


@pytest.mark.django_db
def test_an_existing_superuser_means_no_new_administrator(django_user_model):
    django_user_model.objects.create_superuser("owner", "owner@example.com", "a-long-test-password")
    assert "password:" not in "\n".join(run.ensure_admin_user())
    assert not django_user_model.objects.filter(username="admin").exists()


def test_web_worker_and_beat_run_as_described():
    commands = run.processes(8123)
    assert set(commands) == {"web", "worker", "beat", "receiver"}
    assert "webhook_receiver --port 8124" in commands["receiver"]
    assert "runserver 127.0.0.1:8123" in commands["web"]
    assert "worker --concurrency 2" in commands["worker"]
    assert "django_celery_beat.schedulers:DatabaseScheduler" in commands["beat"]


def test_the_box_fits_its_longest_line():
    lines = run.boxed(["short", "a somewhat longer line"]).splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[0].startswith("+-") and lines[1] == "| short                  |"
