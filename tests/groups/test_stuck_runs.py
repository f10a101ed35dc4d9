"""A run whose worker died is found by its group's lock (nobody holds it), failed and queued again within
a minute or two; a queued run whose message the broker lost is sent again; a refresh delivered twice,
while another worker runs it, or for a deleted group ends quietly."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from customers.models import Customer
from groups import health, tasks
from groups.engine import LOCK_NAMESPACE
from groups.models import CustomerGroup, Membership, RefreshRun


def other_connection() -> psycopg.Connection:
    """A session of its own, as another worker or a member of staff would have."""
    db = connection.settings_dict
    return psycopg.connect(host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"],
                           password=db["PASSWORD"] or None, dbname=db["NAME"])  # fmt: skip


@pytest.fixture
def group(db):
    Customer.objects.create(email="ann@example.com", role="customer")
    return CustomerGroup.objects.create(name="Customers", slug="customers",
                                        rules={"field": "role", "op": "eq", "value": "customer"})  # fmt: skip


def running_run(group, seconds_ago: int) -> RefreshRun:
    return RefreshRun.objects.create(group=group, status=RefreshRun.Status.RUNNING,
                                     started_at=timezone.now() - timedelta(seconds=seconds_ago))  # fmt: skip


@pytest.mark.django_db
def test_a_running_run_whose_lock_nobody_holds_is_failed_and_queued_again(group, django_capture_on_commit_callbacks):
    dead = running_run(group, seconds_ago=90)
    with django_capture_on_commit_callbacks() as queued:
        assert health.reset_stuck_runs() == 1
    dead.refresh_from_db()
    assert dead.status == RefreshRun.Status.FAILED and "worker" in dead.error
    again = RefreshRun.objects.exclude(pk=dead.pk).get(group=group)
    assert again.status == RefreshRun.Status.QUEUED and again.reason == dead.reason
    assert len(queued) == 1


@pytest.mark.django_db
def test_a_running_run_whose_lock_is_held_is_left_alone(group):
    live = running_run(group, seconds_ago=600)
    with other_connection() as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, group.pk])
        assert health.reset_stuck_runs() == 0
    live.refresh_from_db()
    assert live.status == RefreshRun.Status.RUNNING


@pytest.mark.django_db
def test_a_run_that_just_started_is_given_time_to_take_its_lock(group):
    fresh = running_run(group, seconds_ago=5)
    assert health.reset_stuck_runs() == 0
    fresh.refresh_from_db()
    assert fresh.status == RefreshRun.Status.RUNNING


@pytest.mark.django_db
def test_a_refresh_delivered_again_after_it_finished_does_nothing(group):
    run = RefreshRun.objects.create(group=group)
    tasks.refresh_group(group.pk, run.reason, run.pk)
    run.refresh_from_db()
    assert run.status == RefreshRun.Status.SUCCEEDED and Membership.objects.count() == 1
    finished_at = run.finished_at
    tasks.refresh_group(group.pk, run.reason, run.pk)  # acks_late: the same message once more
    run.refresh_from_db()
    assert run.finished_at == finished_at and Membership.objects.count() == 1


@pytest.mark.django_db
def test_a_queued_run_whose_message_was_lost_is_sent_again_once(group, django_capture_on_commit_callbacks):
    lost = RefreshRun.objects.create(group=group, sent_at=timezone.now() - timedelta(minutes=6))
    recent = RefreshRun.objects.create(group=group, sent_at=timezone.now() - timedelta(minutes=1))
    with django_capture_on_commit_callbacks() as sent:
        assert health.resend_lost_runs() == 1
        assert health.resend_lost_runs() == 0  # sent just now: not again until it waits once more
    assert len(sent) == 1
    lost.refresh_from_db()
    assert lost.status == RefreshRun.Status.QUEUED and lost.sent_at > timezone.now() - timedelta(seconds=5)
    assert RefreshRun.objects.get(pk=recent.pk).sent_at < timezone.now() - timedelta(seconds=50)


@pytest.mark.django_db(transaction=True)
def test_a_message_for_a_run_another_worker_is_running_does_nothing(group):
    run = running_run(group, seconds_ago=1)
    with other_connection() as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, group.pk])  # its worker
        with connection.cursor() as cursor:  # a second refresh would wait for the lock: fail instead of hang
            cursor.execute("SET lock_timeout = '3s'")
        tasks.refresh_group(group.pk, run.reason, run.pk)  # the same message, sent again
        run.refresh_from_db()
        assert run.status == RefreshRun.Status.RUNNING and Membership.objects.count() == 0
    tasks.refresh_group(group.pk, run.reason, run.pk)  # its worker died: the message runs it
    run.refresh_from_db()
    assert run.status == RefreshRun.Status.SUCCEEDED and Membership.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_group_deleted_while_its_refresh_waits_ends_the_task_quietly(group):
    run = RefreshRun.objects.create(group=group)
    outcome = {}
    with other_connection() as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, group.pk])  # a refresh before it

        def work():
            try:
                outcome["result"] = tasks.refresh_group(group.pk, run.reason, run.pk)
            except Exception as exc:  # noqa: BLE001 - the test reports what escaped
                outcome["error"] = exc
            finally:
                connection.close()

        worker = threading.Thread(target=work)
        worker.start()
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s"
        for _ in range(100):
            if holder.execute(waiting, [group.pk]).fetchone()[0]:
                break
            threading.Event().wait(0.05)
        with other_connection() as staff:
            staff.execute("DELETE FROM groups_refreshrun WHERE group_id = %s", [group.pk])
            staff.execute("DELETE FROM groups_customergroup WHERE id = %s", [group.pk])
            staff.commit()
        holder.rollback()
        worker.join(30)
    assert "error" not in outcome, outcome.get("error")
    assert not CustomerGroup.objects.filter(pk=group.pk).exists()
