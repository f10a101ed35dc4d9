"""API keys in the back office: never shown after creation, never readable by staff who are not superusers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_key(staff_user):
    return Token.objects.create(user=staff_user).key


@pytest.fixture
def view_everything(django_user_model):
    """A "view everything" role: every view permission there is, token views included."""
    user = django_user_model.objects.create_user("auditor", "auditor@example.com", "a-long-test-password",
                                                 is_staff=True)  # fmt: skip
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return user


def test_a_viewer_cannot_see_the_token_pages_or_anyone_s_key(client, view_everything, superuser_key, staff_user):
    client.force_login(view_everything)
    pages = ["/admin/", "/admin/config/apikey/", f"/admin/config/apikey/{staff_user.pk}/change/",
             "/admin/config/apikey/add/"]  # fmt: skip
    answers = {page: client.get(page) for page in pages}
    assert [answers[page].status_code for page in pages[1:]] == [403, 403, 403]
    for answer in answers.values():
        assert superuser_key.encode() not in answer.content
    assert b"/admin/config/" not in answers["/admin/"].content


def test_a_viewer_cannot_write_with_a_key_they_never_saw(client, view_everything, superuser_key):
    client.force_login(view_everything)
    listing = client.get("/admin/config/apikey/").content
    guessed = Token.generate_key()
    assert superuser_key.encode() not in listing
    answer = client.post("/api/groups/", {"name": "Mine", "kind": "manual"}, content_type="application/json",
                         HTTP_AUTHORIZATION=f"Token {guessed}")  # fmt: skip
    assert answer.status_code == 401


def test_superusers_see_a_key_once_when_it_is_created_and_never_again(client, staff_user, django_user_model):
    owner = django_user_model.objects.create_user("pos", "pos@example.com", "a-long-test-password")
    client.force_login(staff_user)
    created = client.post("/admin/config/apikey/add/", {"user": owner.pk}, follow=True)
    key = Token.objects.get(user=owner).key
    assert key.encode() in created.content
    for page in ["/admin/config/apikey/", f"/admin/config/apikey/{owner.pk}/change/"]:
        answer = client.get(page)
        assert answer.status_code == 200
        assert key.encode() not in answer.content
        assert key[:4].encode() in answer.content  # enough to tell keys apart
