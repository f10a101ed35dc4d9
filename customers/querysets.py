"""Querysets whose bulk writes announce the customers they touched (model signals don't fire there)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from django.db import connections, models, transaction


def _announce(ids, events=None) -> None:
    from .signals import announce

    announce(ids, events=events)


class CustomerQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        _announce(obj.pk for obj in created)
        return created

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        count = super().bulk_update(objs, fields, *args, **kwargs)
        _announce(obj.pk for obj in objs)
        return count

    def update(self, **kwargs):
        with transaction.atomic(using=self.db):
            ids = list(self.values_list("pk", flat=True))
            count = super().update(**kwargs) if ids else 0
            _announce(ids)
        return count


class CustomerOwnedQuerySet(models.QuerySet):
    """For rows that belong to a customer (events, account memberships): announce their owners."""

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        _announce(obj.customer_id for obj in created)
        return created

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        count = super().bulk_update(objs, fields, *args, **kwargs)
        _announce(obj.customer_id for obj in objs)
        return count

    def update(self, **kwargs):
        with transaction.atomic(using=self.db):
            ids = set(self.values_list("customer_id", flat=True))
            count = super().update(**kwargs) if ids else 0
            _announce(ids)
        return count

    def delete(self):
        with transaction.atomic(using=self.db):
            ids = set(self.values_list("customer_id", flat=True))
            result = super().delete()
            _announce(ids)
        return result


class EventQuerySet(CustomerOwnedQuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        with transaction.atomic(using=self.db):
            created = models.QuerySet.bulk_create(self, objs, *args, **kwargs)
            _announce_new_events((event.customer_id, event.name) for event in created)
        return created

    def record(self, events: Sequence[dict]) -> list[tuple[int, datetime]]:
        """Insert new, already validated events (each its column values) in one statement; returns the
        id and created_at of each, in order.

        The events travel as one JSON document that PostgreSQL unpacks into rows, which costs less
        than Django's bulk_create (a model instance per event, every value prepared in Python) or
        one array per column (the values turned into arrays in Python).
        """
        if not events:
            return []
        document = json.dumps(
            [
                {
                    **event,
                    "occurred_at": event["occurred_at"].isoformat(),
                    "amount": None if event["amount"] is None else str(event["amount"]),
                }
                for event in events
            ]
        )
        with transaction.atomic(using=self.db), connections[self.db].cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {self.model._meta.db_table}
                        (customer_id, account_id, name, occurred_at, amount, properties, created_at)
                    SELECT customer_id, account_id, name, occurred_at, amount, properties, statement_timestamp()
                    FROM jsonb_to_recordset(%s::jsonb) AS e(customer_id bigint, account_id bigint, name varchar,
                                                            occurred_at timestamptz, amount numeric, properties jsonb)
                    RETURNING id, created_at""",
                [document],
            )
            # The rows come back in the order of the document (as Django's bulk_create also relies on).
            created = cursor.fetchall()
            _announce_new_events((event["customer_id"], event["name"]) for event in events)
        return created

    def names(self, limit: int = 500) -> list[str]:
        """The distinct names of all events, in order (at most `limit`), whatever this queryset filters.

        One index probe per name (event_name_time starts with the name), so it costs as many steps
        as there are names, however many events there are.
        """
        table = self.model._meta.db_table
        with connections[self.db].cursor() as cursor:
            cursor.execute(
                f"""WITH RECURSIVE found(name) AS (
                        (SELECT name FROM {table} ORDER BY name LIMIT 1)
                        UNION ALL
                        SELECT (SELECT e.name FROM {table} e WHERE e.name > found.name ORDER BY e.name LIMIT 1)
                        FROM found WHERE found.name IS NOT NULL
                    )
                    SELECT name FROM found WHERE name IS NOT NULL LIMIT %s""",
                [limit],
            )
            return [row[0] for row in cursor.fetchall()]


def _announce_new_events(customers_and_names) -> None:
    # New events change only the groups that read their names, for their own customer: announced by
    # name, they reach the groups as one announcement after commit.
    customers_by_name: dict[str, set[int]] = {}
    for customer_id, name in customers_and_names:
        customers_by_name.setdefault(name, set()).add(customer_id)
    for name, customer_ids in customers_by_name.items():
        _announce(customer_ids, events={name})


class AccountQuerySet(models.QuerySet):
    """Account state is read by account conditions, so account writes announce the members."""

    def _announce_members(self, account_ids) -> None:
        from .models import AccountMembership

        _announce(
            AccountMembership.objects.filter(account_id__in=list(account_ids)).values_list("customer_id", flat=True)
        )

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        count = super().bulk_update(objs, fields, *args, **kwargs)
        self._announce_members(obj.pk for obj in objs)
        return count

    def update(self, **kwargs):
        with transaction.atomic(using=self.db):
            ids = list(self.values_list("pk", flat=True))
            count = super().update(**kwargs) if ids else 0
            self._announce_members(ids)
        return count
