"""Operations on groups: the one entry point each for refresh, manual edits, activation and history.

The admin, the API, Celery tasks and beat all call these functions; membership itself is always
decided by `groups.engine.evaluate`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import slugify

from . import always_current, engine, feed, health, history, schedules
from .dependencies import dependants_of, dependency_order
from .models import CustomerGroup, Membership, MembershipChange, Reason, RefreshRun, RuleVersion, SizeSnapshot
from .rules import Catalogue, ensure_valid_rules
from .rules.moments import depends_on_time


def refresh(
    group: CustomerGroup,
    *,
    reason: str = Reason.MANUAL_REFRESH,
    initiated_by=None,
    run: RefreshRun | None = None,
    now: datetime | None = None,
) -> RefreshRun:
    """Fully refresh one group and the groups that depend on it; the run records the outcome."""
    if run is None:
        run = RefreshRun.objects.create(
            group=group, reason=reason, initiated_by=initiated_by, rule_version=group.rule_version
        )
    group.refresh_from_db()
    if not group.is_dynamic or (not group.is_active and reason != Reason.DEACTIVATION):
        why = "the group is inactive" if group.is_dynamic else "manual groups change only by hand"
        _finish(run, RefreshRun.Status.SKIPPED, error=f"Skipped: {why}.")
        return run
    RefreshRun.objects.filter(pk=run.pk).update(
        status=RefreshRun.Status.RUNNING, started_at=timezone.now(), rule_version=group.rule_version
    )
    started = time.monotonic()
    now = now or timezone.now()
    try:
        outcome = engine.evaluate([group], None, now, reason=reason, run_id=run.pk)
        _propagate(group, outcome, now)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        _finish(run, RefreshRun.Status.FAILED, error=error, started=started)
        health.record_failure(group, error)
        raise
    run.added, run.removed = outcome.added[group.pk], outcome.removed[group.pk]
    _finish(run, RefreshRun.Status.SUCCEEDED, started=started)
    CustomerGroup.objects.filter(pk=group.pk).update(last_refreshed_at=run.finished_at)
    if group.is_always_current and group.is_active:
        always_current.record_refresh(group, now)
    health.record_success(group)
    record_size(group, run=run)
    return run


def queue_refresh(group: CustomerGroup, *, reason: str = Reason.MANUAL_REFRESH, initiated_by=None) -> RefreshRun:
    """A queued run that a Celery worker picks up, so the caller answers at once however big the group."""
    from .tasks import refresh_group  # tasks import this module

    run = RefreshRun.objects.create(
        group=group, reason=reason, initiated_by=initiated_by, rule_version=group.rule_version, sent_at=timezone.now()
    )
    # After commit, so the worker finds the run row.
    transaction.on_commit(lambda: refresh_group.delay(group.pk, reason, run.pk))
    return run


def change_rules(
    group: CustomerGroup, rules: dict, *, initiated_by=None, restored_from: int | None = None
) -> RefreshRun:
    """Save new rules (refused with every problem listed when invalid), keep them as a new version, and refresh."""
    ensure_valid_rules(rules, catalogue=Catalogue.load(), group_id=group.pk)
    with transaction.atomic():
        # The rules being replaced are kept too, if they are not yet (a group made outside the services).
        current = (
            CustomerGroup.objects.select_for_update().values("rules", "rule_version", "updated_at").get(pk=group.pk)
        )
        RuleVersion.objects.get_or_create(
            group=group,
            version=current["rule_version"],
            defaults={"rules": current["rules"], "created_at": current["updated_at"]},
        )
        CustomerGroup.objects.filter(pk=group.pk).update(rules=rules, rule_version=F("rule_version") + 1)
        group.refresh_from_db()
        record_rule_version(group, initiated_by, restored_from=restored_from)
    return refresh(group, reason=Reason.RULE_CHANGE, initiated_by=initiated_by)


def restore_rule_version(group: CustomerGroup, version: int, *, initiated_by=None) -> RefreshRun:
    """Make an earlier version's rules the group's rules again: a rule change like any other.

    Raises RuleVersion.DoesNotExist for a version the group never had, ValueError when its rules are
    the current ones, and RulesInvalid when they no longer validate (an attribute changed type).
    """
    kept = RuleVersion.objects.get(group=group, version=version)
    group.refresh_from_db()
    if kept.rules == group.rules:
        raise ValueError(f"version {version} has the group's current rules")
    return change_rules(group, kept.rules, initiated_by=initiated_by, restored_from=version)


def record_rule_version(group: CustomerGroup, initiated_by=None, *, restored_from: int | None = None) -> None:
    """Keep the group's rules as they are now as its current version (a group just made, or just changed)."""
    RuleVersion.objects.create(
        group=group,
        version=group.rule_version,
        rules=group.rules,
        created_by_id=_user_id(initiated_by),
        created_at=timezone.now(),
        restored_from=restored_from,
    )


