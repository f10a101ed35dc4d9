"""Customer groups, their membership, the history of every add and remove, runs and size snapshots."""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models.functions import MD5, Cast

from customers.models import Customer

from .rules import Catalogue, compile_rules, describe_rules, explain_rules, render_sql, rule_dependencies


class Tag(models.Model):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class GroupQuerySet(models.QuerySet):
    def dynamic(self) -> GroupQuerySet:
        return self.filter(kind=CustomerGroup.Kind.DYNAMIC)

    def active_dynamic(self) -> GroupQuerySet:
        """The groups whose members follow their rules now: dynamic and active."""
        return self.dynamic().filter(is_active=True)


class CustomerGroup(models.Model):
    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", "Dynamic (by rules)"
        MANUAL = "manual", "Manual (standard)"

    class RefreshMode(models.TextChoices):
        EVENTS = "events", "Events only"
        EVENTS_AND_SCHEDULE = "events_and_schedule", "Events + schedule"
        ALWAYS_CURRENT = "always_current", "Always current (events + time)"

    class RunStatus(models.TextChoices):
        NEVER = "", "Never run"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        FAILING = "failing", "Failing (paused after repeated errors)"

    name = models.CharField(max_length=255)
    slug = models.SlugField(max_length=255, unique=True)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.DYNAMIC)
    rules = models.JSONField(default=dict, blank=True, help_text="The rules document (see the rule language).")
    rule_version = models.PositiveIntegerField(default=1, help_text="Bumped on every rule change.")
    # Kept by PostgreSQL, so even a hand edit of the rules changes it: the event path compares
    # these digests to know its compiled rules are current (groups/engine.py).
    rules_digest = models.GeneratedField(
        expression=MD5(Cast("rules", models.TextField())), output_field=models.CharField(max_length=32), db_persist=True
    )
    refresh_mode = models.CharField(max_length=32, choices=RefreshMode.choices, default=RefreshMode.EVENTS)
    schedule = models.JSONField(default=dict, blank=True, help_text="Frequency and time of day.")
    time_zone = models.CharField(max_length=64, blank=True, default="", help_text="IANA name; empty = site's.")
    is_active = models.BooleanField(default=True)
    activate_at = models.DateTimeField(null=True, blank=True)
    deactivate_at = models.DateTimeField(null=True, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="groups")
    sync_enabled = models.BooleanField(default=False)

    member_count = models.PositiveIntegerField(default=0)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_scheduled_run_at = models.DateTimeField(null=True, blank=True)
    last_run_status = models.CharField(max_length=16, choices=RunStatus.choices, blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    failure_count = models.PositiveIntegerField(default=0)
    # Always-current groups (groups/always_current.py): when the group's calendar windows next roll
    # over (or a daylight-saving change moves its day-based times), for its full refresh then; and
    # what the customers' stored next moments were derived from, by the full refresh that wrote them.
    next_boundary_at = models.DateTimeField(null=True, blank=True, editable=False)
    moments_of = models.CharField(max_length=100, blank=True, default="", editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GroupQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=["dynamic", "manual"]), name="group_kind_valid"),
            models.CheckConstraint(
                condition=models.Q(refresh_mode__in=["events", "events_and_schedule", "always_current"]),
                name="group_refresh_mode_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_dynamic(self) -> bool:
        return self.kind == self.Kind.DYNAMIC

    @property
    def is_always_current(self) -> bool:
        """Whether the group also changes by time alone, exactly when each customer's result does."""
        return self.kind == self.Kind.DYNAMIC and self.refresh_mode == self.RefreshMode.ALWAYS_CURRENT

    @property
    def time_zone_name(self) -> str:
        """The IANA name of the zone the group's rules and schedule read time in: its own, else the site's."""
        return self.time_zone or settings.TIME_ZONE

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The group's time zone.

        Times in it compare equal to the same instant in UTC, except a repeated local time (PEP 495
        makes those never equal across zones): compare `.astimezone(UTC)` values when that matters.
        """
        return zoneinfo.ZoneInfo(self.time_zone_name)

    def dependency_names(self) -> dict[int, str]:
        """{id: name} of the groups this group's rules read (in_group)."""
        return dict(CustomerGroup.objects.filter(pk__in=rule_dependencies(self.rules)).values_list("pk", "name"))

    def rule_sentence(self, catalogue: Catalogue) -> str:
        """The rules as staff read them, e.g. "Customers whose role is customer"."""
        return describe_rules(self.rules, catalogue=catalogue, group_names=self.dependency_names())

    def explain(self, customer_id: int, catalogue: Catalogue, now: datetime) -> dict:
        """Which parts of the rules hold for one customer, with the values that decided (LookupError
        when there is no such customer); the API's explain and the customer page's why and why not."""
        return explain_rules(
            self.rules, customer_id, now=now, tz=self.zone, catalogue=catalogue, group_names=self.dependency_names()
        )

    def rule_sql(self, catalogue: Catalogue, now: datetime) -> str:
        """The query that selects the members now, with its values written in."""
        condition, params = compile_rules(self.rules, now=now, tz=self.zone, catalogue=catalogue, alias="c")
        return render_sql(f"SELECT c.id FROM customers_customer c WHERE {condition}", params)


class RuleVersion(models.Model):
    """One version of a dynamic group's rules, kept for good: who made it and when (the Settings tab's rule history)."""

    group = models.ForeignKey(CustomerGroup, on_delete=models.CASCADE, related_name="rule_versions")
    version = models.PositiveIntegerField(help_text="The group's rule_version while these rules applied.")
    rules = models.JSONField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField()
    restored_from = models.PositiveIntegerField(
        null=True, blank=True, help_text="The earlier version these rules were restored from, if any."
    )

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["group", "version"], name="rule_version_unique")]

    def __str__(self) -> str:
        return f"Rules v{self.version} of group {self.group_id}"


