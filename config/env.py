"""Typed readers for environment variables, each failing with a message naming the variable."""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from .timezones import is_time_zone_name

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str, environ) -> str | None:
    environ = os.environ if environ is None else environ
    value = environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str | None = None, *, environ=None) -> str | None:
    value = _raw(name, environ)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool = False, *, environ=None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use one of true/false, yes/no, on/off, 1/0.")


def env_int(name: str, default: int, *, minimum: int | None = None, environ=None) -> int:
    value = _raw(name, environ)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}.")
    return number


def env_list(name: str, default: list[str] | None = None, *, environ=None) -> list[str]:
    value = _raw(name, environ)
    if value in (None, ""):
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: list[str], *, environ=None) -> str:
    """One of a fixed set of words, matched ignoring case and returned as spelled in `choices`."""
    value = env_str(name, default, environ=environ)
    by_lower = {choice.lower(): choice for choice in choices}
    if value.lower() not in by_lower:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}.")
    return by_lower[value.lower()]


def env_time_zone(name: str, default: str = "UTC", *, environ=None) -> str:
    value = env_str(name, default, environ=environ)
    if not is_time_zone_name(value):
        raise ImproperlyConfigured(f"{name}={value!r} is not an IANA time zone name such as 'Europe/Paris' or 'UTC'.")
    return value


def env_database(name: str = "DATABASE_URL", *, environ=None) -> dict | None:
    """Parse a PostgreSQL URL into Django's DATABASES entry, or None when it is not set."""
    import dj_database_url

    value = env_str(name, environ=environ)
    if value is None:
        return None
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"{name} must be a PostgreSQL URL such as postgresql://user:password@host:5432/db; "
            f"got scheme {scheme or '(none)'!r}. Only PostgreSQL is supported."
        )
    try:
        config = dj_database_url.parse(value, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} could not be parsed: {exc}") from None
    if not config.get("NAME"):
        raise ImproperlyConfigured(f"{name} names no database; add one after the host, e.g. /groups.")
    return config


def database_url(settings: dict) -> str:
    """The DATABASE_URL that reaches the database of a DATABASES entry, for processes started from this
    one (workers in tests and benchmarks). A socket directory as host is percent-encoded, as
    `env_database` reads it back."""
    from urllib.parse import quote

    user = quote(settings.get("USER") or "", safe="")
    password = settings.get("PASSWORD") or ""
    credentials = f"{user}:{quote(password, safe='')}" if password else user
    host = quote(settings.get("HOST") or "127.0.0.1", safe="")
    return f"postgresql://{credentials}@{host}:{settings.get('PORT') or 5432}/{quote(settings['NAME'], safe='')}"


def env_broker(name: str = "CELERY_BROKER_URL", *, environ=None) -> str | None:
    value = env_str(name, environ=environ)
    if value is None:
        return None
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in {"redis", "rediss", "amqp", "amqps", "pyamqp", "filesystem", "memory"}:
        raise ImproperlyConfigured(
            f"{name} must be a Redis or RabbitMQ URL such as redis://127.0.0.1:6379/0 or "
            f"amqp://guest:guest@127.0.0.1:5672//; got {value!r}."
        )
    return value
