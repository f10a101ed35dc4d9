"""Querysets whose bulk writes announce the customers they touched (model signals don't fire there)."""

from __future__ import annotations

from django.db import models, transaction


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
            # New events change only the groups that read their names, for their own customer:
            # announced by name, they reach the groups as one announcement after commit.
            customers_by_name: dict[str, set[int]] = {}
            for event in created:
                customers_by_name.setdefault(event.name, set()).add(event.customer_id)
            for name, customer_ids in customers_by_name.items():
                _announce(customer_ids, events={name})
        return created


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