class Membership(models.Model):
    """A customer currently in a group. The history (MembershipChange) says how it got there."""

    # No database-level foreign keys on the two tables the engine writes in bulk: PostgreSQL checks
    # them with a trigger per written row, which slows every refresh with churn (docs/engine.md). The
    # engine only writes ids it has just read, and deletes still cascade through Django. The
    # composite indexes below serve every lookup, so the single-column ones are left out too.
    group = models.ForeignKey(
        CustomerGroup, on_delete=models.CASCADE, related_name="memberships", db_constraint=False, db_index=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="group_memberships", db_constraint=False, db_index=False
    )
    added_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "customer"], name="membership_unique")]
        indexes = [models.Index(fields=["customer", "group"], name="membership_customer")]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.group_id}"


class CustomerDue(models.Model):
    """When a customer's result in some always-current group can next change by time alone.

    One row per customer: the earliest such moment over every always-current group, written by the
    statements that evaluate the customer; the minute sweep evaluates the customers whose time has
    come. It may be early (the customer is evaluated and nothing changes), never late.
    """

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, primary_key=True, related_name="due", db_constraint=False
    )
    due_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["due_at"], name="due_time")]

    def __str__(self) -> str:
        return f"{self.customer_id} due at {self.due_at:%Y-%m-%d %H:%M}"


class Reason(models.TextChoices):
    EVENT = "event", "Customer data or event"
    SCHEDULE = "schedule", "Scheduled refresh"
    MANUAL_REFRESH = "manual_refresh", "Refresh by hand"
    GROUP_CREATED = "group_created", "Group created"
    RULE_CHANGE = "rule_change", "Rule changed"
    ACTIVATION = "activation", "Group activated"
    DEACTIVATION = "deactivation", "Group deactivated"
    IMPORT = "import", "Import"
    DEPENDENCY = "dependency", "Another group changed"
    MANUAL = "manual", "Added or removed by hand"
    TIME = "time", "Time passed"


class RefreshRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    group = models.ForeignKey(CustomerGroup, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=32, choices=Reason.choices)
    initiated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    rule_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    # When its message was last handed to the broker: a broker that restarts empty loses it, and
    # the minute sweep sends it again (see health.resend_lost_runs).
    sent_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    added = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["group", "-created_at"], name="run_group_created")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "running", "succeeded", "failed", "skipped"]),
                name="run_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} of group {self.group_id}: {self.status}"


# pg_current_xact_id() is an xid8, which has no cast to bigint but prints as one.
CURRENT_TRANSACTION = Cast(
    Cast(models.Func(function="pg_current_xact_id", output_field=models.TextField()), models.TextField()),
    models.BigIntegerField(),
)


