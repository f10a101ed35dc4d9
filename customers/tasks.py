"""Celery tasks for customers: thin wrappers that take ids and call a service."""

from __future__ import annotations

from celery import shared_task

from . import import_jobs


@shared_task(name="customers.import_customers")
def import_customers(job_id: int) -> None:
    import_jobs.run(job_id)
