"""Automations benchmark: a one-off email to a 100,000-member group through a local SMTP server
(messages per second and memory), and the firings of 10,000 customers entering a group in one refresh.

Run with `make bench-automations` (or `python -m bench.automations --members 100000 --entries 10000`),
holding the benchmark lock. It uses its own database, `<name>_bench_automations`, and an SMTP server
that accepts and drops every message (aiosmtpd's Sink, in its own process). It prints a table and
writes JSON to bench/results/automations.json. It measures; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.engine import _setup
from bench.io import _peak_rss_mb, _reset_peak_rss

RESULTS = Path(__file__).resolve().parent / "results"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _smtp_sink() -> tuple[subprocess.Popen, int]:
    port = _free_port()
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"]
    sink = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return sink, port
        except OSError:
            time.sleep(0.1)
    sink.kill()
    raise RuntimeError("the SMTP sink did not start")


def _customers(n: int, status: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        # Setup, not measured: customers with email consent, written in one statement.
        cursor.execute(
            """INSERT INTO customers_customer (member_id, email, phone, first_name, last_name, status, role,
                   signup_source, email_consent, sms_consent, attributes, created_at, updated_at)
               SELECT '', 'c' || g || '@example.com', '', 'Customer', g::text, %s, 'customer', '', true, false,
                      '{}', now(), now()
               FROM generate_series(1, %s) g""",
            [status, n],
        )


def one_off_send(members: int) -> dict:
    from django.db import connection

    from automations import sends
    from automations.models import Send
    from bench import data as bench_data
    from customers.models import Customer
    from groups.models import CustomerGroup

    bench_data.reset()
    _customers(members, "")
    group = CustomerGroup.objects.create(name="Bench: everyone", slug="bench-everyone", kind="manual")
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO groups_membership (group_id, customer_id, added_at) "
                       "SELECT %s, id, now() FROM customers_customer", [group.pk])  # fmt: skip
    bench_data.settle("customers_customer", "groups_membership")
    send = Send.objects.create(name="Bench", group=group, settings={
        "subject": "News for {{ customer.first_name }} {{ customer.last_name }}",
        "body": "Hello {{ customer.first_name }},\n\nOur news this month: tea from {{ group.name }}."})  # fmt: skip
    Send.objects.filter(pk=send.pk).update(status=Send.Status.SCHEDULED, scheduled_for="2000-01-01T00:00:00Z")
    assert Customer.objects.count() == members
    _reset_peak_rss()
    started = time.perf_counter()
    sends.start(send.pk)
    recipients_s = time.perf_counter() - started
    sent_started = time.perf_counter()
    sends.deliver(send.pk)
    sending_s = time.perf_counter() - sent_started
    send.refresh_from_db()
    return {"members": members, "sent": send.report["sent"], "write_recipients_s": round(recipients_s, 2),
            "send_s": round(sending_s, 1), "messages_per_s": round(send.report["sent"] / sending_s),
            "peak_rss_mb": _peak_rss_mb()}  # fmt: skip


def entries(n: int) -> dict:
    from django.db import connection

    from automations import firings
    from automations.models import Firing, Trigger
    from bench import data as bench_data
    from groups import services
    from groups.models import CustomerGroup

    bench_data.reset()
    _customers(n, "new")
    group = CustomerGroup.objects.create(name="Bench: regulars", slug="bench-regulars",
                                         rules={"field": "status", "op": "eq", "value": "regular"})  # fmt: skip
    services.refresh(group)
    welcome = {"subject": "Welcome, {{ customer.first_name }}", "body": "Hello."}
    trigger = Trigger.objects.create(name="Welcome regulars", group=group, action="email", settings=welcome)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE customers_customer SET status = 'regular'")  # no announcement: the refresh finds them
    bench_data.settle("customers_customer")
    started = time.perf_counter()
    services.refresh(group)  # every customer enters in one refresh
    refresh_s = time.perf_counter() - started
    started = time.perf_counter()
    recorded = firings.consume(trigger.pk)
    record_s = time.perf_counter() - started
    started = time.perf_counter()
    handled = firings.execute_due(trigger.pk)
    act_s = time.perf_counter() - started
    sent = Firing.objects.filter(trigger=trigger, status=Firing.Status.SENT).count()
    return {"entries": n, "refresh_s": round(refresh_s, 2), "firings_recorded": recorded,
            "record_s": round(record_s, 2), "firings_sent": sent, "act_s": round(act_s, 1),
            "firings_per_s": round(handled / act_s)}  # fmt: skip


def run(members: int, entries_count: int) -> dict:
    from django.conf import settings

    sink, port = _smtp_sink()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    try:
        return {"send": one_off_send(members), "entries": entries(entries_count)}
    finally:
        sink.terminate()
        sink.wait(10)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000, help="Members of the group the email goes to.")
    parser.add_argument("--entries", type=int, default=10_000, help="Customers entering a group in one refresh.")
    parser.add_argument("--database-suffix", default="bench_automations")
    parser.add_argument("--json", default=str(RESULTS / "automations.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "false")
    _setup(args.database_suffix)
    results = run(args.members, args.entries)
    send, fired = results["send"], results["entries"]
    print(f"One-off email to {send['members']:,} members: {send['messages_per_s']:,} messages/s "
          f"({send['send_s']} s; recipients written in {send['write_recipients_s']} s), "
          f"peak memory {send['peak_rss_mb']} MB")  # fmt: skip
    print(f"{fired['entries']:,} entries in one refresh ({fired['refresh_s']} s): firings recorded in "
          f"{fired['record_s']} s, acted on at {fired['firings_per_s']:,}/s ({fired['act_s']} s, emails)")  # fmt: skip
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
