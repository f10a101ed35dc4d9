"""A task for a manager in the back office ("My open tasks").

The one action whose effect is a row of our own: it is written in the firing's transaction, so it
exists exactly when the firing is recorded as sent.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from .base import Action, ActionError, Delivery, register, render, template_field


def _active_users() -> list[tuple[str, str]]:
    users = get_user_model().objects.filter(is_active=True).order_by(get_user_model().USERNAME_FIELD)
    return [("", "---------")] + [(user.get_username(), _name(user)) for user in users]


def _name(user) -> str:
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return f"{full} ({user.get_username()})" if full else user.get_username()


@register
class TaskAction(Action):
    kind = "task"
    label = "Task for a manager"
    required = ("title", "assignee")
    template_settings = ("title", "notes")
    settings_fields = {
        "assignee": forms.ChoiceField(
            label="Assign to", choices=lambda: _active_users(), help_text="The member of staff who gets the task."
        ),  # fmt: skip
        "title": template_field("Title"),
        "due_in_days": forms.IntegerField(
            label="Due in (days)",
            min_value=0,
            required=False,
            help_text="Days after the trigger acts; empty for no due date.",
        ),  # fmt: skip
        "notes": template_field("Notes", lines=4, required=False),
    }

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