def apply_settings(group: CustomerGroup, *, rules: dict, is_active: bool, initiated_by=None) -> None:
    """Apply edited rules and activation (from the admin or the API) so the group refreshes once.

    Deactivate before a rule change (the new rules apply on reactivation); activate after it, so the
    group fills once, by the new rules.
    """
    if not is_active and group.is_active:
        set_active(group, False, initiated_by=initiated_by)
    if group.is_dynamic and rules != group.rules:
        change_rules(group, rules, initiated_by=initiated_by)
    if is_active and not group.is_active:
        set_active(group, True, initiated_by=initiated_by)
    group.refresh_from_db()
    schedules.sync_schedule(group)


def settings_errors(*, kind: str, refresh_mode: str, schedule, time_zone: str) -> list[dict]:
    """Every problem of a group's refresh settings, each {"path", "message"}; [] = they can be saved.

    The admin form and the API both show these. Paths: "/refresh_mode", "/time_zone", and the
    schedule document's own ("" for the whole document, "/frequency", "/time", ...).
    """
    if kind == CustomerGroup.Kind.MANUAL and refresh_mode != CustomerGroup.RefreshMode.EVENTS:
        message = "A manual group is never refreshed; its refresh mode must be 'Events only' (events)."
        return [{"path": "/refresh_mode", "message": message}]
    return schedules.group_schedule_errors(refresh_mode, schedule, time_zone)


def activation_errors(
    *,
    is_active: bool,
    activate_at: datetime | None,
    deactivate_at: datetime | None,
    saved: CustomerGroup | None = None,
    now: datetime | None = None,
) -> list[dict]:
    """Every problem of a group's timed activation, each {"path", "message"}; [] = it can be saved.

    The admin form and the API both show these. `saved` is the group as stored: a time it already
    holds may have just passed (the minute sweep applies it), only a newly set time must lie ahead.
    """
    now = now or timezone.now()
    new_activation = activate_at is not None and activate_at != getattr(saved, "activate_at", None)
    new_deactivation = deactivate_at is not None and deactivate_at != getattr(saved, "deactivate_at", None)
    problems = []
    for name, new, at, verb in (("activate_at", new_activation, activate_at, "activate"),
                                ("deactivate_at", new_deactivation, deactivate_at, "deactivate")):  # fmt: skip
        if new and at <= now:
            problems.append({"path": f"/{name}", "message": f"this time has passed; {verb} the group now instead"})
    if problems:
        return problems
    if activate_at and deactivate_at and activate_at == deactivate_at:
        return [{"path": "/deactivate_at", "message": "the group cannot be activated and deactivated at one moment"}]
    # A time that would change nothing: activating an active group with no deactivation before it.
    if new_activation and is_active and not (deactivate_at and deactivate_at < activate_at):
        message = "the group is already active; set a deactivation before this time, or leave it empty"
        problems.append({"path": "/activate_at", "message": message})
    if new_deactivation and not is_active and not (activate_at and activate_at < deactivate_at):
        message = "the group is already inactive; set an activation before this time, or leave it empty"
        problems.append({"path": "/deactivate_at", "message": message})
    return problems


def default_refresh_mode(kind: str, rules) -> str:
    """A new group's refresh mode when none is chosen: always current when its rules change with
    time alone (a rolling or calendar window, a date compared with today, a birthday), else events only."""
    if kind == CustomerGroup.Kind.DYNAMIC and depends_on_time(rules or {}):
        return CustomerGroup.RefreshMode.ALWAYS_CURRENT
    return CustomerGroup.RefreshMode.EVENTS


def fill_new_group(group: CustomerGroup, *, initiated_by=None) -> RefreshRun | None:
    """A group just created: its schedule task, and its members at once when it is dynamic and active."""
    schedules.sync_schedule(group)
    if group.is_dynamic:
        record_rule_version(group, initiated_by)
    if group.is_dynamic and group.is_active:
        return refresh(group, reason=Reason.GROUP_CREATED, initiated_by=initiated_by)
    return None


def duplicate_group(group: CustomerGroup, *, initiated_by=None) -> CustomerGroup:
    """A copy with the same rules, settings and tags (a manual group's members too), named "Copy of ..."."""
    name = free_name(f"Copy of {group.name}")
    with transaction.atomic():
        copy = CustomerGroup.objects.create(
            name=name,
            slug=free_slug(name),
            description=group.description,
            kind=group.kind,
            rules=group.rules,
            refresh_mode=group.refresh_mode,
            schedule=group.schedule,
            time_zone=group.time_zone,
            is_active=group.is_active,
        )
        copy.tags.set(group.tags.all())
        if copy.is_dynamic:
            record_rule_version(copy, initiated_by)
    if copy.is_dynamic and copy.is_active:
        refresh(copy, reason=Reason.GROUP_CREATED, initiated_by=initiated_by)
    elif not copy.is_dynamic:
        add_members(
            copy,
            Membership.objects.filter(group=group).values_list("customer_id", flat=True),
            initiated_by=initiated_by,
        )
    return copy


