"""Querysets whose bulk writes announce the customers they touched (model signals don't fire there)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, models, transaction
from psycopg.types.json import Jsonb


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
            _announce_new_events(created)
        return created

    def record(self, events: Sequence) -> list:
        """Insert new, already validated events (the API's batches) in one statement, one array per column.

        Django's bulk_create prepares every value of every row in Python first, which for a batch of
        1,000 events took as long as the insert itself (measured 45 ms against 25 ms this way).
        """
        events = list(events)
        if not events:
            return events
        columns = (
            [e.customer_id for e in events],
            [e.account_id for e in events],
            [e.name for e in events],
            [e.occurred_at for e in events],
            [e.amount for e in events],
            [Jsonb(e.properties) for e in events],
        )
        with transaction.atomic(using=self.db), connections[self.db].cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {self.model._meta.db_table}
                        (customer_id, account_id, name, occurred_at, amount, properties, created_at)
                    SELECT *, statement_timestamp() FROM unnest(
                        %s::bigint[], %s::bigint[], %s::varchar[], %s::timestamptz[], %s::numeric[], %s::jsonb[])
                    RETURNING id, created_at""",  # noqa: S608 - our own table name
                columns,
            )
            # RETURNING gives the rows in the order of the arrays (as Django's bulk_create relies on).
            for event, (pk, created_at) in zip(events, cursor.fetchall(), strict=True):
                event.pk, event.created_at = pk, created_at
                event._state.adding, event._state.db = False, self.db
            _announce_new_events(events)
        return events


def _announce_new_events(events) -> None:
    # New events change only the groups that read their names, for their own customer: announced by
    # name, they reach the groups as one announcement after commit.
    customers_by_name: dict[str, set[int]] = {}
    for event in events:
        customers_by_name.setdefault(event.name, set()).add(event.customer_id)
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
