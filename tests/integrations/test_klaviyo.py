"""The Klaviyo provider against the fake Klaviyo of tests/fakes/klaviyo.py."""

from __future__ import annotations

import pytest

from integrations.providers.base import Contact, ProviderError
from integrations.providers.klaviyo import Klaviyo


def provider(fake, **settings) -> Klaviyo:
    return Klaviyo(settings={"base_url": fake.url, **settings}, credentials={"api_key": fake.api_key})


def contacts(n: int, start: int = 1) -> list[Contact]:
    return [Contact(customer_id=i, email=f"c{i}@example.com", first_name=f"C{i}") for i in range(start, start + n)]


def test_check_names_the_account(fake_klaviyo):
    assert provider(fake_klaviyo).check() == "Corner Café"


def test_bad_api_key_is_a_permanent_error_with_klaviyos_message(fake_klaviyo):
    bad = Klaviyo(settings={"base_url": fake_klaviyo.url}, credentials={"api_key": "pk_wrong"})
    with pytest.raises(ProviderError) as error:
        bad.check()
    assert error.value.permanent and error.value.status == 401
    assert "invalid private key" in error.value.message


@pytest.mark.parametrize(
    "settings, credentials, problem",
    [
        ({"revision": "latest"}, {"api_key": "pk_x"}, "revision"),
        ({"timeout": 0}, {"api_key": "pk_x"}, "timeout"),
        ({"colour": "red"}, {"api_key": "pk_x"}, "colour"),
        ({}, {"api_key": "public123"}, "private API key"),
        ({"base_url": "not a url"}, {"api_key": "pk_x"}, "base_url"),
        ({}, {}, "api_key"),
    ],
)
def test_bad_settings_or_credentials_say_which_field_is_wrong(settings, credentials, problem):
    with pytest.raises(ValueError, match=problem):
        Klaviyo(settings=settings, credentials=credentials)


def test_settings_left_out_take_their_defaults():
    assert Klaviyo(credentials={"api_key": "pk_x"}).config["revision"] == "2026-10-15"


def test_every_call_sends_the_revision_of_the_settings(fake_klaviyo):
    klaviyo = provider(fake_klaviyo, revision="2025-10-15")
    klaviyo.add_members(klaviyo.ensure_list("Regulars"), contacts(1))
    assert {c.headers.get("Revision") for c in fake_klaviyo.calls} == {"2025-10-15"}


def test_ensure_list_creates_the_list_once_and_finds_it_by_id_afterwards(fake_klaviyo):
    klaviyo = provider(fake_klaviyo)
    list_id = klaviyo.ensure_list("Regulars")
    assert klaviyo.ensure_list("Regulars", list_id) == list_id
    assert len(fake_klaviyo.calls_to("POST", "^/api/lists$")) == 1
    assert fake_klaviyo.lists[list_id]["name"] == "Regulars"


def test_ensure_list_makes_a_new_list_when_the_remembered_one_was_deleted_in_klaviyo(fake_klaviyo):
    klaviyo = provider(fake_klaviyo)
    old = klaviyo.ensure_list("Regulars")
    del fake_klaviyo.lists[old]
    new = klaviyo.ensure_list("Regulars", old)
    assert new != old and new in fake_klaviyo.lists


def test_daily_cap_on_list_creation_is_transient_and_says_when_to_retry():
    from tests.fakes.klaviyo import FakeKlaviyo

    with FakeKlaviyo(list_creations_per_day=0) as fake:
        with pytest.raises(ProviderError) as error:
            provider(fake).ensure_list("Regulars")
    assert not error.value.permanent and error.value.retry_after == 86400


def test_rename_and_delete_the_list(fake_klaviyo):
    klaviyo = provider(fake_klaviyo)
    list_id = klaviyo.ensure_list("Regulars")
    klaviyo.rename_list(list_id, "Best regulars")
    assert fake_klaviyo.lists[list_id]["name"] == "Best regulars"
    klaviyo.delete_list(list_id)
    assert list_id not in fake_klaviyo.lists
    klaviyo.delete_list(list_id)  # already gone is not an error


