"""Previews: a trigger's or a send's templates rendered for one real member of its group."""

from __future__ import annotations

from django.db.models import Q, Value
from django.db.models.functions import Concat

from customers.models import Customer
from groups.models import CustomerGroup, Membership

from .actions import ActionError, action_class
from .actions.base import check_template, render
from .firings import message_context


def members(group: CustomerGroup):
    return Customer.objects.filter(pk__in=Membership.objects.filter(group_id=group.pk).values("customer_id"))


def find_member(group: CustomerGroup, query: str = "") -> Customer | None:
    """The member a person named (id, customer number, email or name), or the first member when none was."""
    query = query.strip()
    found = members(group).order_by("pk")
    if not query:
        return found.first()
    by_id = Q(pk=int(query)) if query.isdigit() and len(query) < 16 else Q(pk__in=[])
    exact = Q(external_id=query) | Q(email__iexact=query) | by_id
    return (
        found.filter(exact).first()
        or found.annotate(full_name=Concat("first_name", Value(" "), "last_name"))
        .filter(Q(full_name__icontains=query) | Q(email__icontains=query))
        .first()
    )


def render_for(kind: str, settings: dict, group: CustomerGroup, customer: Customer | None) -> dict:
    """Each template setting as this customer would get it: {"customer", "parts": [{name, label, text}], "error"}."""
    if customer is None:
        return {"customer": None, "parts": [], "error": "No member of the group matches."}
    action = action_class(kind)
    context = message_context(customer, group, channel=action.channel,
                              event_type="group.entered")  # fmt: skip
    for name in action.template_settings:
        problem = check_template(str(settings.get(name) or ""), what=name)
        if problem:  # said with its line, as the form says it
            return {"customer": customer, "parts": [], "error": problem}
    parts = []
    try:
        for name in action.template_settings:
            if settings.get(name):
                label = action.settings_fields[name].label if name in action.settings_fields else name
                parts.append({"name": name, "label": label, "text": render(str(settings[name]), context, what=name)})
    except ActionError as exc:
        return {"customer": customer, "parts": [], "error": exc.message}
    return {"customer": customer, "parts": parts, "error": ""}