def name_taken(name: str, *, exclude: int | None = None) -> bool:
    """Whether another group already has this name (ignoring case): staff tell groups apart by name."""
    return CustomerGroup.objects.filter(name__iexact=name.strip()).exclude(pk=exclude).exists()


def free_name(name: str) -> str:
    """`name`, or "name (2)", "name (3)"... if that is taken."""
    base, candidate, n = name[:245], name[:255], 2
    while name_taken(candidate):
        candidate, n = f"{base} ({n})", n + 1
    return candidate


def free_slug(name: str, *, exclude: int | None = None) -> str:
    """A slug made from `name` that no other group uses: "vips", else "vips-2", "vips-3"..."""
    base = slugify(name)[:240] or "group"
    taken = set(CustomerGroup.objects.filter(slug__startswith=base).exclude(pk=exclude).values_list("slug", flat=True))
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def slug_follows_name(slug: str, name: str) -> bool:
    """Whether `slug` was made from `name` by `free_slug` (so a rename may make a new one)."""
    base = slugify(name)[:240] or "group"
    return slug == base or (slug.startswith(base + "-") and slug[len(base) + 1 :].isdigit())


def refresh_all(*, reason: str = Reason.MANUAL_REFRESH, initiated_by=None, groups=None) -> list[RefreshRun]:
    """Refresh every active dynamic group (or the ones given), dependencies first."""
    if groups is None:
        groups = CustomerGroup.objects.active_dynamic()
    return [refresh(g, reason=reason, initiated_by=initiated_by) for g in dependency_order(list(groups))]


def evaluate_customers(
    customer_ids: Sequence[int],
    *,
    reason: str = Reason.EVENT,
    now=None,
    events: Mapping[int, frozenset[str] | None] | None = None,
) -> engine.Outcome:
    """The event path: re-evaluate these customers in every active dynamic group they may have left
    or entered (for a customer whose `events` names its new events, only the groups counting those)."""
    outcome = engine.evaluate_active(customer_ids, now, reason=reason, events=events)
    for group_id, error in outcome.failed.items():
        # Shown on the group; its next refresh records a failed run and the usual retries.
        CustomerGroup.objects.filter(pk=group_id).update(
            last_run_status=CustomerGroup.RunStatus.FAILED, last_error=error
        )
    return outcome


def add_members(group: CustomerGroup, customer_ids: Iterable[int], *, initiated_by=None) -> int:
    """Add customers to a manual group by hand; returns how many were not members before."""
    return _edit_manual(group, customer_ids, add=True, initiated_by=initiated_by)


def remove_members(group: CustomerGroup, customer_ids: Iterable[int], *, initiated_by=None) -> int:
    """Remove customers from a manual group by hand; returns how many were members."""
    return _edit_manual(group, customer_ids, add=False, initiated_by=initiated_by)


def set_active(group: CustomerGroup, active: bool, *, initiated_by=None) -> RefreshRun | None:
    """Activate (refresh at once) or deactivate (the group lets go of every member) a group."""
    CustomerGroup.objects.filter(pk=group.pk).update(
        is_active=active,
        activate_at=None if active else F("activate_at"),
        deactivate_at=None if not active else F("deactivate_at"),
    )
    group.refresh_from_db()
    schedules.sync_schedule(group)  # update() sends no signal; an inactive group's schedule pauses
    if not group.is_dynamic:
        return None
    reason = Reason.ACTIVATION if active else Reason.DEACTIVATION
    run = refresh(group, reason=reason, initiated_by=initiated_by)
    group.refresh_from_db()  # the caller reads the member count the refresh just wrote
    return run


def apply_due_activations(now: datetime | None = None) -> int:
    """Activate or deactivate every group whose activate_at / deactivate_at has come; returns how many changed.

    The body of a periodic sweep (every minute). When both times have passed they are applied in
    time order, so the later one wins. Each time is claimed by clearing it in one conditional
    UPDATE before acting, so two sweeps at once do not both act.
    """
    now = now or timezone.now()
    due = CustomerGroup.objects.filter(Q(activate_at__lte=now) | Q(deactivate_at__lte=now)).order_by("pk")
    changed = 0
    for group in due:
        moves = [(at, active) for at, active in ((group.activate_at, True), (group.deactivate_at, False)) if at]
        for at, active in sorted(m for m in moves if m[0] <= now):
            field = "activate_at" if active else "deactivate_at"
            if not CustomerGroup.objects.filter(pk=group.pk, **{field: at}).update(**{field: None}):
                continue  # another sweep took it, or staff changed it meanwhile
            group.refresh_from_db()
            if group.is_active == active:
                continue
            set_active(group, active)
            group.refresh_from_db()
            schedules.sync_schedule(group)
            changed += 1
    return changed


