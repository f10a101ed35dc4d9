"""Template tags for the back office: the signed-in user's open tasks."""

from __future__ import annotations

from django import template

from ..models import Task

register = template.Library()


@register.simple_tag(takes_context=True)
def open_task_count(context) -> int:
    user = context["request"].user
    return Task.objects.filter(assignee=user, status=Task.Status.OPEN).count() if user.is_authenticated else 0
