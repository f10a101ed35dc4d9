"""Keeps groups current: customer writes announced by `customers` are evaluated at once."""

from __future__ import annotations

from django.dispatch import receiver

from customers.signals import customers_touched

from . import services


@receiver(customers_touched)
def evaluate_touched_customers(sender, customer_ids, reason, events=None, **kwargs) -> None:
    services.evaluate_customers(customer_ids, reason=reason, events=events)