class MembershipChange(models.Model):
    """One add or remove. Replaying a group's changes in order gives its current membership."""

    class Change(models.TextChoices):
        ADDED = "added", "Added"
        REMOVED = "removed", "Removed"

    # Written in bulk by the engine: no database-level foreign keys, and the composite indexes below
    # serve every lookup (see Membership).
    group = models.ForeignKey(
        CustomerGroup, on_delete=models.CASCADE, related_name="changes", db_constraint=False, db_index=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="group_changes", db_constraint=False, db_index=False
    )
    change = models.CharField(max_length=8, choices=Change.choices)
    changed_at = models.DateTimeField()
    reason = models.CharField(max_length=32, choices=Reason.choices)
    rule_version = models.PositiveIntegerField(null=True, blank=True)
    run = models.ForeignKey(
        RefreshRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="changes",
        db_constraint=False,
        db_index=False,  # see change_run: most changes come from customer writes, with no run
    )
    # Who added or removed the customer by hand; a change made by rules has none (its run says who
    # started the run, if anyone did).
    initiated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,  # see change_initiated_by
    )
    # The writing transaction, set by PostgreSQL on every insert whoever writes the row: the feed's
    # order (groups/feed.py). Ids are assigned at insert, but transactions commit in another order.
    # Rows written before the feed existed have none and are not in it.
    xact_id = models.BigIntegerField(null=True, editable=False, db_default=CURRENT_TRANSACTION)

    class Meta:
        ordering = ["-changed_at", "-id"]
        # Every change writes one entry in each index, so there are only as many as the reads need:
        # a group's history and its members at a moment (group, time); a customer's history, also
        # within one group (customer, time); the feed (group, transaction); a run's changes.
        indexes = [
            models.Index(fields=["group", "changed_at", "id"], name="change_group_time"),
            models.Index(fields=["customer", "changed_at"], name="change_customer_time"),
            models.Index(fields=["run"], name="change_run", condition=models.Q(run__isnull=False)),
            models.Index(
                fields=["initiated_by"], name="change_initiated_by", condition=models.Q(initiated_by__isnull=False)
            ),
            # The feed's reads (groups/feed.py): a group's changes after a position, in feed order, so a
            # read touches only the rows it returns however long the group's history.
            models.Index(fields=["group", "xact_id", "id"], name="change_group_xact"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(change__in=["added", "removed"]), name="change_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.change} {self.group_id} at {self.changed_at:%Y-%m-%d %H:%M}"

    @property
    def made_by(self):
        """The person behind the change: who added or removed it by hand, or who started its run
        (a refresh, a rule change, an activation); None when no one did (events, schedules)."""
        if self.initiated_by_id:
            return self.initiated_by
        return self.run.initiated_by if self.run_id and self.run else None

    @property
    def made_by_id(self) -> int | None:
        """The id of `made_by`, read without loading the user."""
        return self.initiated_by_id or (self.run.initiated_by_id if self.run_id and self.run else None)


class SizeSnapshot(models.Model):
    """The member count after a run, and one per day, for the trend chart."""

    class Kind(models.TextChoices):
        RUN = "run", "After a run"
        DAILY = "daily", "Daily"

    group = models.ForeignKey(CustomerGroup, on_delete=models.CASCADE, related_name="size_snapshots")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    taken_at = models.DateTimeField()
    day = models.DateField(null=True, blank=True)
    member_count = models.PositiveIntegerField()
    run = models.ForeignKey(RefreshRun, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        ordering = ["taken_at"]
        indexes = [models.Index(fields=["group", "taken_at"], name="snapshot_group_time")]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "day"], condition=models.Q(kind="daily"), name="snapshot_one_daily_per_group"
            ),
            models.CheckConstraint(
                condition=models.Q(kind="run") | models.Q(day__isnull=False), name="snapshot_daily_has_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_count} members in group {self.group_id} at {self.taken_at:%Y-%m-%d %H:%M}"


class ListColumns(models.Model):
    """The columns one member of staff chose for a back-office list, in their order (the group list's "Columns")."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    list_name = models.CharField(max_length=64)
    columns = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "list_name"], name="list_columns_unique")]

    def __str__(self) -> str:
        return f"{self.list_name} columns of user {self.user_id}"
