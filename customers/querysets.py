"""Querysets whose bulk writes announce the customers they touched (model signals don't fire there)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from django.db import connections, models, transaction


class Recorded(NamedTuple):
    """What became of one event given to `EventQuerySet.record`."""

    id: int
    created_at: datetime
    recorded: bool  # false: the same event (its unique_id) was recorded before, and this is that one


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

    def record(self, events: Sequence[dict]) -> list[Recorded]:
        """Insert new, already validated events (each its column values) in one statement; returns
        what became of each, in order.

        An event whose `unique_id` its customer already has under the same name is not recorded
        again: its entry is the event recorded first, with `recorded` false. So a sender that lost
        the answer sends the batch again and gets the same ids back, and nothing counts twice.

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
        table = self.model._meta.db_table
        with transaction.atomic(using=self.db), connections[self.db].cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {table}
                        (customer_id, account_id, name, occurred_at, amount, properties, unique_id, created_at)
                    SELECT customer_id, account_id, name, occurred_at, amount, properties, unique_id,
                           statement_timestamp()
                    FROM jsonb_to_recordset(%s::jsonb) AS e(customer_id bigint, account_id bigint, name varchar,
                                                            occurred_at timestamptz, amount numeric, properties jsonb,
                                                            unique_id varchar)
                    ON CONFLICT (customer_id, name, unique_id) WHERE unique_id IS NOT NULL DO NOTHING
                    RETURNING id, created_at""",
                [document],
            )
            # The rows come back in the order of the document (as Django's bulk_create also relies on),
            # without the ones already recorded.
            inserted = cursor.fetchall()
            if len(inserted) == len(events):
                recorded = [Recorded(pk, created_at, True) for pk, created_at in inserted]
            else:
                recorded = self._with_repeats(cursor, events, inserted)
            new = (e for e, r in zip(events, recorded, strict=True) if r.recorded)
            _announce_new_events((e["customer_id"], e["name"]) for e in new)
        return recorded

    def _with_repeats(self, cursor, events: Sequence[dict], inserted: list) -> list[Recorded]:
        """Each event's outcome when some were recorded before (or twice in this batch)."""
        keys = {(e["customer_id"], e["name"], e["unique_id"]) for e in events if e.get("unique_id") is not None}
        cursor.execute(
            f"""SELECT e.customer_id, e.name, e.unique_id, e.id, e.created_at
                FROM {self.model._meta.db_table} e
                JOIN unnest(%s::bigint[], %s::text[], %s::text[]) AS k(customer_id, name, unique_id)
                  ON e.customer_id = k.customer_id AND e.name = k.name AND e.unique_id = k.unique_id
                WHERE e.unique_id IS NOT NULL""",
            [[k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]],
        )
        first = {(cid, name, uid): (pk, created_at) for cid, name, uid, pk, created_at in cursor.fetchall()}
        new = {pk for pk, _ in inserted}
        rows = iter(inserted)
        recorded, seen = [], set()
        for event in events:
            key = (event["customer_id"], event["name"], event.get("unique_id"))
            if key[2] is None or (key not in seen and first[key][0] in new):
                recorded.append(Recorded(*next(rows), True))
            else:
                recorded.append(Recorded(*first[key], False))
            seen.add(key)
        return recorded

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
