"""What every sync provider offers, and the one error type they raise.

A provider speaks one app's HTTP API (with httpx) and nothing else: it never touches the database.
Services in `integrations` load the rows, call the provider, and write results back (remote ids,
positions, last error, rotated credentials through `on_credentials_changed`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import ClassVar

from django import forms

from .pace import Pace


class ProviderError(Exception):
    """A call to the app failed.

    `permanent` errors (bad credentials, a refused request) stop the sync and are shown to staff
    with the app's own message; transient ones (timeouts, 429, 5xx) are retried with backoff,
    waiting at least `retry_after` seconds when the app said so.
    """

    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.status = status


@dataclass(frozen=True)
class Contact:
    """A customer as the apps see them."""

    customer_id: int
    email: str = ""
    phone: str = ""
    first_name: str = ""
    last_name: str = ""
    external_id: str | None = None
    remote_id: str = ""  # the app's own id for this person, when a previous call returned one


@dataclass(frozen=True)
class RemoteMember:
    """A member of the remote list or tag, as the app reports it."""

    remote_id: str
    email: str = ""
    external_id: str | None = None


@dataclass(frozen=True)
class Limits:
    """What the app allows; the services pace and batch calls by these."""

    batch_size: int  # contacts per add or remove call
    max_concurrency: int = 1  # calls in flight at once per connection
    # Calls per second to each endpoint, sustained, and how many may go at once, when the app
    # publishes its limits: the provider's calls wait for their place (`Provider.pace`).
    requests_per_second: float | None = None
    burst: int = 1
    contacts_per_second: float | None = None  # sustained pace of a long sync, for its estimate


def cleaned(fields: dict[str, forms.Field], data: dict, what: str) -> dict:
    """`data` checked against form fields (`settings_fields` or `credential_fields`), a missing value
    taking its field's initial one; ValueError names each wrong or unknown key and what is wrong."""
    data = data or {}
    problems = [f"{key}: unknown field" for key in data if key not in fields]
    values = {}
    for name, form_field in fields.items():
        try:
            values[name] = form_field.clean(data.get(name, form_field.initial))
        except forms.ValidationError as error:
            problems.append(f"{name}: {' '.join(error.messages)}")
    if problems:
        raise ValueError(f"{what}: {'; '.join(problems)}")
    return values


@dataclass
class Provider:
    """One connection's view of its app.

    `settings` are the connection's plain settings (validated by the provider's own schema),
    `credentials` its decrypted secrets. A provider that rotates credentials (OAuth refresh tokens)
    calls `on_credentials_changed` with the new ones before using them, and the service stores them.
    It refreshes inside `credentials_lock` (given by the service: entering it holds the connection's
    credentials exclusively and yields the freshest ones), so two workers never refresh at once and
    a rotated refresh token is never lost.
    """

    kind = ""  # registry key, e.g. "klaviyo"
    label = ""  # as staff see it in the connection picker
    target = "list"  # "list" or "tag": what a synced group becomes in the app
    limits = Limits(batch_size=100)
    # What staff fill in for a connection, as form fields: the plain settings (the schema the
    # service validates them by) and the secrets (stored encrypted, never shown back).
    settings_fields: ClassVar[dict[str, forms.Field]] = {}
    credential_fields: ClassVar[dict[str, forms.Field]] = {}
    # A contact with none of these Contact fields filled cannot be sent; the service records it as
    # skipped with the reason instead of sending it.
    identified_by: ClassVar[tuple[str, ...]] = ()

    settings: dict = field(default_factory=dict)
    credentials: dict = field(default_factory=dict)
    on_credentials_changed: Callable[[dict], None] | None = None
    credentials_lock: Callable[[], AbstractContextManager[dict]] | None = None
    # Set by the service before each add or remove call: the same text when that exact batch is
    # sent again (after a crash or a retry). Apps that take an idempotency key get this one.
    delivery_key: str = ""
    # The paces of this connection's endpoints, by endpoint; the service hands every provider of one
    # connection the same ones, so one drain's calls count against the next.
    paces: dict[str, Pace] = field(default_factory=dict)

    def __post_init__(self):
        """Where a provider checks its settings and credentials (with `cleaned`) and opens its client."""

    def pace(self, endpoint: str) -> Pace | None:
        """Where calls to `endpoint` wait for their place; None when the app publishes no rate."""
        if not self.limits.requests_per_second:
            return None
        if endpoint not in self.paces:
            self.paces[endpoint] = Pace(self.limits.requests_per_second, self.limits.burst)
        return self.paces[endpoint]

    def check(self) -> str:
        """Check the credentials; returns a short description of the account (for "Test connection")."""
        raise NotImplementedError

    def ensure_list(self, name: str, remote_id: str = "") -> str:
        """The id of the list or tag for a group: the existing one when `remote_id` still exists,
        else a new one named `name`."""
        raise NotImplementedError

    def rename_list(self, remote_id: str, name: str) -> str | None:
        """Rename the list or tag. Returns its new remote id when the app knows it by its name (a POS
        tag is its text), which the service then keeps; None when the id stays the same."""
        raise NotImplementedError

    def delete_list(self, remote_id: str) -> None:
        """Remove the list or tag; one already gone is not an error."""
        raise NotImplementedError

    def add_members(self, remote_id: str, contacts: Iterable[Contact]) -> dict[int, str]:
        """Add at most `limits.batch_size` contacts (creating or updating them in the app as needed);
        returns the app's id of each customer, by customer id, for later removals. A contact the app
        refused or could not match (an invalid email, no such customer in the POS) is missing from
        the result: it was not added."""
        raise NotImplementedError

    def remove_members(self, remote_id: str, contacts: Iterable[Contact]) -> None:
        """Remove at most `limits.batch_size` contacts from the list or tag, and nothing else about them."""
        raise NotImplementedError

    def list_members(self, remote_id: str) -> Iterator[RemoteMember]:
        """Every member of the remote list or tag, page by page (for reconcile)."""
        raise NotImplementedError


_registry: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> type[Provider]:
    """Class decorator: make a provider available under its `kind`."""
    _registry[cls.kind] = cls
    return cls


def provider_class(kind: str) -> type[Provider]:
    try:
        return _registry[kind]
    except KeyError:
        raise ValueError(f"Unknown app {kind!r}; known: {', '.join(sorted(_registry))}.") from None


def kinds() -> list[type[Provider]]:
    return [_registry[k] for k in sorted(_registry)]
