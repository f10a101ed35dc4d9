"""The Celery app: configured from Django settings (CELERY_*), tasks discovered in every app."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("customer_groups")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Housekeeping that beat runs for every group; each group's own refresh schedule is a PeriodicTask
# that groups.schedules keeps in step with the group.
app.conf.beat_schedule = {
    "groups.apply_due_activations": {"task": "groups.apply_due_activations", "schedule": 60.0},
    "groups.reset_stuck_runs": {"task": "groups.reset_stuck_runs", "schedule": 60.0},
    # Always-current groups: the customers whose time has come, and calendar rollovers.
    "groups.sweep_always_current": {"task": "groups.sweep_always_current", "schedule": 60.0},
    "groups.record_daily_sizes": {"task": "groups.record_daily_sizes", "schedule": 3600.0},
    # Sync: drain every running sync even if no commit announced it, and reconcile each once a day.
    "integrations.sweep": {"task": "integrations.sweep", "schedule": 60.0},
    "integrations.reconcile_all": {"task": "integrations.reconcile_all", "schedule": 86400.0},
    "automations.sweep": {"task": "automations.sweep", "schedule": 60.0},
}
