"""Klaviyo's own Python SDK (klaviyo-api) against the fake Klaviyo: the SDK parses every answer into
its strict response models, so this shows the fake speaks Klaviyo's protocol, and our provider is
tested against the same fake."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from klaviyo_api import KlaviyoAPI
from openapi_client.exceptions import ApiException


@pytest.fixture
def sdk(fake_klaviyo):
    return KlaviyoAPI(fake_klaviyo.api_key, test_host=fake_klaviyo.url, max_retries=0)


def test_the_sdk_manages_a_list_and_its_members_on_the_fake(sdk, fake_klaviyo):
    assert sdk.Accounts.get_accounts().data[0].attributes.contact_information.organization_name == "Corner Café"

    list_id = sdk.Lists.create_list({"data": {"type": "list", "attributes": {"name": "Regulars"}}}).data.id
    sdk.Lists.update_list(list_id, {"data": {"type": "list", "id": list_id, "attributes": {"name": "VIP"}}})
    assert sdk.Lists.get_list(list_id).data.attributes.name == "VIP"

    profiles = [{"type": "profile", "attributes": {"email": f"c{i}@example.com"}} for i in range(30)]
    job = {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": profiles}}}}
    job_id = sdk.Profiles.bulk_import_profiles(job).data.id
    while sdk.Profiles.get_bulk_import_profiles_job(job_id).data.attributes.status != "complete":
        pass
    imported = sdk.Profiles.get_profiles_for_bulk_import_profiles_job(job_id, page_size=100).data
    assert len(imported) == 30

    members = {"data": [{"type": "profile", "id": p.id} for p in imported]}
    sdk.Lists.add_profiles_to_list(list_id, members)
    first = sdk.Lists.get_profiles_for_list(list_id, page_size=20)
    cursor = parse_qs(urlsplit(first.links.next).query)["page[cursor]"][0]
    second = sdk.Lists.get_profiles_for_list(list_id, page_size=20, page_cursor=cursor)
    assert second.links.next is None
    assert {p.attributes.email for p in first.data + second.data} == {f"c{i}@example.com" for i in range(30)}

    sdk.Lists.remove_profiles_from_list(list_id, {"data": [{"type": "profile", "id": imported[0].id}]})
    assert len(fake_klaviyo.members(list_id)) == 29
    sdk.Lists.delete_list(list_id)
    assert list_id not in fake_klaviyo.lists


def test_the_sdk_sees_the_fakes_errors_as_klaviyos(fake_klaviyo):
    bad = KlaviyoAPI("pk_wrong", test_host=fake_klaviyo.url, max_retries=0)
    with pytest.raises(ApiException) as error:
        bad.Accounts.get_accounts()
    assert error.value.status == 401


def test_the_sdk_retries_a_429_from_the_fake(fake_klaviyo):
    sdk = KlaviyoAPI(fake_klaviyo.api_key, test_host=fake_klaviyo.url, max_retries=2, max_delay=1)
    fake_klaviyo.fail(429, retry_after=0)
    assert sdk.Accounts.get_accounts().data[0].id == "AbC123"
    assert len(fake_klaviyo.calls_to("GET", "/api/accounts")) == 2
