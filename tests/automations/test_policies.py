"""Every policy of a trigger, checked with real emails to a real SMTP server."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from automations import firings
from automations.models import Firing, Trigger
from customers.models import Customer
from groups import services
from groups.models import CustomerGroup

from .conftest import run_automations, settle

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = {"subject": "Hello {{ customer.first_name }}", "body": "Welcome to {{ group.name }}."}


@pytest.fixture
def panel():
    return CustomerGroup.objects.create(name="Tasting panel", slug="panel", kind=CustomerGroup.Kind.MANUAL,
                                        time_zone="Europe/London")  # fmt: skip


def email_trigger(group, **policy) -> Trigger:
    return Trigger.objects.create(name="Hello", group=group, action="email", settings=HELLO, **policy)


def statuses(trigger) -> list[tuple[str, str]]:
    return list(trigger.firings.order_by("id").values_list("status", "detail"))


def flap(group, customer) -> None:
    services.remove_members(group, [customer.pk])
    services.add_members(group, [customer.pk])


def test_minimum_time_stops_a_flapping_customer_being_messaged_twice(panel, ann, smtp):
    trigger = email_trigger(panel, minimum_time=timedelta(hours=1))
    services.add_members(panel, [ann.pk])
    flap(panel, ann)  # enter, leave, enter within the hour
    run_automations()
    assert smtp.messages == [] and [s for s, _ in statuses(trigger)] == ["pending", "pending"]

    with time_machine.travel(timezone.now() + timedelta(minutes=61)):
        firings.execute_due()
    assert statuses(trigger) == [("skipped", "No longer a member"), ("sent", "Email “Hello Ann” to ann@example.com")]
    assert len(smtp.to("ann@example.com")) == 1


def test_minimum_time_skips_a_customer_who_left_before_it_passed(panel, ann, smtp):
    trigger = email_trigger(panel, minimum_time=timedelta(hours=1))
    services.add_members(panel, [ann.pk])
    services.remove_members(panel, [ann.pk])
    run_automations()
    with time_machine.travel(timezone.now() + timedelta(minutes=61)):
        firings.execute_due()
    assert statuses(trigger) == [("skipped", "No longer a member")] and smtp.messages == []


def test_reentry_once_fires_for_the_first_entry_only(panel, ann, smtp):
    trigger = email_trigger(panel, reentry=Trigger.Reentry.ONCE)
    services.add_members(panel, [ann.pk])
    run_automations()
    flap(panel, ann)
    run_automations()
    assert [s for s, _ in statuses(trigger)] == ["sent", "skipped"]
    assert statuses(trigger)[1][1] == "Already fired for this customer (re-entry: once per customer)"
    assert len(smtp.to("ann@example.com")) == 1


def test_reentry_each_fires_again_on_a_new_entry(panel, ann, smtp):
    trigger = email_trigger(panel, reentry=Trigger.Reentry.EACH)
    services.add_members(panel, [ann.pk])
    run_automations()
    flap(panel, ann)
    run_automations()
    assert [s for s, _ in statuses(trigger)] == ["sent", "sent"] and len(smtp.to("ann@example.com")) == 2


def test_cooldown_holds_off_a_second_message_until_it_has_passed(panel, ann, smtp):
    trigger = email_trigger(panel, cooldown=timedelta(days=1))
    services.add_members(panel, [ann.pk])
    run_automations()
    flap(panel, ann)
    run_automations()
    assert statuses(trigger)[1][0] == "skipped" and statuses(trigger)[1][1].startswith("Cooldown: fired for this")
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        flap(panel, ann)
        run_automations()
    assert [s for s, _ in statuses(trigger)] == ["sent", "skipped", "sent"]
    assert len(smtp.to("ann@example.com")) == 2


def test_exit_triggers_fire_when_the_customer_leaves(panel, ann, smtp):
    goodbye = {"subject": "We miss you", "body": "Come back to {{ group.name }}."}
    trigger = Trigger.objects.create(name="Bye", group=panel, on=Trigger.On.EXIT, action="email", settings=goodbye)
    services.add_members(panel, [ann.pk])
    run_automations()
    assert smtp.messages == []
    services.remove_members(panel, [ann.pk])
    run_automations()
    assert statuses(trigger) == [("sent", "Email “We miss you” to ann@example.com")]


def test_suppression_is_checked_when_acting_not_when_entering(panel, ann, smtp):
    subscribed = CustomerGroup.objects.create(name="Active subscription", slug="subs", kind=CustomerGroup.Kind.MANUAL)
    trigger = email_trigger(panel, minimum_time=timedelta(hours=1))
    trigger.suppressed_by.set([subscribed])
    bo = Customer.objects.create(first_name="Bo", email="bo@example.com", email_consent=True)
    services.add_members(panel, [ann.pk, bo.pk])
    run_automations()
    services.add_members(subscribed, [ann.pk])  # Ann subscribes while the trigger waits
    with time_machine.travel(timezone.now() + timedelta(minutes=61)):
        firings.execute_due()
    by_customer = dict(trigger.firings.values_list("customer_id", "detail"))
    assert by_customer[ann.pk] == "Suppressed: in “Active subscription”"
    assert [m["To"] for m in smtp.messages] == ["bo@example.com"]


def test_organic_triggers_leave_out_the_backfill_of_a_new_group(api, smtp, ann):
    from .conftest import BOUGHT_TEA, buy_tea

    Customer.objects.filter(pk=ann.pk).update(external_id="ann")
    buy_tea(api, "ann", when="2026-01-05T10:00:00Z")  # before the group exists
    group = CustomerGroup.objects.create(name="Bought tea", slug="tea", rules=BOUGHT_TEA)
    organic = email_trigger(group)
    everyone = Trigger.objects.create(name="All", group=group, action="email", settings=HELLO,
                                      origin=Trigger.Origin.ALL)  # fmt: skip
    services.fill_new_group(group)  # Ann enters as the group is filled: backfill
    cy = Customer.objects.create(external_id="cy", first_name="Cy", email="cy@example.com", email_consent=True)
    buy_tea(api, "cy")  # Cy enters because of what she did: organic
    run_automations()

    assert dict(organic.firings.values_list("customer_id", "status")) == {ann.pk: "skipped", cy.pk: "sent"}
    assert organic.firings.get(customer=ann).detail == (
        "Backfill (group created): this trigger acts on organic changes only"
    )
    assert dict(everyone.firings.values_list("customer_id", "status")) == {ann.pk: "sent", cy.pk: "sent"}


def test_quiet_hours_hold_messages_until_morning_in_the_groups_zone_across_a_dst_change(panel, ann, smtp):
    trigger = email_trigger(panel, quiet_start=dt.time(21), quiet_end=dt.time(9))
    # 22:00 in London on Saturday 27 March 2027; the clocks go forward at 01:00 that night. The
    # customer enters then too, so nothing acts on the entry at the real time of day.
    with time_machine.travel(dt.datetime(2027, 3, 27, 22, 0, tzinfo=dt.UTC)):
        services.add_members(panel, [ann.pk])
        settle()
        run_automations()
    firing = trigger.firings.get()
    # 09:00 British Summer Time is 08:00 UTC (before the change, 09:00 was 09:00 UTC).
    assert firing.status == "pending" and firing.due_at == dt.datetime(2027, 3, 28, 8, 0, tzinfo=dt.UTC)
    assert firing.detail == "Held for quiet hours until 2027-03-28 09:00 BST"
    with time_machine.travel(dt.datetime(2027, 3, 28, 7, 59, tzinfo=dt.UTC)):
        assert firings.execute_due() == 0
    assert smtp.messages == []
    with time_machine.travel(dt.datetime(2027, 3, 28, 8, 0, 30, tzinfo=dt.UTC)):
        assert firings.execute_due() == 1
    assert trigger.firings.get().status == "sent" and len(smtp.to("ann@example.com")) == 1


def test_quiet_hours_do_not_hold_a_task_for_a_manager(panel, ann, manager):
    trigger = Trigger.objects.create(name="Call", group=panel, action="task", quiet_start=dt.time(0),
                                     quiet_end=dt.time(23, 59), settings={"title": "Call {{ customer.first_name }}",
                                                                          "assignee": "maria"})  # fmt: skip
    services.add_members(panel, [ann.pk])
    run_automations()
    assert trigger.firings.get().status == Firing.Status.SENT
