"""SMS through Twilio's Messages API, against a fake Twilio that the official `twilio` package accepts."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from automations.actions.base import ActionError
from automations.models import Trigger
from automations.providers.twilio import TwilioAccount, send_sms
from customers.models import Customer
from tests.fakes.twilio import FakeTwilio

from .conftest import buy_tea, run_automations

SID, TOKEN, SENDER = "AC" + "0" * 31 + "1", "twilio-test-token", "+15005550006"


@pytest.fixture
def twilio(settings):
    with FakeTwilio(SID, TOKEN) as fake:
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = SID, TOKEN
        settings.TWILIO_FROM, settings.TWILIO_API_URL = SENDER, fake.url
        yield fake


def official_client(fake: FakeTwilio, token: str = TOKEN) -> Client:
    client = Client(SID, token)
    client.api.base_url = fake.url
    return client


def test_the_official_client_sends_through_the_fake_and_reads_its_answers(twilio):
    message = official_client(twilio).messages.create(to="+15558675309", from_=SENDER, body="Hello")
    assert message.sid.startswith("SM") and message.status == "queued" and message.body == "Hello"
    twilio.unsubscribed.add("+15558675310")
    with pytest.raises(TwilioRestException) as refused:
        official_client(twilio).messages.create(to="+15558675310", from_=SENDER, body="Hello")
    assert refused.value.code == 21610 and refused.value.status == 400
    with pytest.raises(TwilioRestException) as denied:
        official_client(twilio, token="wrong").messages.create(to="+15558675309", from_=SENDER, body="Hello")
    assert denied.value.code == 20003 and denied.value.status == 401


def test_our_client_sends_and_tells_permanent_from_transient_errors(twilio):
    account = TwilioAccount(SID, TOKEN, SENDER, twilio.url)
    assert send_sms(account, "+15558675309", "Hi").startswith("SM")
    assert twilio.messages[-1]["to"] == "+15558675309" and twilio.messages[-1]["body"] == "Hi"
    twilio.throttle = 1
    with pytest.raises(ActionError) as throttled:
        send_sms(account, "+15558675309", "Hi")
    assert not throttled.value.permanent and throttled.value.retry_after == 1
    twilio.unsubscribed.add("+15558675310")
    with pytest.raises(ActionError) as stopped:
        send_sms(account, "+15558675310", "Hi")
    assert stopped.value.permanent and stopped.value.code == "unsubscribed"
    assert "21610" in stopped.value.message
    with pytest.raises(ActionError) as bad_login:
        send_sms(TwilioAccount(SID, "wrong", SENDER, twilio.url), "+15558675309", "Hi")
    assert bad_login.value.permanent and "20003" in bad_login.value.message


@pytest.mark.django_db(transaction=True)
def test_a_customer_who_enters_gets_the_sms_and_a_stop_clears_the_consent(api, twilio, tea_group, ann):
    Trigger.objects.create(name="Tea text", group=tea_group, action="sms",
                           settings={"body": "Hi {{ customer.first_name }}, 5% off tea with TEA5"})  # fmt: skip
    cy = Customer.objects.create(external_id="cy", phone="+15558675310", sms_consent=True)
    nil = Customer.objects.create(external_id="nil", phone="0123", sms_consent=True)
    twilio.unsubscribed.add("+15558675310")  # Cy texted STOP to our number
    for person in ("ann", "cy", "nil"):
        buy_tea(api, person)
    run_automations()

    assert [(m["to"], m["body"]) for m in twilio.messages] == [("+15558675309", "Hi Ann, 5% off tea with TEA5")]
    details = {f["customer"]: (f["status"], f["detail"]) for f in api.get("/api/firings/").json()["results"]}
    assert details[ann.pk] == ("sent", f"SMS {twilio.messages[0]['sid']} to +15558675309")
    assert details[cy.pk][0] == "failed" and details[cy.pk][1].endswith("SMS consent cleared.")
    assert details[nil.pk] == ("skipped", "No valid phone number (“0123” is not in +15558675309 form)")
    assert not Customer.objects.get(pk=cy.pk).sms_consent