def test_add_members_upserts_profiles_and_returns_each_customers_profile_id(fake_klaviyo):
    existing = fake_klaviyo.add_profile("C2@example.com", first_name="Old")
    klaviyo = provider(fake_klaviyo)
    list_id = klaviyo.ensure_list("Regulars")

    ids = klaviyo.add_members(list_id, contacts(3))

    assert fake_klaviyo.members(list_id) == {"c1@example.com", "c2@example.com", "c3@example.com"}
    assert ids[2] == existing and fake_klaviyo.profiles[existing]["first_name"] == "C2"
    assert set(ids) == {1, 2, 3} and len(set(ids.values())) == 3
    assert len(fake_klaviyo.calls_to("POST", "relationships/profiles")) == 1


def test_add_members_updates_a_remembered_profile_by_its_id(fake_klaviyo):
    klaviyo = provider(fake_klaviyo)
    list_id = klaviyo.ensure_list("Regulars")
    ids = klaviyo.add_members(list_id, contacts(1))
    moved = Contact(customer_id=1, email="new@example.com", remote_id=ids[1])
    assert klaviyo.add_members(list_id, [moved]) == ids
    assert fake_klaviyo.members(list_id) == {"new@example.com"}


def test_contacts_klaviyo_refuses_are_left_out_of_the_result(fake_klaviyo):
    klaviyo = provider(fake_klaviyo)
    list_id = klaviyo.ensure_list("Regulars")
    batch = [*contacts(1), Contact(customer_id=7, email="not-an-email"), Contact(customer_id=8)]
    assert set(klaviyo.add_members(list_id, batch)) == {1}
    assert fake_klaviyo.members(list_id) == {"c1@example.com"}


def test_remove_members_uses_the_remembered_ids_and_touches_nobody_else(fake_klaviyo):
    klaviyo = provider(fake_klaviyo)
    list_id = klaviyo.ensure_list("Regulars")
    ids = klaviyo.add_members(list_id, contacts(3))
    calls_before = len(fake_klaviyo.calls)

    klaviyo.remove_members(list_id, [Contact(customer_id=i, remote_id=ids[i]) for i in (1, 3)])

    assert fake_klaviyo.members(list_id) == {"c2@example.com"}
    assert [c.method for c in fake_klaviyo.calls[calls_before:]] == ["DELETE"]  # no lookups
    assert len(fake_klaviyo.profiles) == 3  # the profiles stay in Klaviyo, only off the list


def test_a_batch_of_1000_goes_in_one_call_and_1001_is_refused_before_any_call(fake_klaviyo):
    klaviyo = provider(fake_klaviyo)
    list_id = klaviyo.ensure_list("Regulars")
    assert len(klaviyo.add_members(list_id, contacts(1000))) == 1000
    [relate] = fake_klaviyo.calls_to("POST", "relationships/profiles")
    assert len(relate.body["data"]) == 1000
    calls_before = len(fake_klaviyo.calls)
    with pytest.raises(ValueError, match="At most 1000"):
        klaviyo.add_members(list_id, contacts(1001))
    assert len(fake_klaviyo.calls) == calls_before


def test_list_members_reads_every_page(fake_klaviyo):
    klaviyo = provider(fake_klaviyo)
    list_id = klaviyo.ensure_list("Regulars")
    ids = klaviyo.add_members(list_id, contacts(250))
    members = list(klaviyo.list_members(list_id))
    assert {m.remote_id for m in members} == set(ids.values())
    assert {m.email for m in members} == {f"c{i}@example.com" for i in range(1, 251)}
    assert len(fake_klaviyo.calls_to("GET", f"/api/lists/{list_id}/profiles")) == 3


def test_a_short_retry_after_is_waited_out_and_the_call_succeeds(fake_klaviyo):
    klaviyo = provider(fake_klaviyo)
    list_id = klaviyo.ensure_list("Regulars")
    fake_klaviyo.fail(429, path="relationships/profiles", retry_after=1)
    klaviyo.add_members(list_id, contacts(2))
    first, second = fake_klaviyo.calls_to("POST", "relationships/profiles")
    assert second.at - first.at >= 1
    assert fake_klaviyo.members(list_id) == {"c1@example.com", "c2@example.com"}