def members_at(group: CustomerGroup, at: datetime) -> list[int]:
    """Ids of the group's members at a past moment, rebuilt from the history."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT customer_id FROM (
                SELECT DISTINCT ON (customer_id) customer_id, change
                FROM groups_membershipchange
                WHERE group_id = %s AND changed_at <= %s
                ORDER BY customer_id, changed_at DESC, id DESC
            ) latest
            WHERE change = 'added'
            ORDER BY customer_id
            """,
            [group.pk, at],
        )
        return [row[0] for row in cursor.fetchall()]


def record_daily_sizes(now: datetime | None = None) -> int:
    """Today's size snapshot for every group, so the trend also covers days without a run."""
    groups = list(CustomerGroup.objects.all())
    for group in groups:
        record_size(group, now=now)
    return len(groups)


def record_size(group: CustomerGroup, *, run: RefreshRun | None = None, now: datetime | None = None) -> None:
    """A snapshot after a run, and today's daily snapshot (kept up to date by every run)."""
    now = now or timezone.now()
    count = CustomerGroup.objects.values_list("member_count", flat=True).get(pk=group.pk)
    if run is not None:
        SizeSnapshot.objects.create(group=group, kind=SizeSnapshot.Kind.RUN, taken_at=now, member_count=count, run=run)
    SizeSnapshot.objects.update_or_create(
        group=group,
        kind=SizeSnapshot.Kind.DAILY,
        day=timezone.localdate(now, group.zone),
        defaults={"taken_at": now, "member_count": count},
    )


def _propagate(group: CustomerGroup, outcome: engine.Outcome, now=None) -> None:
    """Re-evaluate dependants for the customers whose membership of `group` just changed.

    Only those customers can change in a dependant, so one event-path evaluation of all
    dependants (which the engine orders by dependency level) covers the whole chain.
    """
    changed = outcome.changed_customers.get(group.pk)
    if changed:
        dependants = dependants_of(group)
        if dependants:
            engine.evaluate(dependants, sorted(changed), now, reason=Reason.DEPENDENCY)


def _edit_manual(group: CustomerGroup, customer_ids: Iterable[int], *, add: bool, initiated_by) -> int:
    ids = sorted({int(i) for i in customer_ids})
    if not ids:
        return 0
    if group.kind != CustomerGroup.Kind.MANUAL:
        raise ValueError(f"'{group}' is a dynamic group: its members follow its rules and cannot be edited by hand.")
    if add:
        write = """
            INSERT INTO groups_membership (group_id, customer_id, added_at)
            SELECT %s, c.id, statement_timestamp() FROM customers_customer c WHERE c.id = ANY(%s)
            ON CONFLICT (group_id, customer_id) DO NOTHING
            RETURNING group_id, customer_id"""
    else:
        write = """
            DELETE FROM groups_membership WHERE group_id = %s AND customer_id = ANY(%s)
            RETURNING group_id, customer_id"""
    change = MembershipChange.Change.ADDED if add else MembershipChange.Change.REMOVED
    recorded = history.insert_changes(
        "SELECT group_id, customer_id, %s AS change, NULL::integer AS rule_version FROM written"
    )
    with transaction.atomic():
        engine.lock_groups([group.pk], shared=False)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH written AS ({write}),
                recorded AS ({recorded}),
                counted AS (
                    UPDATE groups_customergroup SET member_count = member_count + %s * (SELECT count(*) FROM written)
                    WHERE id = %s
                )
                SELECT array_agg(customer_id) FROM written
                """,
                [group.pk, ids, change, Reason.MANUAL, None, _user_id(initiated_by), 1 if add else -1, group.pk],
            )
            changed = cursor.fetchone()[0] or []
        if changed:
            feed.announce([group.pk])
    if changed:
        outcome = engine.Outcome(changed_customers={group.pk: set(changed)})
        _propagate(group, outcome)
    return len(changed)


def _finish(run: RefreshRun, status: str, *, error: str = "", started: float | None = None) -> None:
    run.status = status
    run.error = error
    run.finished_at = timezone.now()
    run.duration_ms = int((time.monotonic() - started) * 1000) if started is not None else 0
    run.save(update_fields=["status", "error", "finished_at", "duration_ms", "added", "removed"])


def _user_id(user) -> int | None:
    """The id to record for the person who made a change; None when no signed-in user made it."""
    return user.pk if user is not None and user.is_authenticated else None
