"""Writes that other systems make through the API: identify (upsert) customers and accounts, link them,
and record events in batches.

Every function here writes set-based and relies on the models' announcements (model saves and the
bulk querysets announce the customers they touch); callers wrap a call in `transaction.atomic()` so
that a whole call is evaluated by the groups once, after commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Lower

from . import fields
from .models import Account, AccountMembership, Customer, Event
from .querysets import Recorded


@dataclass(frozen=True)
class CustomerRef:
    """How a caller names a customer: our id, or their external_id."""

    customer_id: int | None = None
    external_id: str | None = None


def find_customer(external_id: str | None, email: str | None, *, lock: bool = False) -> Customer | None:
    """The customer an identify call means: by external_id, else by email ignoring case.

    With an external_id that nobody has yet, an email match counts only for a customer that has no
    external_id of its own (a web sign-up later seen by the till); among several customers with the
    same email, the oldest is chosen.
    """
    customers = Customer.objects.select_for_update() if lock else Customer.objects.all()
    if external_id:
        found = customers.filter(external_id=external_id).first()
        if found is not None or not email:
            return found
        customers = customers.filter(external_id__isnull=True)
    if not email:
        return None
    return customers.alias(email_ci=Lower("email")).filter(email_ci=email.lower()).order_by("pk").first()


def merge_attributes(stored: dict | None, sent: dict) -> dict:
    """The stored attributes updated with those sent; a key sent as None is removed."""
    merged = {**(stored or {}), **sent}
    return {key: value for key, value in merged.items() if not (key in sent and sent[key] is None)}


def identify_customer(
    values: dict, *, attributes: dict | None = None, accounts: Sequence[dict] = ()
) -> tuple[Customer, bool]:
    """Create or update the customer named by `values` (external_id else email); returns it and
    whether it was created. Attributes are merged into the stored ones (None removes a key); accounts
    are linked (and created by external_id when new), never unlinked."""
    external_id = values.get("external_id") or None
    email = values.get("email") or None
    with transaction.atomic():
        for attempt in range(2):
            customer = find_customer(external_id, email, lock=True)
            created = customer is None
            if created:
                customer = Customer()
            # A key absent from the request leaves the stored value alone.
            for name in fields.CUSTOMER_FIELDS:
                if name in values:
                    setattr(customer, name, values[name])
            customer.external_id = customer.external_id or None
            if attributes:
                customer.attributes = merge_attributes(customer.attributes, attributes)
            try:
                # A concurrent identify may create the same external_id between our read and write:
                # the savepoint lets us find and update that customer instead of failing.
                with transaction.atomic():
                    customer.save()
                break
            except IntegrityError:
                if attempt:
                    raise
        if accounts:
            link_accounts(customer, accounts)
    return customer, created


def link_accounts(customer: Customer, accounts: Sequence[dict]) -> None:
    """Link a customer to accounts given as {"external_id", "role"}, creating unknown accounts.

    An account named twice is linked once, with the last role given.
    """
    roles = {a["external_id"]: a.get("role") or "" for a in accounts}
    external_ids = list(roles)
    Account.objects.bulk_create(
        [Account(external_id=e) for e in external_ids], ignore_conflicts=True, unique_fields=["external_id"]
    )
    by_external_id = dict(Account.objects.filter(external_id__in=external_ids).values_list("external_id", "pk"))
    AccountMembership.objects.bulk_create(
        [AccountMembership(customer=customer, account_id=by_external_id[e], role=role) for e, role in roles.items()],
        update_conflicts=True,
        unique_fields=["customer", "account"],
        update_fields=["role"],
    )


def identify_account(external_id: str, values: dict, *, attributes: dict | None = None) -> tuple[Account, bool]:
    """Create or update an account by external_id; attributes are merged into the stored ones."""
    with transaction.atomic():
        account, created = Account.objects.select_for_update().get_or_create(external_id=external_id)
        for name in fields.ACCOUNT_FIELDS:
            if name in values:
                setattr(account, name, values[name])
        if attributes:
            account.attributes = merge_attributes(account.attributes, attributes)
        account.save()  # announces the account's members: their account conditions may change
    return account, created


def resolve_customers(refs: Sequence[CustomerRef]) -> list[int | None]:
    """Our id for each reference, None where no such customer exists; two queries for any number."""
    by_external_id = _customer_ids_by("external_id", {r.external_id for r in refs if r.external_id is not None})
    existing = set(_customer_ids_by("id", {r.customer_id for r in refs if r.customer_id is not None}))
    return [
        (r.customer_id if r.customer_id in existing else None)
        if r.customer_id is not None
        else by_external_id.get(r.external_id)
        for r in refs
    ]


def _customer_ids_by(column: str, values: set) -> dict:
    """{value: customer id} for the customers whose `column` is one of `values`.

    One array parameter rather than Django's IN list of one parameter per value, which PostgreSQL
    parses and binds faster for the thousand customers of an event batch.
    """
    if not values:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column}, id FROM {Customer._meta.db_table} WHERE {column} = ANY(%s)",
            [list(values)],
        )
        return dict(cursor.fetchall())


def resolve_accounts(external_ids: Iterable[str]) -> dict[str, int]:
    external_ids = {e for e in external_ids if e}
    if not external_ids:
        return {}
    return dict(Account.objects.filter(external_id__in=external_ids).values_list("external_id", "pk"))


def add_account_members(account: Account, members: Sequence[tuple[int, str]]) -> int:
    """Link customers (id, role) to an account; a customer already linked (or named twice) gets the last role."""
    roles = dict(members)
    with transaction.atomic():
        written = AccountMembership.objects.bulk_create(
            [AccountMembership(account=account, customer_id=customer, role=role) for customer, role in roles.items()],
            update_conflicts=True,
            unique_fields=["customer", "account"],
            update_fields=["role"],
        )
    return len(written)


def remove_account_members(account: Account, customer_ids: Iterable[int]) -> int:
    """Unlink customers from an account; returns how many were linked."""
    with transaction.atomic():
        deleted, _ = AccountMembership.objects.filter(account=account, customer_id__in=list(customer_ids)).delete()
    return deleted


def record_events(events: Sequence[dict]) -> list[Recorded]:
    """Insert validated events (their column values) in one statement: what became of each, in order
    (an event sent again under its unique_id is not recorded twice). The groups evaluate their
    customers once, after commit."""
    return Event.objects.record(events)


def match_customers(tokens: list[str]) -> tuple[set[int], list[str]]:
    """Customer ids for emails (any case) and external ids, and the tokens that matched nobody.

    A header cell such as "email" simply matches nobody and is reported, which tells staff it was read.
    """
    emails = {t.lower() for t in tokens if "@" in t}
    others = [t for t in tokens if "@" not in t]
    ids: set[int] = set()
    found_emails: set[str] = set()
    if emails:
        rows = Customer.objects.annotate(email_ci=Lower("email")).filter(email_ci__in=emails)
        for pk, email in rows.values_list("pk", "email_ci"):
            ids.add(pk)
            found_emails.add(email)
    found_external: set[str] = set()
    if others:
        for pk, external_id in Customer.objects.filter(external_id__in=others).values_list("pk", "external_id"):
            ids.add(pk)
            found_external.add(external_id)
    unmatched = [t for t in tokens if (t.lower() not in found_emails if "@" in t else t not in found_external)]
    return ids, unmatched