def test_a_long_retry_after_goes_back_to_the_caller_as_transient(fake_klaviyo):
    klaviyo = provider(fake_klaviyo)
    fake_klaviyo.fail(429, path="/api/lists", retry_after=60)
    with pytest.raises(ProviderError) as error:
        klaviyo.ensure_list("Regulars")
    assert not error.value.permanent and error.value.retry_after == 60


def test_server_errors_are_transient(fake_klaviyo):
    fake_klaviyo.fail(503)
    with pytest.raises(ProviderError) as error:
        provider(fake_klaviyo).check()
    assert not error.value.permanent and error.value.status == 503


def test_a_refused_request_is_permanent(fake_klaviyo):
    with pytest.raises(ProviderError) as error:
        provider(fake_klaviyo).rename_list("NOSUCH", "x")
    assert error.value.permanent and error.value.status == 404


def test_a_timeout_is_transient(fake_klaviyo):
    fake_klaviyo.stall(2)
    with pytest.raises(ProviderError) as error:
        provider(fake_klaviyo, timeout=0.3).check()
    assert not error.value.permanent


def test_an_import_job_that_does_not_finish_in_time_is_transient():
    from tests.fakes.klaviyo import FakeKlaviyo

    with FakeKlaviyo(polls_per_job=1000) as fake:
        klaviyo = provider(fake, import_timeout=0.5)
        list_id = klaviyo.ensure_list("Regulars")
        with pytest.raises(ProviderError, match="did not finish") as error:
            klaviyo.add_members(list_id, contacts(2))
        assert fake.members(list_id) == set()
    assert not error.value.permanent


def test_the_fake_throttles_an_endpoint_beyond_ten_calls_a_second_as_klaviyo_does(fake_klaviyo):
    import time

    import httpx

    list_id = provider(fake_klaviyo).ensure_list("Regulars")
    headers = {"Authorization": f"Klaviyo-API-Key {fake_klaviyo.api_key}", "revision": "2026-10-15"}
    with httpx.Client(base_url=fake_klaviyo.url, headers=headers) as client:
        client.get(f"/api/lists/{list_id}")  # connected before the burst
        # The windows are fixed seconds: a burst that straddled two could stay within both.
        time.sleep(1 - time.time() % 1)
        answers = [client.get(f"/api/lists/{list_id}") for _ in range(12)]
    throttled = [a for a in answers if a.status_code == 429]
    assert throttled and all(int(a.headers["Retry-After"]) >= 1 for a in throttled)


def test_a_long_sync_waits_its_turn_at_each_endpoint_and_is_never_throttled(fake_klaviyo):
    klaviyo = provider(fake_klaviyo)
    list_id = klaviyo.ensure_list("Regulars")
    klaviyo.add_members(list_id, contacts(1000))
    klaviyo.add_members(list_id, contacts(200, start=1001))  # 12 pages of imported profiles in all
    assert len(fake_klaviyo.members(list_id)) == 1200
    assert fake_klaviyo.throttled == 0
    pages = fake_klaviyo.calls_to("GET", "/api/profile-bulk-import-jobs/[^/]+/profiles")
    assert len(pages) == 12
    # Five at once, then 2.4 a second: the last seven pages waited for their places.
    assert pages[-1].at - pages[0].at >= 7 / 2.4 - 0.1


def test_every_drain_of_a_connection_in_a_worker_shares_its_paces(db):
    from integrations import services
    from integrations.models import Connection

    connection = Connection.objects.create(
        kind="klaviyo", name="K", settings={"base_url": "http://127.0.0.1:9"}, credentials={"api_key": "pk_x"}
    )
    other = Connection.objects.create(
        kind="klaviyo", name="K2", settings={"base_url": "http://127.0.0.1:9"}, credentials={"api_key": "pk_y"}
    )
    first, second = services.provider_for(connection), services.provider_for(connection)
    assert first.pace("Add Profiles to List") is second.pace("Add Profiles to List")
    assert services.provider_for(other).pace("Add Profiles to List") is not first.pace("Add Profiles to List")
