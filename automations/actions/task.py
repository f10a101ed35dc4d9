"""A task for a manager in the back office ("My open tasks").

The one action whose effect is a row of our own: it is written in the firing's transaction, so it
exists exactly when the firing is recorded as sent.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from .base import Action, ActionError, Delivery, register, render


@register
class TaskAction(Action):
    kind = "task"
    label = "Task for a manager"
    required = ("title", "assignee")
    template_settings = ("title", "notes")

    def settings_errors(self) -> dict[str, str]:
        errors = super().settings_errors()
        assignee = self.settings.get("assignee")
        if assignee and not get_user_model().objects.filter(username=assignee, is_active=True).exists():
            errors["assignee"] = f"No active user is named “{assignee}”."
        days = self.settings.get("due_in_days", 0)
        if not isinstance(days, int) or days < 0:
            errors["due_in_days"] = "A whole number of days, 0 or more."
        return errors

    def perform(self, delivery: Delivery) -> str:
        from ..models import Task

        assignee = get_user_model().objects.filter(username=self.settings["assignee"], is_active=True).first()
        if assignee is None:
            raise ActionError(f"No active user is named “{self.settings['assignee']}”.", permanent=True)
        days = self.settings.get("due_in_days")
        task = Task.objects.create(
            title=render(self.settings["title"], delivery.context, what="title")[:255],
            notes=render(self.settings.get("notes", ""), delivery.context, what="notes"),
            assignee=assignee,
            customer=delivery.customer,
            group=delivery.context.get("group"),
            firing_id=delivery.firing_id,
            due_date=timezone.localdate() + timedelta(days=days) if days is not None else None,
        )
        return f"Task “{task.title}” for {assignee.get_username()}"
