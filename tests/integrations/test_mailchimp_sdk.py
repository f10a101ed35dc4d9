"""Mailchimp's own Python client (mailchimp-marketing) against the fake Mailchimp: the same paths,
verbs, authentication and bodies the vendor's client uses work on the fake, and our provider is
tested against that same fake."""

from __future__ import annotations

import mailchimp_marketing
import pytest
from mailchimp_marketing.api_client import ApiClientError

from tests.fakes.mailchimp import subscriber_hash


def sdk(fake, api_key=None):
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": api_key or fake.api_key, "server": "us6"})
    client.api_client.host = fake.api_url
    return client


def test_the_sdk_manages_a_tag_and_its_members_on_the_fake(fake_mailchimp):
    client, audience = sdk(fake_mailchimp), fake_mailchimp.audience_id
    assert client.ping.get() == {"health_status": "Everything's Chimpy!"}
    assert client.lists.get_list(audience)["name"] == "Newsletter"

    tag = client.lists.create_segment(audience, {"name": "Regulars", "static_segment": []})["id"]
    emails = [f"c{i}@example.com" for i in range(5)]
    for email in emails:
        member = {"email_address": email, "status_if_new": "transactional"}
        assert client.lists.set_list_member(audience, subscriber_hash(email), member)["id"] == subscriber_hash(email)
    result = client.lists.batch_segment_members({"members_to_add": emails}, audience, tag)
    assert result["total_added"] == 5 and result["errors"] == []

    client.lists.update_segment(audience, tag, {"name": "VIP"})
    assert client.lists.get_segment(audience, tag)["name"] == "VIP"
    page = client.lists.get_segment_members_list(audience, tag, count=3, include_transactional=True)
    assert page["total_items"] == 5 and len(page["members"]) == 3
    assert client.lists.get_segment_members_list(audience, tag)["total_items"] == 0  # transactional left out

    client.lists.batch_segment_members({"members_to_remove": emails[:2]}, audience, tag)
    assert fake_mailchimp.tagged(tag) == set(emails[2:])
    client.lists.delete_segment(audience, tag)
    assert fake_mailchimp.segments == {}


def test_the_sdk_sees_the_fakes_errors_as_mailchimps(fake_mailchimp):
    with pytest.raises(ApiClientError) as error:
        sdk(fake_mailchimp, api_key="wrong-us6").ping.get()
    assert error.value.status_code == 401
    client = sdk(fake_mailchimp)
    tag = client.lists.create_segment("a1b2c3d4e5", {"name": "Regulars", "static_segment": []})["id"]
    with pytest.raises(ApiClientError) as error:
        client.lists.batch_segment_members({"members_to_add": ["a@example.com"] * 501}, "a1b2c3d4e5", tag)
    assert error.value.status_code == 400 and "at most 500" in error.value.text
