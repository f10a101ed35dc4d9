"""What the group page's tabs show: Members, History and the read-only parts of Settings.

Each function reads the request's query string (search, filters, columns, range) and returns the
template context of its tab; the group admin's change_view passes it on as extra_context.
"""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

from django.core.paginator import Paginator
from django.db.models import Q
from django.utils import timezone

from customers.attributes import declared_types
from customers.models import Customer

from . import always_current, charts, exports, health, progress, schedules, services
from .models import CustomerGroup, Membership, MembershipChange, RefreshRun, SizeSnapshot
from .rules import Catalogue

TABS = (("members", "Members"), ("history", "History"), ("settings", "Settings"))
MEMBERS_SHOWN = 100
HISTORY_PAGE = 100
RUNS_SHOWN = 25
RANGES = (("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year"))
COLUMN_LABELS = {"id": "ID", "external_id": "External ID", "added_at": "Member since"}


def _customer_search(text: str, prefix: str = "") -> Q:
    text = text.strip()
    query = Q()
    for field in ("email__icontains", "first_name__icontains", "last_name__icontains"):
        query |= Q(**{prefix + field: text})
    return query | Q(**{prefix + "external_id": text}) | Q(**{prefix + "member_id": text})


def members_context(group: CustomerGroup, params) -> dict:
    declared = list(declared_types())
    available = [*exports.GROUP_COLUMNS, *(f"attributes.{key}" for key in declared)]
    chosen = [c for c in params.getlist("columns") if c in available] or list(exports.DEFAULT_COLUMNS)
    search = params.get("q", "").strip()
    members = Membership.objects.filter(group=group).select_related("customer").order_by("customer_id")
    if search:
        members = members.filter(_customer_search(search, "customer__"))
    rows = []
    for membership in members[:MEMBERS_SHOWN]:
        customer = membership.customer
        cells = []
        for column in chosen:
            if column == "added_at":
                cells.append(_moment(membership.added_at))
            elif column.startswith("attributes."):
                cells.append(customer.attributes.get(column.removeprefix("attributes."), ""))
            else:
                value = getattr(customer, column)
                cells.append(_moment(value) if isinstance(value, dt.datetime) else value)
        rows.append({"customer": customer, "cells": cells})
    days = params.get("range", "30")
    days = days if days in dict(RANGES) else "30"
    return {
        "member_count": group.member_count,
        "members": rows,
        "matching": members.count() if search else None,
        "search": search,
        "columns": [
            (c, COLUMN_LABELS.get(c, c.removeprefix("attributes.").replace("_", " ").capitalize())) for c in chosen
        ],
        "available_columns": [(c, c in chosen) for c in available],
        "export_columns": ",".join(chosen),
        "range": days,
        "ranges": RANGES,
        "chart": charts.trend_chart(size_points(group, int(days))),
    }


def _moment(value: dt.datetime | None) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M %Z") if value else ""


def size_points(group: CustomerGroup, days: int, now: dt.datetime | None = None) -> list[tuple[dt.datetime, int]]:
    """(moment, member count) over the last `days`: every snapshot, ending with the count now."""
    now = now or timezone.now()
    snapshots = SizeSnapshot.objects.filter(group=group, taken_at__gte=now - timedelta(days=days))
    # Over long ranges the daily snapshots alone draw the line; every run would crowd it.
    if days > 30:
        snapshots = snapshots.filter(kind=SizeSnapshot.Kind.DAILY)
    zone = timezone.get_current_timezone()  # the site's, as every time on the page not of the schedule
    points = [
        (taken_at.astimezone(zone), count) for taken_at, count in snapshots.values_list("taken_at", "member_count")
    ]
    points.append((now.astimezone(zone), group.member_count))
    return points


def recent_sizes(group: CustomerGroup) -> list[int]:
    """The sparkline's numbers: the prefetched daily snapshots (see the admin's get_queryset)."""
    return [snapshot.member_count for snapshot in getattr(group, "recent_sizes", [])] + [group.member_count]


def history_context(group: CustomerGroup, params, page_number: str | None = None) -> dict:
    changes = MembershipChange.objects.filter(group=group).select_related(
        "customer", "initiated_by", "run__initiated_by"
    )
    change = params.get("change", "")
    if change in MembershipChange.Change.values:
        changes = changes.filter(change=change)
    zone = group.zone
    since, until = _day(params.get("since")), _day(params.get("until"))
    if since:
        changes = changes.filter(changed_at__gte=dt.datetime.combine(since, dt.time(), zone))
    if until:
        changes = changes.filter(changed_at__lt=dt.datetime.combine(until + timedelta(days=1), dt.time(), zone))
    search = params.get("q", "").strip()
    if search:
        changes = changes.filter(_customer_search(search, "customer__"))
    paginator = Paginator(changes, HISTORY_PAGE)
    page = paginator.get_page(page_number or params.get("page"))
    context = {
        "changes": page,
        "change": change,
        "change_choices": MembershipChange.Change.choices,
        "since": params.get("since", ""),
        "until": params.get("until", ""),
        "search": search,
        "zone": str(zone),
    }
    on = _day(params.get("on"))
    if on:
        # The end of that day in the group's zone: "members on 1 May" includes the changes of 1 May.
        moment = dt.datetime.combine(on + timedelta(days=1), dt.time(), zone) - timedelta(microseconds=1)
        ids = services.members_at(group, moment)
        customers = Customer.objects.in_bulk(ids[:MEMBERS_SHOWN])
        context["members_on"] = {
            "day": on,
            "count": len(ids),
            "customers": [customers[i] for i in ids[:MEMBERS_SHOWN] if i in customers],
        }
    context["on"] = params.get("on", "")
    return context


def _in_zone(moment: dt.datetime | None) -> str:
    return moment.strftime("%a %Y-%m-%d %H:%M %Z") if moment else ""


def _day(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def settings_context(group: CustomerGroup) -> dict:
    now = timezone.now()
    context: dict = {
        "schedule_sentence": schedules.describe(group),
        # In the group's own zone, as staff set the schedule; the template would show the site's.
        "next_runs": [_in_zone(moment) for moment in schedules.next_runs(group, 5)] if group.is_active else [],
        "last_scheduled_run": group.last_scheduled_run_at,
        "last_scheduled_time": _in_zone(schedules.last_scheduled_run(group, now)),
        "stale": health.is_stale(group, now),
        "runs": RefreshRun.objects.filter(group=group).select_related("initiated_by")[:RUNS_SHOWN],
        "progress": progress.refresh_progress(group, now) if group.is_dynamic else None,
    }
    if group.is_always_current and group.is_active:
        zone = group.zone
        change = always_current.next_change(group, now)
        context["next_change"] = {
            "at": _in_zone(change.at.astimezone(zone)) if change.at else "",
            "waiting": change.waiting,
            "boundary_at": _in_zone(change.boundary_at.astimezone(zone)) if change.boundary_at else "",
        }
    if group.is_dynamic and group.rules:
        catalogue = Catalogue.load()
        context["rule_sentence"] = group.rule_sentence(catalogue)
        context["rule_sql"] = group.rule_sql(catalogue, now)
    return context
