"""Triggers on entering or leaving a group, their firings, manager tasks and one-off sends."""

from __future__ import annotations

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import models

from customers.models import Customer
from groups import feed
from groups.models import CustomerGroup


class Trigger(models.Model):
    """Act when a customer enters or leaves a group, under a policy; reads the feed from `position`."""

    class On(models.TextChoices):
        ENTER = "enter", "Enters the group"
        EXIT = "exit", "Leaves the group"

    class Action(models.TextChoices):
        EMAIL = "email", "Email the customer"
        SMS = "sms", "Text the customer (SMS)"
        TASK = "task", "Task for a manager"
        NOTIFY = "notify", "Notification email to a manager"
        WEBHOOK = "webhook", "Signed webhook"

    class Reentry(models.TextChoices):
        ONCE = "once", "Once per customer, ever"
        EACH = "each", "Again on each new entry"

    class Origin(models.TextChoices):
        ORGANIC = "organic", "Organic changes only"
        ALL = "all", "Organic and backfill"
        BACKFILL = "backfill", "Backfill only"

    name = models.CharField(max_length=255)
    group = models.ForeignKey(CustomerGroup, on_delete=models.CASCADE, related_name="triggers")
    on = models.CharField(max_length=8, choices=On.choices, default=On.ENTER)
    action = models.CharField(max_length=16, choices=Action.choices)
    settings = models.JSONField(default=dict, blank=True, help_text="The action's settings (see docs/automations.md).")
    is_active = models.BooleanField(default=True)

    reentry = models.CharField(max_length=8, choices=Reentry.choices, default=Reentry.EACH)
    cooldown = models.DurationField(null=True, blank=True, help_text="Not again for the same customer within this.")
    minimum_time = models.DurationField(
        null=True, blank=True, help_text="Act only if the customer is still in (or still out) after this long."
    )
    origin = models.CharField(
        max_length=8,
        choices=Origin.choices,
        default=Origin.ORGANIC,
        help_text="Backfill: changes from creating the group, a rule change, (de)activation or an import.",
    )
    suppressed_by = models.ManyToManyField(
        CustomerGroup, blank=True, related_name="+", help_text="Skip customers in any of these groups when acting."
    )
    quiet_start = models.TimeField(null=True, blank=True, help_text="Messages wait from this time (group's zone)...")
    quiet_end = models.TimeField(null=True, blank=True, help_text="...until this time.")

    # Where this trigger has read the feed to (groups.feed.Position as text); set when created.
    position = models.CharField(max_length=200, blank=True, default="", editable=False)
    last_fired_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, default="", editable=False)
    failure_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["group__name", "name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(on__in=["enter", "exit"]), name="trigger_on_valid"),
            models.CheckConstraint(condition=models.Q(reentry__in=["once", "each"]), name="trigger_reentry_valid"),
            models.CheckConstraint(
                condition=models.Q(origin__in=["organic", "all", "backfill"]), name="trigger_origin_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # A trigger acts on what happens from now on: a new one, or one switched back on, starts at the
        # feed's head rather than firing for everything that happened while it did not exist or was off.
        if self.is_active and (not self.position or not Trigger.objects.filter(pk=self.pk, is_active=True).exists()):
            self.position = str(feed.head())
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "position"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        from .actions import action_class

        errors = action_class(self.action).settings_errors_for(self.settings) if self.action else {}
        if errors:
            raise ValidationError({"settings": [f"{name}: {problem}" for name, problem in errors.items()]})
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValidationError({"quiet_end": "Quiet hours need both a start and an end."})

    @property
    def has_quiet_hours(self) -> bool:
        return self.quiet_start is not None and self.quiet_end is not None and self.quiet_start != self.quiet_end


class Firing(models.Model):
    """One change acted on by one trigger: (trigger, change) is its idempotency key."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    trigger = models.ForeignKey(Trigger, on_delete=models.CASCADE, related_name="firings")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="firings")
    change_id = models.BigIntegerField(help_text="The membership change (history row) that fired it.")
    reason = models.CharField(max_length=32, help_text="The change's reason.")
    changed_at = models.DateTimeField()
    due_at = models.DateTimeField(help_text="Not acted on before this.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    detail = models.TextField(blank=True, default="", help_text="Why it was skipped, the error, or what was sent.")
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["trigger", "change_id"], name="firing_once_per_change"),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "sent", "skipped", "failed"]), name="firing_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["due_at"], name="firing_pending_due", condition=models.Q(status="pending")),
            models.Index(fields=["trigger", "customer", "status"], name="firing_trigger_customer"),
            models.Index(fields=["customer", "-created_at"], name="firing_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.trigger} for customer {self.customer_id}: {self.status}"

    @property
    def idempotency_key(self) -> str:
        return f"firing-{self.trigger_id}-{self.change_id}"


class Task(models.Model):
    """Something a manager should do about a customer, usually made by a trigger."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"

    title = models.CharField(max_length=255)
    assignee = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="automation_tasks",
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="tasks")
    group = models.ForeignKey(CustomerGroup, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    firing = models.OneToOneField(Firing, on_delete=models.SET_NULL, null=True, blank=True, related_name="task")
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["status", "due_date", "id"]
        indexes = [models.Index(fields=["assignee", "status"], name="task_assignee_status")]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=["open", "done"]), name="task_status_valid")
        ]

    def __str__(self) -> str:
        return self.title


class Send(models.Model):
    """A one-off message to every current member of a group, now or at a set time."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "SMS"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Sending"
        FINISHED = "finished", "Finished"
        CANCELLED = "cancelled", "Cancelled"

    name = models.CharField(max_length=255)
    group = models.ForeignKey(CustomerGroup, on_delete=models.CASCADE, related_name="sends")
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.EMAIL)
    settings = models.JSONField(default=dict, blank=True, help_text='Email: {"subject", "body"}; SMS: {"body"}.')
    suppressed_by = models.ManyToManyField(
        CustomerGroup, blank=True, related_name="+", help_text="Leave out members of any of these groups."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, editable=False)
    scheduled_for = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(django_settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   editable=False)  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    report = models.JSONField(default=dict, blank=True, editable=False, help_text="Counts by result, when finished.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(channel__in=["email", "sms"]), name="send_channel_valid"),
            models.CheckConstraint(
                condition=models.Q(status__in=["draft", "scheduled", "running", "finished", "cancelled"]),
                name="send_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from .actions import action_class

        errors = action_class(self.channel).settings_errors_for(self.settings)
        if errors:
            raise ValidationError({"settings": [f"{name}: {problem}" for name, problem in errors.items()]})

    @property
    def can_cancel(self) -> bool:
        return self.status in (self.Status.DRAFT, self.Status.SCHEDULED)


class SendRecipient(models.Model):
    """One member's part of a send: (send, customer) is its idempotency key."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    send = models.ForeignKey(Send, on_delete=models.CASCADE, related_name="recipients")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="sends_received")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    detail = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["send", "customer"], name="send_recipient_once"),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "sent", "skipped", "failed"]), name="send_recipient_status"
            ),
        ]
        indexes = [
            models.Index(fields=["send", "id"], name="send_recipient_pending", condition=models.Q(status="pending")),
            models.Index(fields=["customer"], name="send_recipient_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.send} to customer {self.customer_id}: {self.status}"

    @property
    def idempotency_key(self) -> str:
        return f"send-{self.send_id}-{self.customer_id}"
