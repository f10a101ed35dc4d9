"""The Mailchimp provider against the fake Mailchimp of tests/fakes/mailchimp.py."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from integrations.providers.base import Contact, ProviderError
from integrations.providers.mailchimp import Mailchimp, subscriber_hash


def provider(fake, **settings) -> Mailchimp:
    settings = {"audience_id": fake.audience_id, "base_url": fake.api_url, **settings}
    return Mailchimp(settings=settings, credentials={"api_key": fake.api_key})


def contacts(n: int, start: int = 1) -> list[Contact]:
    return [Contact(customer_id=i, email=f"c{i}@example.com", first_name=f"C{i}") for i in range(start, start + n)]


def test_check_names_the_account_and_the_audience(fake_mailchimp):
    assert provider(fake_mailchimp).check() == "Corner Café, audience Newsletter"


def test_bad_api_key_is_permanent(fake_mailchimp):
    bad = Mailchimp(settings={"audience_id": "x", "base_url": fake_mailchimp.api_url}, credentials={"api_key": "k-us6"})
    with pytest.raises(ProviderError, match="API Key Invalid") as error:
        bad.check()
    assert error.value.permanent and error.value.status == 401


def test_an_unknown_audience_is_permanent(fake_mailchimp):
    with pytest.raises(ProviderError) as error:
        provider(fake_mailchimp, audience_id="nosuch").check()
    assert error.value.permanent and error.value.status == 404


def test_the_api_address_follows_from_the_keys_data_center():
    mailchimp = Mailchimp(settings={"audience_id": "a1"}, credentials={"api_key": "abc-us21"})
    assert str(mailchimp.client.base_url) == "https://us21.api.mailchimp.com/3.0/"


@pytest.mark.parametrize(
    "settings, credentials, problem",
    [
        ({}, {"api_key": "abc-us6"}, "audience_id"),
        ({"audience_id": "a", "new_member_status": "cleaned"}, {"api_key": "abc-us6"}, "new_member_status"),
        ({"audience_id": "a"}, {"api_key": "abc"}, "data center"),
    ],
)
def test_bad_settings_or_credentials_say_which_field_is_wrong(settings, credentials, problem):
    with pytest.raises(ValueError, match=problem):
        Mailchimp(settings=settings, credentials=credentials)


def test_ensure_list_makes_one_tag_and_finds_it_by_id_afterwards(fake_mailchimp):
    mailchimp = provider(fake_mailchimp)
    tag = mailchimp.ensure_list("Regulars")
    assert mailchimp.ensure_list("Regulars", tag) == tag
    assert [s["name"] for s in fake_mailchimp.segments.values()] == ["Regulars"]
    del fake_mailchimp.segments[int(tag)]
    assert mailchimp.ensure_list("Regulars", tag) != tag


def test_ensure_list_takes_over_a_tag_of_the_same_name(fake_mailchimp):
    mailchimp = provider(fake_mailchimp)
    other = mailchimp.ensure_list("VIP")
    assert provider(fake_mailchimp).ensure_list("VIP") == other


def test_add_members_upserts_by_subscriber_hash_and_tags_them(fake_mailchimp):
    fake_mailchimp.add_member("c2@example.com", status="unsubscribed")
    mailchimp = provider(fake_mailchimp)
    tag = mailchimp.ensure_list("Regulars")

    ids = mailchimp.add_members(tag, contacts(3))

    assert ids == {i: subscriber_hash(f"c{i}@example.com") for i in (1, 2, 3)}
    assert fake_mailchimp.tagged(tag) == {"c1@example.com", "c2@example.com", "c3@example.com"}
    assert fake_mailchimp.members[ids[1]]["status"] == "transactional"
    assert fake_mailchimp.members[ids[1]]["merge_fields"] == {"FNAME": "C1"}
    assert fake_mailchimp.members[ids[2]]["status"] == "unsubscribed"  # an existing member keeps theirs


def test_new_members_get_the_status_of_the_settings(fake_mailchimp):
    mailchimp = provider(fake_mailchimp, new_member_status="subscribed")
    ids = mailchimp.add_members(mailchimp.ensure_list("Regulars"), contacts(1))
    assert fake_mailchimp.members[ids[1]]["status"] == "subscribed"


def test_emails_mailchimp_refuses_are_left_out_and_the_rest_go_through(fake_mailchimp):
    mailchimp = provider(fake_mailchimp)
    tag = mailchimp.ensure_list("Regulars")
    batch = [*contacts(2), Contact(customer_id=9, email="someone@fake.invalid"), Contact(customer_id=10)]
    assert set(mailchimp.add_members(tag, batch)) == {1, 2}
    assert fake_mailchimp.tagged(tag) == {"c1@example.com", "c2@example.com"}


def test_remove_members_untags_only_them_and_keeps_them_in_the_audience(fake_mailchimp):
    mailchimp = provider(fake_mailchimp)
    tag = mailchimp.ensure_list("Regulars")
    ids = mailchimp.add_members(tag, contacts(3))
    mailchimp.remove_members(tag, [Contact(customer_id=i, email=f"c{i}@example.com", remote_id=ids[i]) for i in (1, 3)])
    assert fake_mailchimp.tagged(tag) == {"c2@example.com"}
    assert len(fake_mailchimp.members) == 3


def test_a_customer_whose_email_changed_is_untagged_under_the_old_one(fake_mailchimp):
    mailchimp = provider(fake_mailchimp)
    tag = mailchimp.ensure_list("Regulars")
    ids = mailchimp.add_members(tag, contacts(1))
    mailchimp.remove_members(tag, [Contact(customer_id=1, email="moved@example.com", remote_id=ids[1])])
    assert fake_mailchimp.tagged(tag) == set()


def test_rename_sends_only_the_name_and_keeps_the_members(fake_mailchimp):
    mailchimp = provider(fake_mailchimp)
    tag = mailchimp.ensure_list("Regulars")
    mailchimp.add_members(tag, contacts(2))
    mailchimp.rename_list(tag, "Best regulars")
    [patch] = fake_mailchimp.calls_to("PATCH", "/segments/")
    assert patch.body == {"name": "Best regulars"}
    assert fake_mailchimp.segments[int(tag)]["name"] == "Best regulars"
    assert len(fake_mailchimp.tagged(tag)) == 2


def test_the_fake_empties_a_tag_on_an_empty_member_array_as_mailchimp_does(fake_mailchimp):
    mailchimp = provider(fake_mailchimp)
    tag = mailchimp.ensure_list("Regulars")
    mailchimp.add_members(tag, contacts(2))
    mailchimp.client.patch(f"/lists/{fake_mailchimp.audience_id}/segments/{tag}", json={"static_segment": []})
    assert fake_mailchimp.tagged(tag) == set()


def test_delete_removes_the_tag_and_a_gone_tag_is_fine(fake_mailchimp):
    mailchimp = provider(fake_mailchimp)
    tag = mailchimp.ensure_list("Regulars")
    mailchimp.delete_list(tag)
    mailchimp.delete_list(tag)
    assert fake_mailchimp.segments == {}


def test_500_per_array_and_501_refused_before_any_call(fake_mailchimp):
    mailchimp = provider(fake_mailchimp)
    tag = mailchimp.ensure_list("Regulars")
    assert len(mailchimp.add_members(tag, contacts(500))) == 500
    [batch] = fake_mailchimp.calls_to("POST", f"/segments/{tag}$")
    assert len(batch.body["members_to_add"]) == 500
    calls_before = len(fake_mailchimp.calls)
    with pytest.raises(ValueError, match="At most 500"):
        mailchimp.add_members(tag, contacts(501))
    assert len(fake_mailchimp.calls) == calls_before


def test_upserts_run_in_parallel_but_never_more_than_10_at_once(fake_mailchimp):
    fake_mailchimp.latency = 0.02
    mailchimp = provider(fake_mailchimp)
    ids = mailchimp.add_members(mailchimp.ensure_list("Regulars"), contacts(100))
    assert len(ids) == 100
    assert 1 < fake_mailchimp.max_in_flight <= 10


def test_the_fake_refuses_an_eleventh_call_at_once(fake_mailchimp):
    fake_mailchimp.latency = 1.0
    client = httpx.Client(auth=("u", fake_mailchimp.api_key), limits=httpx.Limits(max_connections=11))
    with client, ThreadPoolExecutor(max_workers=11) as pool:
        statuses = list(pool.map(lambda _: client.get(f"{fake_mailchimp.api_url}/ping").status_code, range(11)))
    assert sorted(statuses) == [200] * 10 + [429]


def test_list_members_pages_and_includes_every_status(fake_mailchimp):
    mailchimp = provider(fake_mailchimp)
    tag = mailchimp.ensure_list("Regulars")
    emails = {f"c{i}@example.com" for i in range(1500)}
    for i, email in enumerate(sorted(emails)):
        fake_mailchimp.add_member(email, status=("subscribed", "transactional", "unsubscribed", "cleaned")[i % 4])
    fake_mailchimp.segments[int(tag)]["members"] = set(fake_mailchimp.members)
    members = list(mailchimp.list_members(tag))
    assert {m.email for m in members} == emails
    assert {m.remote_id for m in members} == {subscriber_hash(e) for e in emails}
    assert len(fake_mailchimp.calls_to("GET", f"/segments/{tag}/members")) == 2


def test_a_429_is_transient(fake_mailchimp):
    fake_mailchimp.fail(429, path="/segments")
    with pytest.raises(ProviderError) as error:
        provider(fake_mailchimp).ensure_list("Regulars")
    assert not error.value.permanent and error.value.status == 429


def test_server_errors_and_timeouts_are_transient(fake_mailchimp):
    mailchimp = provider(fake_mailchimp, timeout=0.3)
    tag = mailchimp.ensure_list("Regulars")
    fake_mailchimp.fail(500, path="/members/")
    with pytest.raises(ProviderError) as error:
        mailchimp.add_members(tag, contacts(1))
    assert not error.value.permanent
    fake_mailchimp.stall(2, path=f"/segments/{tag}$")
    with pytest.raises(ProviderError) as error:
        mailchimp.add_members(tag, contacts(1))
    assert not error.value.permanent
