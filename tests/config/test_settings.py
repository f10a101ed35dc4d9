"""The settings module as a whole, imported in a fresh process with a given environment."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def run_in_fresh_process(args: list[str], tmp_path: Path, **environ: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"}}
    env.update(
        {
            # Nothing here should touch a server or the project's var/ directory.
            "DATABASE_URL": "postgresql://app:secret@db.invalid:5432/groups",
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
            "VAR_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
    )
    env.update(environ)
    return subprocess.run([sys.executable, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)


def production_environment() -> dict[str, str]:
    return {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "groups.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://groups.example.com",
    }


def test_settings_refuse_to_load_without_secret_key_when_debug_is_off(tmp_path):
    result = run_in_fresh_process(["-c", "import config.settings"], tmp_path, DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_settings_load_without_secret_key_when_debug_is_on(tmp_path):
    result = run_in_fresh_process(["-c", "import config.settings"], tmp_path, DEBUG="true")
    assert result.returncode == 0, result.stderr


def test_a_bad_value_stops_startup_with_a_message_naming_the_variable(tmp_path):
    result = run_in_fresh_process(
        ["-c", "import config.settings"], tmp_path, **production_environment(), TIME_ZONE="Europe/Atlantis"
    )
    assert result.returncode != 0
    assert "TIME_ZONE='Europe/Atlantis' is not an IANA time zone name" in result.stderr


def test_deploy_check_reports_no_issues_with_production_settings(tmp_path):
    result = run_in_fresh_process(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], tmp_path, **production_environment()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_every_model_change_has_its_migration_with_nothing_configured(tmp_path):
    result = run_in_fresh_process(["manage.py", "makemigrations", "--check", "--dry-run"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout
