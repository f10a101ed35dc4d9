"""Connections to other apps, each group's sync to one of them, and what each sync sent and skipped."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from encrypted_fields.fields import EncryptedJSONField

from groups.feed import Position
from groups.models import CustomerGroup


class Connection(models.Model):
    """One account at an app (a Klaviyo account, a Mailchimp audience, a webhook endpoint)."""

    class Status(models.TextChoices):
        UNTESTED = "untested", "Not tested yet"
        OK = "ok", "Working"
        FAILING = "failing", "Failing"
        DISABLED = "disabled", "Disabled"

    class Consent(models.TextChoices):
        EVERYONE = "everyone", "Everyone in the group"
        EMAIL = "email", "Only customers with email consent"
        SMS = "sms", "Only customers with SMS consent"

    kind = models.CharField(max_length=32)
    name = models.CharField(max_length=255)
    settings = models.JSONField(default=dict, blank=True)
    # Encrypted with keys from the environment (CREDENTIALS_KEYS, see settings); shown back only masked.
    credentials = EncryptedJSONField(default=dict, blank=True)
    consent = models.CharField(max_length=16, choices=Consent.choices, default=Consent.EVERYONE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNTESTED)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    account = models.CharField(max_length=255, blank=True, default="", help_text="As the app described it.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class GroupSync(models.Model):
    """A group kept as a list or tag in one connection's app, following the feed from `position`."""

    class State(models.TextChoices):
        OFF = "off", "Off"
        BACKFILLING = "backfilling", "Backfilling"
        IN_SYNC = "in_sync", "In sync"
        FAILING = "failing", "Failing"
        PAUSED = "paused", "Paused"

    RUNNING = (State.BACKFILLING, State.IN_SYNC)  # the states in which the drain sends

    group = models.ForeignKey(CustomerGroup, on_delete=models.CASCADE, related_name="syncs")
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="syncs")
    state = models.CharField(max_length=16, choices=State.choices, default=State.OFF)
    remote_id = models.CharField(max_length=255, blank=True, default="")
    remote_name = models.CharField(max_length=255, blank=True, default="")
    position = models.CharField(max_length=2000, blank=True, default="")
    # While a batch is being sent: the feed position it ends at, so a retry resends exactly that batch.
    sending_until = models.CharField(max_length=2000, blank=True, default="")
    # The members a backfill sends, fixed when it starts, and how many of them have been sent.
    backfill_members = ArrayField(models.BigIntegerField(), default=list, blank=True)
    backfill_sent = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    failure_count = models.PositiveIntegerField(default=0)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_reconcile_at = models.DateTimeField(null=True, blank=True)
    last_reconcile = models.JSONField(default=dict, blank=True)
    # Set when a drain is queued and cleared when it starts, so a burst of commits queues one drain.
    drain_queued = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["connection__name"]
        constraints = [models.UniqueConstraint(fields=["group", "connection"], name="groupsync_unique")]

    def __str__(self) -> str:
        return f"{self.group} → {self.connection}"

    @property
    def is_running(self) -> bool:
        return self.state in self.RUNNING

    @property
    def feed_position(self) -> Position | None:
        return Position.parse(self.position) if self.position else None


class SyncBatch(models.Model):
    """What one drain step sent: a backfill chunk, or the changes of the feed up to `end`."""

    class Kind(models.TextChoices):
        BACKFILL = "backfill", "First sync"
        FEED = "feed", "Changes"

    sync = models.ForeignKey(GroupSync, on_delete=models.CASCADE, related_name="batches")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The feed position after the batch (for a backfill, the position it was read at).
    end_xact = models.BigIntegerField()
    end_change_id = models.BigIntegerField()
    added = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["-sent_at"]
        indexes = [models.Index(fields=["sync", "end_xact", "end_change_id"], name="syncbatch_sync_end")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of sync {self.sync_id} at {self.sent_at:%Y-%m-%d %H:%M:%S}"


class SyncSkip(models.Model):
    """A member not sent to a connection's app, and why (consent, no email on file)."""

    sync = models.ForeignKey(GroupSync, on_delete=models.CASCADE, related_name="skips")
    customer_id = models.BigIntegerField()
    reason = models.CharField(max_length=255)
    skipped_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sync", "customer_id"], name="syncskip_unique")]

    def __str__(self) -> str:
        return f"{self.customer_id} skipped by sync {self.sync_id}: {self.reason}"


class RemoteContact(models.Model):
    """The app's own id for a customer, remembered so later removals need no lookup."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="contacts")
    customer_id = models.BigIntegerField()
    remote_id = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "customer_id"], name="remotecontact_unique")]
        indexes = [models.Index(fields=["connection", "remote_id"], name="remotecontact_remote")]

    def __str__(self) -> str:
        return f"{self.customer_id} is {self.remote_id} at connection {self.connection_id}"


class ReceivedWebhook(models.Model):
    """A delivery taken by the demo receiver (`manage.py webhook_receiver`, started by `make run`)."""

    msg_id = models.CharField(max_length=255, unique=True)
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    received_at = models.DateTimeField()
    repeats = models.PositiveIntegerField(default=0, help_text="Times the same delivery came again (dropped).")

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "received webhook (demo receiver)"

    def __str__(self) -> str:
        return f"{self.event} {self.msg_id}"
