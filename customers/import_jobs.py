"""Background CSV imports: a job row holds the file and the choices, a Celery task runs it with progress."""

from __future__ import annotations

import io

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import F
from django.utils import timezone

from .imports import ColumnMap, ImportInvalid, import_customers
from .models import CustomerImport

# Files up to this size are imported while staff wait; larger ones go to a worker.
INLINE_LIMIT_BYTES = 2 * 1024 * 1024


def mapping_of(job: CustomerImport) -> list[ColumnMap]:
    return [ColumnMap(m["column"], m["target"], m.get("type") or None) for m in job.mapping]


def run(job_id: int) -> CustomerImport | None:
    """Run a queued import; progress and the report are written on the job row."""
    claimed = CustomerImport.objects.filter(
        pk=job_id, status__in=[CustomerImport.Status.QUEUED, CustomerImport.Status.DRAFT]
    ).update(status=CustomerImport.Status.RUNNING, started_at=timezone.now())
    if not claimed:
        return None  # already run, or running elsewhere (a task delivered twice)
    job = CustomerImport.objects.get(pk=job_id)
    # The import runs in one transaction; progress goes through a connection of its own so that
    # others see it at once.
    side = connections.create_connection(DEFAULT_DB_ALIAS)

    def progress(rows: int) -> None:
        with side.cursor() as cursor:
            cursor.execute("UPDATE customers_customerimport SET rows_read = %s WHERE id = %s", [rows, job_id])

    try:
        report = import_customers(
            io.BytesIO(bytes(job.data)), mapping_of(job), skip_bad_rows=job.skip_bad_rows, progress=progress
        )
    except ImportInvalid as exc:
        _finish(job_id, CustomerImport.Status.FAILED, error=str(exc))
    except Exception as exc:
        _finish(job_id, CustomerImport.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    else:
        status = CustomerImport.Status.SUCCEEDED if report.imported else CustomerImport.Status.REJECTED
        _finish(job_id, status, report=report.as_dict() | {"summary": report.summary()}, rows_read=report.rows)
    finally:
        side.close()
    return CustomerImport.objects.get(pk=job_id)


def import_good_rows(job_id: int) -> bool:
    """Queue a rejected import again, skipping its bad rows this time; False if it is not one (any more)."""
    return bool(
        CustomerImport.objects.filter(pk=job_id, status=CustomerImport.Status.REJECTED)
        .exclude(data=b"")
        .update(status=CustomerImport.Status.QUEUED, skip_bad_rows=True, report={}, error="", rows_read=0)
    )


def _finish(job_id: int, status: str, **fields) -> None:
    # Once the import is over the file is no longer needed, and keeping it would only hold personal
    # data; a rejected file is kept so that its good rows can be imported without uploading it again.
    keep = status == CustomerImport.Status.REJECTED
    CustomerImport.objects.filter(pk=job_id).update(
        status=status,
        finished_at=timezone.now(),
        data=F("data") if keep else b"",
        rows_read=fields.pop("rows_read", F("rows_read")),
        **fields,
    )
