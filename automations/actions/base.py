"""The small interface every action implements, the one error type, and the registry."""

from __future__ import annotations

from dataclasses import dataclass, field

from django import forms
from django.template import Context, Engine, TemplateSyntaxError

from customers.models import Customer


class ActionError(Exception):
    """An action failed. `permanent` errors are recorded as failed at once; transient ones are retried
    with backoff (no sooner than `retry_after` seconds when the provider said so). `code` names a
    provider condition the service acts on (e.g. "unsubscribed")."""

    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None, code: str = ""):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.code = code


@dataclass
class Delivery:
    """One thing to do for one customer: who, in which group, the key that makes it happen once, and
    the template context (customer, group, accounts, unsubscribe_url)."""

    customer: Customer
    key: str
    context: dict = field(default_factory=dict)
    firing_id: int | None = None


# Plain-text messages: nothing is HTML-escaped. Built once; Django's template language, no loaders.
_engine = Engine(autoescape=False)
# Checking only: a debug engine records where in the template a syntax error is, so staff are told the line.
_checking_engine = Engine(autoescape=False, debug=True)


def render(text: str, context: dict, *, what: str) -> str:
    """A template string rendered with the delivery's context; a broken template is a permanent error."""
    try:
        return _engine.from_string(text).render(Context(context)).strip()
    except TemplateSyntaxError as exc:
        raise ActionError(f"The {what} template is not valid: {exc}", permanent=True) from None


def check_template(text: str, *, what: str) -> str:
    """The error in a template string, with its line, or ''."""
    try:
        _checking_engine.from_string(text)
    except TemplateSyntaxError as exc:
        message = str(exc)
        line = getattr(exc, "template_debug", {}).get("line")
        if line and f"line {line}" not in message:
            message += f" (line {line})"
        return f"The {what} template is not valid: {message}"
    return ""


TEMPLATE_HELP = (
    "A Django template: {{ customer.first_name }}, {{ customer.email }}, {{ group.name }}, "
    "{% for account in accounts %}{{ account.name }}{% endfor %}."
)


def template_field(label: str, *, lines: int = 1, required: bool = True) -> forms.CharField:
    """A setting that is a template: one line (a subject, a title) or a text box (a body)."""
    widget = forms.Textarea(attrs={"rows": lines, "cols": 80}) if lines > 1 else forms.TextInput(attrs={"size": 80})
    return forms.CharField(label=label, required=required, widget=widget, help_text=TEMPLATE_HELP, strip=False)


class Action:
    """One action with its settings (the trigger's or the send's `settings`).

    `channel` is "email" or "sms" for messages to the customer: those need the customer's consent
    for that channel, carry an unsubscribe link, and wait for the end of quiet hours.
    """

    kind = ""
    label = ""
    channel = ""
    required: tuple[str, ...] = ()  # settings that must be present and non-empty
    # The settings as form fields, in order, for the back office (forms.py); the names are the settings'.
    settings_fields: dict[str, forms.Field] = {}

    def __init__(self, settings: dict):
        self.settings = settings or {}

    def settings_errors(self) -> dict[str, str]:
        """Problems with the settings, by setting name (shown on the form and in API 400s)."""
        errors = {name: "This setting is required." for name in self.required if not self.settings.get(name)}
        for name in self.template_settings:
            if self.settings.get(name) and name not in errors:
                problem = check_template(str(self.settings[name]), what=name)
                if problem:
                    errors[name] = problem
        return errors

    template_settings: tuple[str, ...] = ()

    @classmethod
    def settings_errors_for(cls, settings: dict) -> dict[str, str]:
        if not isinstance(settings, dict):
            return {"settings": "A JSON object of the action's settings."}
        return cls(settings).settings_errors()

    def skip_reason(self, customer: Customer) -> str:
        """Why this customer cannot receive it (no consent, no address), or ''."""
        return ""

    @staticmethod
    def reachable(customers):
        """The customers of a queryset who can receive it: `skip_reason` as a set-based filter."""
        return customers

    def perform(self, delivery: Delivery) -> str:
        """Do it once for this delivery; returns what was done, for the record."""
        raise NotImplementedError


_registry: dict[str, type[Action]] = {}


def register(cls: type[Action]) -> type[Action]:
    _registry[cls.kind] = cls
    return cls


def action_class(kind: str) -> type[Action]:
    try:
        return _registry[kind]
    except KeyError:
        raise ValueError(f"Unknown action {kind!r}; known: {', '.join(sorted(_registry))}.") from None
