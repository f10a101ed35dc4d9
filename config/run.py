"""`make run`: prepare the database, then run web, worker and beat together until Ctrl-C."""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
ADMIN_USERNAME = "admin"
SHUTDOWN_GRACE_SECONDS = 30


def _stop_requested(signum, frame):
    # Before the process manager takes over, SIGTERM should unwind like Ctrl-C so that the
    # `finally` below still stops the embedded PostgreSQL.
    raise KeyboardInterrupt


def boxed(lines: list[str]) -> str:
    width = max(len(line) for line in lines)
    edge = "+" + "-" * (width + 2) + "+"
    return "\n".join([edge, *(f"| {line.ljust(width)} |" for line in lines), edge])


def receiver_port(port: int) -> int:
    """The demo webhook receiver's port: DEMO_RECEIVER_PORT, else the one after the web port."""
    value = os.environ.get("DEMO_RECEIVER_PORT", "").strip() or str(port + 1)
    if not value.isdigit():
        sys.exit(f"DEMO_RECEIVER_PORT={value!r} is not a port number.")
    return int(value)


def prepare_database(port: int) -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1)
    call_command("setup_roles")
    call_command("seed_demo", if_empty=True)
    call_command("seed_demo_sync", port=receiver_port(port))


def manage_py() -> str:
    """How to call manage.py with this interpreter, as the person would type it from the project."""
    python = Path(sys.executable)
    return f"{python.relative_to(BASE_DIR) if python.is_relative_to(BASE_DIR) else python} manage.py"


def ensure_admin_user() -> list[str]:
    """Create the first superuser; its password is shown this once and stored only as a hash."""
    from django.contrib.auth import get_user_model

    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists():
        return [
            "Sign in with your administrator account.",
            f"Forgot the password? {manage_py()} changepassword <username>",
        ]
    if users.objects.filter(username=ADMIN_USERNAME).exists():
        return [f"A user named {ADMIN_USERNAME!r} exists but is not a superuser: {manage_py()} createsuperuser"]
    password = secrets.token_urlsafe(12)
    users.objects.create_superuser(ADMIN_USERNAME, "", password)
    return [
        "An administrator was created. This password is shown only once:",
        "",
        f"    username: {ADMIN_USERNAME}",
        f"    password: {password}",
        "",
    ]


def processes(port: int) -> dict[str, str]:
    python = shlex.quote(sys.executable)
    # `exec` makes each program the process honcho started, so the signal below reaches it directly.
    # Beat keeps its schedule in the database (django-celery-beat), so it needs no schedule file;
    # an empty --pidfile avoids a stale pid file blocking the next start after a hard kill.
    return {
        "web": f"exec {python} manage.py runserver 127.0.0.1:{port}",
        "worker": f"exec {python} -m celery -A config worker --concurrency 2 --loglevel INFO",
        "beat": f"exec {python} -m celery -A config beat --loglevel INFO --pidfile= "
        "--scheduler django_celery_beat.schedulers:DatabaseScheduler",
        # The demo's webhook connection delivers here; Received webhooks in the back office shows what came.
        "receiver": f"exec {python} manage.py webhook_receiver --port {receiver_port(port)}",
    }


class MainProcessSignals:
    """How honcho signals its processes: SIGTERM to the program itself, SIGKILL to its whole group.

    honcho's default sends SIGTERM to each process group, which also reaches the Celery worker's pool
    children; the worker then waits on its dead children and never finishes its warm shutdown. Sent to
    the worker alone, SIGTERM lets it stop its pool itself. runserver's reloader stops its child too.
    """

    def terminate(self, pid: int) -> None:
        self._send(os.kill, pid, signal.SIGTERM)

    def kill(self, pid: int) -> None:
        self._send(os.killpg, pid, signal.SIGKILL)

    @staticmethod
    def _send(send, pid: int, signum: int) -> None:
        try:
            send(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass  # already gone


def run_together(port: int) -> int:
    """Run web, worker and beat; when one stops or Ctrl-C/SIGTERM arrives, stop them all."""
    from honcho import manager as honcho

    # A Celery warm shutdown takes several seconds (longer on the filesystem broker); honcho's
    # default of 5 s before SIGKILL would cut it short.
    honcho.KILL_WAIT = SHUTDOWN_GRACE_SECONDS
    manager = honcho.Manager()
    manager._procmgr = MainProcessSignals()  # honcho 2.0 has no public hook for this (pinned)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name, command in processes(port).items():
        manager.add_process(name, command, env=env, cwd=str(BASE_DIR))
    manager.loop()
    killed = [name for name, process in manager._processes.items() if process.get("returncode") == -signal.SIGKILL]
    if killed:
        print(f"Had to kill {', '.join(killed)} after {SHUTDOWN_GRACE_SECONDS} s.", file=sys.stderr)
        return 1
    # honcho reports 130/143 when it stopped everything because we were asked to (Ctrl-C, SIGTERM).
    return 0 if manager.returncode in (0, 130, 143) else (manager.returncode or 1)


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_requested)
    os.chdir(BASE_DIR)
    sys.path.insert(0, str(BASE_DIR))
    # The demo is meant for a laptop: DEBUG on unless the environment says otherwise.
    os.environ.setdefault("DEBUG", "true")
    # Emails the demo sends are printed by the worker; the Firings page lists each with its subject.
    os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    embedded = not os.environ.get("DATABASE_URL", "").strip()
    port = os.environ.get("PORT", "").strip() or "8000"
    if not port.isdigit():
        sys.exit(f"PORT={port!r} is not a port number.")

    try:
        # Importing settings starts the embedded PostgreSQL when DATABASE_URL is unset.
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        prepare_database(int(port))
        if not settings.DEBUG:
            call_command("collectstatic", interactive=False, verbosity=0)
        notes = ensure_admin_user()
        print(boxed([*notes, f"Open the back office at http://127.0.0.1:{port}/admin/", "Stop with Ctrl-C."]))
        sys.stdout.flush()
        status = run_together(int(port))
    except ImproperlyConfigured as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt:
        status = 130
    finally:
        if embedded:
            stop_embedded_postgres()
    print("Everything stopped." if status == 0 else f"Stopped with status {status}.")
    return status


def stop_embedded_postgres() -> None:
    from config.embedded import stop
    from config.env import env_str

    # Read VAR_DIR as settings do, without loading them: they may be what failed.
    var_dir = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
    if stop(var_dir):
        print("Embedded PostgreSQL stopped.")


if __name__ == "__main__":
    sys.exit(main())
