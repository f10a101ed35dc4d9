"""Settings parsing: every reader accepts good values and names the variable when a value is bad."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    database_url,
    env_bool,
    env_broker,
    env_choice,
    env_database,
    env_int,
    env_list,
    env_str,
    env_time_zone,
)


def test_env_str_returns_the_stripped_value_or_the_default_when_unset_or_blank():
    assert env_str("NAME", environ={"NAME": "  value "}) == "value"
    assert env_str("NAME", "fallback", environ={}) == "fallback"
    assert env_str("NAME", "fallback", environ={"NAME": "   "}) == "fallback"
    assert env_str("NAME", environ={}) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("TRUE", True), ("yes", True), ("on", True), ("1", True),
     ("false", False), ("No", False), ("off", False), ("0", False), ("", False)],
)  # fmt: skip
def test_env_bool_reads_the_usual_spellings(raw, expected):
    assert env_bool("DEBUG", default=not expected, environ={"DEBUG": raw}) is expected


def test_env_bool_uses_the_default_when_unset():
    assert env_bool("DEBUG", True, environ={}) is True
    assert env_bool("DEBUG", False, environ={}) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "tru", "enabled"])
def test_env_bool_refuses_anything_else_naming_the_variable(raw):
    with pytest.raises(ImproperlyConfigured, match=rf"DEBUG='{raw}' is not a boolean"):
        env_bool("DEBUG", environ={"DEBUG": raw})


def test_env_int_reads_whole_numbers_and_defaults_when_unset():
    assert env_int("SECURE_HSTS_SECONDS", 5, environ={"SECURE_HSTS_SECONDS": " 3600 "}) == 3600
    assert env_int("SECURE_HSTS_SECONDS", 5, environ={}) == 5
    assert env_int("SECURE_HSTS_SECONDS", 5, environ={"SECURE_HSTS_SECONDS": ""}) == 5


@pytest.mark.parametrize("raw", ["ten", "1.5", "1e3"])
def test_env_int_refuses_what_is_not_a_whole_number(raw):
    with pytest.raises(ImproperlyConfigured, match="SECURE_HSTS_SECONDS=.* is not a whole number"):
        env_int("SECURE_HSTS_SECONDS", 0, environ={"SECURE_HSTS_SECONDS": raw})


def test_env_int_refuses_a_value_below_the_minimum():
    with pytest.raises(ImproperlyConfigured, match="SECURE_HSTS_SECONDS=-1 is below the minimum of 0"):
        env_int("SECURE_HSTS_SECONDS", 0, minimum=0, environ={"SECURE_HSTS_SECONDS": "-1"})


def test_env_list_splits_on_commas_and_drops_blanks():
    environ = {"ALLOWED_HOSTS": " groups.example.com, ,admin.example.com ,"}
    assert env_list("ALLOWED_HOSTS", environ=environ) == ["groups.example.com", "admin.example.com"]
    assert env_list("ALLOWED_HOSTS", ["localhost"], environ={}) == ["localhost"]
    assert env_list("ALLOWED_HOSTS", environ={"ALLOWED_HOSTS": ""}) == []


LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def test_env_choice_matches_ignoring_case_and_returns_the_canonical_spelling():
    assert env_choice("LOG_LEVEL", "INFO", LOG_LEVELS, environ={"LOG_LEVEL": "warning"}) == "WARNING"
    assert env_choice("LOG_LEVEL", "INFO", LOG_LEVELS, environ={}) == "INFO"


def test_env_choice_refuses_other_words_listing_the_choices():
    with pytest.raises(ImproperlyConfigured, match="LOG_LEVEL='loud' is not one of DEBUG, INFO, WARNING"):
        env_choice("LOG_LEVEL", "INFO", LOG_LEVELS, environ={"LOG_LEVEL": "loud"})


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"])
def test_env_time_zone_accepts_iana_names(zone):
    assert env_time_zone("TIME_ZONE", environ={"TIME_ZONE": zone}) == zone


def test_env_time_zone_defaults_to_utc():
    assert env_time_zone("TIME_ZONE", environ={}) == "UTC"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "CEST+2", "../etc/passwd", "Europe/"])
def test_env_time_zone_refuses_unknown_names(zone):
    with pytest.raises(ImproperlyConfigured, match="TIME_ZONE=.* is not an IANA time zone name"):
        env_time_zone("TIME_ZONE", environ={"TIME_ZONE": zone})


def test_env_database_parses_a_postgresql_url():
    url = "postgresql://app:s3cret@db.internal:6543/groups"
    config = env_database(environ={"DATABASE_URL": url})
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["USER"], config["PASSWORD"]) == ("groups", "app", "s3cret")
    assert (config["HOST"], int(config["PORT"])) == ("db.internal", 6543)


def test_env_database_is_none_when_unset_so_the_embedded_server_is_used():
    assert env_database(environ={}) is None


@pytest.mark.parametrize("url", ["sqlite:///db.sqlite3", "mysql://app@db/groups", "db.internal:5432/groups"])
def test_env_database_refuses_anything_but_postgresql(url):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL must be a PostgreSQL URL"):
        env_database(environ={"DATABASE_URL": url})


def test_env_database_refuses_a_url_without_a_database_name():
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL names no database"):
        env_database(environ={"DATABASE_URL": "postgresql://app@db.internal:5432"})


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://cache.internal:6380/1", "amqp://guest:guest@127.0.0.1:5672//"]
)
def test_env_broker_accepts_redis_and_rabbitmq(url):
    assert env_broker(environ={"CELERY_BROKER_URL": url}) == url


def test_env_broker_is_none_when_unset_so_the_filesystem_broker_is_used():
    assert env_broker(environ={}) is None


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "127.0.0.1:6379", "sqs://queue"])
def test_env_broker_refuses_other_schemes(url):
    with pytest.raises(ImproperlyConfigured, match="CELERY_BROKER_URL must be a Redis or RabbitMQ URL"):
        env_broker(environ={"CELERY_BROKER_URL": url})


def test_database_url_reaches_the_same_database_through_a_socket_directory():
    settings = {"USER": "postgres", "PASSWORD": "p@ss", "HOST": "/srv/pg sock", "PORT": "5433", "NAME": "test_groups"}
    config = env_database(environ={"DATABASE_URL": database_url(settings)})
    assert {k: str(config[k]) for k in settings} == settings
