"""The Lightspeed Retail (R-Series) provider against the fake Lightspeed of tests/fakes/lightspeed.py."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from integrations.providers.base import Contact, ProviderError
from integrations.providers.lightspeed import Lightspeed
from tests.fakes.lightspeed import FakeLightspeed


class Vault:
    """Where the service keeps a connection's credentials: one lock for every worker, as
    `integrations.services.credentials_lock` gives with a row lock."""

    def __init__(self, credentials: dict):
        self.credentials = dict(credentials)
        self.lock = threading.Lock()
        self.stored = []  # every set of credentials handed to on_credentials_changed

    @contextmanager
    def locked(self):
        with self.lock:
            yield dict(self.credentials)

    def store(self, credentials: dict) -> None:
        self.stored.append(credentials)
        self.credentials = dict(credentials)


def provider(fake, vault: Vault | None = None, **settings) -> Lightspeed:
    vault = vault or Vault(fake.credentials())
    settings = {"account_id": fake.account_id, "api_url": fake.api_url, "token_url": fake.token_url, **settings}
    return Lightspeed(
        settings=settings,
        credentials=dict(vault.credentials),
        on_credentials_changed=vault.store,
        credentials_lock=vault.locked,
    )


def contacts(fake, n: int, tags=()) -> list[Contact]:
    return [Contact(customer_id=i, email=fake.customers[fake.add_customer(f"c{i}@example.com", list(tags))]["email"])
            for i in range(1, n + 1)]  # fmt: skip


def test_check_names_the_account_and_hands_over_the_rotated_refresh_token(fake_lightspeed):
    vault = Vault(fake_lightspeed.credentials())
    assert provider(fake_lightspeed, vault).check() == "Corner Café"
    [stored] = vault.stored
    assert stored["refresh_token"] == fake_lightspeed.refresh_token == "rt-1"
    assert stored["expires_at"] > time.time() + 3000


def test_a_valid_access_token_is_used_and_one_about_to_expire_is_refreshed_first(fake_lightspeed):
    vault = Vault(fake_lightspeed.credentials())
    lightspeed = provider(fake_lightspeed, vault)
    lightspeed.check()
    assert fake_lightspeed.refreshes == 1
    lightspeed.check()
    assert fake_lightspeed.refreshes == 1
    soon = time.time() + 30  # inside the margin
    lightspeed.credentials["expires_at"] = vault.credentials["expires_at"] = soon
    lightspeed.check()
    assert fake_lightspeed.refreshes == 2


def test_an_access_token_refused_early_is_refreshed_once_and_the_call_repeated(fake_lightspeed):
    lightspeed = provider(fake_lightspeed)
    lightspeed.check()
    fake_lightspeed.access_tokens.clear()  # revoked at Lightspeed
    assert lightspeed.check() == "Corner Café"
    assert fake_lightspeed.refreshes == 2


def test_a_used_up_refresh_token_is_permanent_and_says_to_reconnect(fake_lightspeed):
    stale = fake_lightspeed.credentials()
    provider(fake_lightspeed).check()  # rotates the refresh token
    with pytest.raises(ProviderError, match="Connect the Lightspeed account again") as error:
        provider(fake_lightspeed, Vault(stale)).check()
    assert error.value.permanent


def test_bad_client_credentials_are_permanent(fake_lightspeed):
    with pytest.raises(ProviderError) as error:
        provider(fake_lightspeed, Vault({**fake_lightspeed.credentials(), "client_secret": "wrong"})).check()
    assert error.value.permanent and error.value.status == 401


def test_workers_refreshing_at_once_are_serialised_and_all_use_the_one_new_token(fake_lightspeed):
    vault = Vault(fake_lightspeed.credentials())
    workers = [provider(fake_lightspeed, vault) for _ in range(5)]
    with ThreadPoolExecutor(max_workers=5) as pool:
        assert list(pool.map(lambda w: w.check(), workers)) == ["Corner Café"] * 5
    assert fake_lightspeed.refreshes == 1 and len(vault.stored) == 1


def test_without_the_lock_concurrent_refreshes_lose_the_rotated_token(fake_lightspeed):
    # Shows the fake rotates as Lightspeed does: the second refresh with the same token fails.
    first, second = (provider(fake_lightspeed, Vault(fake_lightspeed.credentials())) for _ in range(2))
    first.check()
    with pytest.raises(ProviderError, match="refresh token is invalid"):
        second.check()


def test_add_members_adds_our_tag_and_keeps_every_other_tag(fake_lightspeed):
    lightspeed = provider(fake_lightspeed)
    people = contacts(fake_lightspeed, 2, tags=["staff", "wholesale"])
    tag = lightspeed.ensure_list("Regulars")
    ids = lightspeed.add_members(tag, people)
    assert [fake_lightspeed.customers[ids[i]]["tags"] for i in (1, 2)] == [["staff", "wholesale", "Regulars"]] * 2
    lightspeed.remove_members(tag, [Contact(customer_id=1, email="c1@example.com", remote_id=ids[1])])
    assert fake_lightspeed.customers[ids[1]]["tags"] == ["staff", "wholesale"]
    assert fake_lightspeed.tagged("Regulars") == {"c2@example.com"}


def test_customers_are_found_by_email_then_by_their_remembered_id(fake_lightspeed):
    lightspeed = provider(fake_lightspeed)
    people = [*contacts(fake_lightspeed, 2), Contact(customer_id=9, email="not-in-the-pos@example.com")]
    ids = lightspeed.add_members("Regulars", people)
    assert set(ids) == {1, 2}  # the POS has no customer with the third email
    before = len(fake_lightspeed.calls)
    remembered = [Contact(customer_id=i, email=f"c{i}@example.com", remote_id=ids[i]) for i in (1, 2)]
    lightspeed.remove_members("Regulars", remembered)
    lookups = [c for c in fake_lightspeed.calls[before:] if c.method == "GET"]
    assert len(lookups) == 1  # one read for both, by id
    assert fake_lightspeed.tagged("Regulars") == set()


def test_a_customer_who_already_has_the_tag_is_not_written_again(fake_lightspeed):
    lightspeed = provider(fake_lightspeed)
    people = contacts(fake_lightspeed, 1, tags=["Regulars"])
    lightspeed.add_members("Regulars", people)
    assert fake_lightspeed.calls_to("PUT", "/Customer/") == []


def test_list_members_reads_every_page_and_a_page_of_one(fake_lightspeed):
    lightspeed = provider(fake_lightspeed)
    for i in range(250):
        fake_lightspeed.add_customer(f"c{i}@example.com", ["Regulars"])
    fake_lightspeed.add_customer("solo@example.com", ["Solo"])
    assert {m.email for m in lightspeed.list_members("Regulars")} == {f"c{i}@example.com" for i in range(250)}
    assert len(fake_lightspeed.calls_to("GET", "Customer.json")) == 3
    assert [m.email for m in lightspeed.list_members("Solo")] == ["solo@example.com"]


def test_rename_retags_every_customer_and_returns_the_new_tag(fake_lightspeed):
    lightspeed = provider(fake_lightspeed)
    ids = lightspeed.add_members("Regulars", contacts(fake_lightspeed, 3, tags=["staff"]))
    assert lightspeed.rename_list("Regulars", "Best regulars") == "Best regulars"
    assert [fake_lightspeed.customers[i]["tags"] for i in ids.values()] == [["staff", "Best regulars"]] * 3


def test_delete_takes_the_tag_off_everyone_and_leaves_other_tags(fake_lightspeed):
    lightspeed = provider(fake_lightspeed)
    ids = lightspeed.add_members("Regulars", contacts(fake_lightspeed, 3, tags=["staff"]))
    lightspeed.delete_list("Regulars")
    lightspeed.delete_list("Regulars")  # nothing left: not an error
    assert [fake_lightspeed.customers[i]["tags"] for i in ids.values()] == [["staff"]] * 3


def test_calls_wait_for_room_in_the_bucket_and_are_never_throttled():
    with FakeLightspeed(bucket_size=60, drip_rate=200) as fake:
        lightspeed = provider(fake)
        people = contacts(fake, 25)
        assert len(lightspeed.add_members("Regulars", people)) == 25  # 250 units of writes
        assert fake.throttled == 0 and len(fake.tagged("Regulars")) == 25


def test_the_pace_for_estimates_follows_the_drip_rate(fake_lightspeed):
    lightspeed = provider(fake_lightspeed)
    lightspeed.check()
    assert lightspeed.limits.contacts_per_second == fake_lightspeed.drip_rate / 10


def test_a_429_with_retry_after_is_waited_out(fake_lightspeed):
    lightspeed = provider(fake_lightspeed)
    people = contacts(fake_lightspeed, 1)
    fake_lightspeed.fail(429, path="/Customer/", retry_after=1)
    lightspeed.add_members("Regulars", people)
    assert fake_lightspeed.tagged("Regulars") == {"c1@example.com"}


def test_server_errors_and_timeouts_are_transient(fake_lightspeed):
    lightspeed = provider(fake_lightspeed, timeout=0.3)
    lightspeed.check()
    fake_lightspeed.fail(503, path="Customer")
    with pytest.raises(ProviderError) as error:
        lightspeed.add_members("Regulars", contacts(fake_lightspeed, 1))
    assert not error.value.permanent
    fake_lightspeed.stall(2)
    with pytest.raises(ProviderError) as error:
        lightspeed.check()
    assert not error.value.permanent


@pytest.mark.parametrize(
    "settings, problem",
    [({"account_id": "abc"}, "account_id"), ({"account_id": "1", "api_url": "nope"}, "api_url")],
)
def test_bad_settings_say_which_field_is_wrong(settings, problem):
    with pytest.raises(ValueError, match=problem):
        Lightspeed(settings=settings, credentials={"client_id": "a", "client_secret": "b", "refresh_token": "c"})


def test_more_than_a_batch_is_refused_before_any_call(fake_lightspeed):
    with pytest.raises(ValueError, match="At most 25"):
        provider(fake_lightspeed).add_members("Regulars", [Contact(customer_id=i) for i in range(26)])
    assert fake_lightspeed.calls == []
