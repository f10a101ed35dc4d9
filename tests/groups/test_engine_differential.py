"""Differential tests: the engine's membership, by full refresh and by the event path, equals what the
independent pure-Python evaluator of rules.md (tests/groups/rules/oracle.py) decides, on random data."""

from __future__ import annotations

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from groups import engine
from groups.models import CustomerGroup, Reason

from .history import members, replay
from .rules import oracle
from .rules.conftest import make_group
from .rules.test_property import ACCOUNT_DECLARED, CATALOGUE, CUSTOMER_DECLARED, examples, store


def expected_members(doc, ids, people, now, tz) -> set[int]:
    world = oracle.World(now=now, tz=tz, customer_attributes=CUSTOMER_DECLARED, account_attributes=ACCOUNT_DECLARED)
    return {pk for pk, person in zip(ids, people, strict=True) if oracle.holds(doc, person, world)}


@pytest.mark.django_db
def test_full_refresh_and_event_path_agree_with_the_oracle():
    read_groups = [make_group("First").pk, make_group("Second").pk]

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(examples(read_groups), st.randoms(use_true_random=False))
    def check(example, rng):
        now, tz, doc, people = example
        savepoint = transaction.savepoint()
        try:
            ids = store(people, now)
            expected = expected_members(doc, ids, people, now, tz)
            refreshed = CustomerGroup.objects.create(name="Refreshed", slug="refreshed", rules=doc, time_zone=tz.key)
            by_events = CustomerGroup.objects.create(name="By events", slug="by-events", rules=doc, time_zone=tz.key)

            engine.evaluate([refreshed], None, now, reason=Reason.MANUAL_REFRESH, catalogue=CATALOGUE)
            # The event path, customer by customer in a random order and then all at once.
            for pk in rng.sample(ids, len(ids)):
                engine.evaluate([by_events], [pk], now, reason=Reason.EVENT, catalogue=CATALOGUE)
            engine.evaluate([by_events], ids, now, reason=Reason.EVENT, catalogue=CATALOGUE)

            assert members(refreshed) == expected
            assert members(by_events) == expected
            assert replay(refreshed) == expected and replay(by_events) == expected
        finally:
            transaction.savepoint_rollback(savepoint)

    check()
