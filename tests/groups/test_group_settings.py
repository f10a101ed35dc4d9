"""A group's refresh settings are checked once (services.settings_errors): the admin form and the API
refuse the same settings with the same words."""

from __future__ import annotations

import pytest

from groups import services
from groups.api import GroupSerializer
from groups.forms import CustomerGroupForm

pytestmark = pytest.mark.django_db

MANUAL_ON_SCHEDULE = {"kind": "manual", "refresh_mode": "events_and_schedule", "time_zone": ""}
DAILY = {"frequency": "daily", "time": "06:00"}


def form_errors(**fields) -> dict:
    data = {"name": "Panel", "slug": "panel", "rules": "{}", "schedule_frequency": "daily", "schedule_time": "06:00"}
    form = CustomerGroupForm(data={**data, **fields})
    assert not form.is_valid()
    return form.errors


def api_errors(**fields) -> dict:
    serializer = GroupSerializer(data={"name": "Panel", "rules": {}, "schedule": DAILY, **fields})
    assert not serializer.is_valid()
    return serializer.errors


def test_a_manual_group_on_a_schedule_is_refused_with_one_message_on_both_surfaces():
    (problem,) = services.settings_errors(**MANUAL_ON_SCHEDULE, schedule=DAILY)
    assert problem["path"] == "/refresh_mode"
    assert form_errors(**MANUAL_ON_SCHEDULE)["refresh_mode"] == [problem["message"]]
    assert [str(m) for m in api_errors(**MANUAL_ON_SCHEDULE)["refresh_mode"]] == [problem["message"]]


@pytest.mark.parametrize("name", ["Nowhere/Land", "posixrules"])
def test_a_time_zone_the_schedule_cannot_use_is_refused_by_the_form_and_the_api_alike(name):
    settings = {"kind": "dynamic", "refresh_mode": "events_and_schedule", "time_zone": name}
    (problem,) = services.settings_errors(**settings, schedule=DAILY)
    assert problem["path"] == "/time_zone"
    rules = '{"field": "role", "op": "eq", "value": "customer"}'
    assert form_errors(**settings, rules=rules)["time_zone"] == [problem["message"]]
    api = api_errors(**settings, rules={"field": "role", "op": "eq", "value": "customer"})
    assert [str(m) for m in api["time_zone"]] == [problem["message"]]
