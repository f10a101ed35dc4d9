"""The back office's CSV import page on the customer list: upload, map columns, then the report.

Small files are imported while staff wait; larger ones go to a Celery worker and the page follows
their progress. Everything runs through `customers.imports` (the same code as the command).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models.functions import Length
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.text import slugify

from . import import_jobs
from .attributes import declared_types
from .imports import FIELDS, ColumnMap, ImportInvalid, check_mapping, guess_mapping, read_header
from .models import AttributeDefinition, CustomerImport

# Uploads past this are refused with a message rather than read into memory.
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
TEMPLATE = "admin/customers/customer/import.html"
NEEDED = "Importing customers needs the permissions “Can add customer” and “Can change customer”."


def urls(model_admin) -> list:
    """The import URLs, to prepend to the customer admin's own (ModelAdmin.get_urls)."""
    wrap = model_admin.admin_site.admin_view

    def view(function):
        return wrap(lambda request, *args, **kwargs: function(model_admin, request, *args, **kwargs))

    return [
        path("import/", view(upload), name="customers_customer_import"),
        path("import/<int:job_id>/mapping/", view(mapping), name="customers_customer_import_mapping"),
        path("import/<int:job_id>/", view(status), name="customers_customer_import_status"),
        path("import/<int:job_id>/good-rows/", view(good_rows), name="customers_customer_import_good_rows"),
    ]


def may_import(model_admin, request: HttpRequest) -> bool:
    """An import creates and changes customers."""
    return model_admin.has_add_permission(request) and model_admin.has_change_permission(request)


def _check_permission(model_admin, request: HttpRequest) -> None:
    if not may_import(model_admin, request):
        raise PermissionDenied(NEEDED)


def _context(model_admin, request: HttpRequest, **extra) -> dict:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Import customers from CSV",
        **extra,
    }


def upload(model_admin, request: HttpRequest) -> HttpResponse:
    _check_permission(model_admin, request)
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            messages.error(request, "Choose a CSV file to import.")
        elif upload.size > MAX_UPLOAD_BYTES:
            messages.error(
                request,
                f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; import it "
                "with the import_customers command instead.",
            )
        else:
            data = upload.read()
            try:
                header = read_header(data)
            except ImportInvalid as exc:
                header = None
                messages.error(request, f"This file cannot be imported: {exc}.")
            if header == []:
                messages.error(request, "The file is empty: its first line must name the columns.")
            elif header:
                job = CustomerImport.objects.create(
                    created_by=request.user,
                    file_name=upload.name[:255],
                    data=data,
                    header=header,
                    rows_total=max(data.count(b"\n") - 1 + (not data.endswith(b"\n")), 0),
                )
                return redirect("admin:customers_customer_import_mapping", job.pk)
    return TemplateResponse(request, TEMPLATE, _context(model_admin, request, step="upload"))


def _targets() -> list[tuple[str, str]]:
    declared = declared_types().items()
    return [
        ("", "— do not import —"),
        *((name, name.replace("_", " ").capitalize()) for name in FIELDS),
        *((f"attributes.{key}", f"Attribute {key} ({type_})") for key, type_ in declared),
    ]


def _new_key(column: str, index: int) -> str:
    return (slugify(column).replace("-", "_") or f"column_{index + 1}")[:100]


def mapping(model_admin, request: HttpRequest, job_id: int) -> HttpResponse:
    _check_permission(model_admin, request)
    job = get_object_or_404(CustomerImport, pk=job_id, status=CustomerImport.Status.DRAFT)
    targets = _targets()
    known = {value for value, _ in targets}
    guessed = {m.column: m.target for m in guess_mapping(job.header)}
    columns = []
    for index, column in enumerate(job.header):
        new = f"attributes.{_new_key(column, index)}"
        choices = targets if new in known else [*targets, (new, f"New attribute {new[len('attributes.') :]}")]
        chosen = request.POST.get(f"target_{index}", guessed.get(column, ""))
        columns.append(
            {
                "index": index,
                "name": column,
                "choices": choices,
                "chosen": chosen,
                "type": request.POST.get(f"type_{index}", "text"),
                "new": new not in known,
            }
        )
    if request.method == "POST":
        declared = declared_types()
        chosen_map = []
        for column in columns:
            if not column["chosen"]:
                continue
            key = column["chosen"][len("attributes.") :] if column["chosen"].startswith("attributes.") else None
            new_type = column["type"] if key is not None and key not in declared else None
            chosen_map.append(ColumnMap(column["name"], column["chosen"], new_type))
        try:
            check_mapping(chosen_map, job.header, declared)
        except ImportInvalid as exc:
            messages.error(request, f"This mapping cannot be imported: {exc}.")
        else:
            return _start(request, job, chosen_map, skip_bad_rows=bool(request.POST.get("skip_bad_rows")))
    return TemplateResponse(
        request,
        TEMPLATE,
        _context(
            model_admin, request, step="mapping", job=job, columns=columns, types=AttributeDefinition.Type.choices
        ),
    )


def _start(request: HttpRequest, job: CustomerImport, chosen: list[ColumnMap], *, skip_bad_rows: bool):
    job.mapping = [{"column": m.column, "target": m.target, "type": m.type} for m in chosen]
    job.skip_bad_rows = skip_bad_rows
    job.status = CustomerImport.Status.QUEUED
    job.save(update_fields=["mapping", "skip_bad_rows", "status"])
    return _run(request, job.pk, len(job.data))


def good_rows(model_admin, request: HttpRequest, job_id: int) -> HttpResponse:
    """The same file and mapping again, skipping the bad rows the report listed."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    _check_permission(model_admin, request)
    size = CustomerImport.objects.filter(pk=job_id).values_list(Length("data"), flat=True).first()
    if size is None:
        raise Http404("No such import.")
    if not import_jobs.import_good_rows(job_id):
        messages.warning(request, "This import is no longer waiting for its good rows; upload the file again.")
        return redirect(reverse("admin:customers_customer_import_status", args=[job_id]))
    return _run(request, job_id, size)


def _run(request: HttpRequest, job_id: int, size: int) -> HttpResponse:
    from .tasks import import_customers

    if size <= import_jobs.INLINE_LIMIT_BYTES:
        import_jobs.run(job_id)
    else:
        transaction.on_commit(lambda: import_customers.delay(job_id))
        messages.info(request, "The file is large: it is being imported in the background. This page follows it.")
    return redirect(reverse("admin:customers_customer_import_status", args=[job_id]))


def status(model_admin, request: HttpRequest, job_id: int) -> HttpResponse:
    _check_permission(model_admin, request)
    job = get_object_or_404(CustomerImport.objects.defer("data").annotate(file_bytes=Length("data")), pk=job_id)
    running = job.status in (CustomerImport.Status.QUEUED, CustomerImport.Status.RUNNING)
    report = job.report
    percent = min(100, int(100 * job.rows_read / job.rows_total)) if job.rows_total else 0
    return TemplateResponse(
        request,
        TEMPLATE,
        _context(
            model_admin,
            request,
            step="status",
            job=job,
            running=running,
            percent=percent,
            report=report,
            errors=report.get("errors", []),
            good_rows=(report.get("rows", 0) - report.get("bad_rows", 0))
            if job.status == CustomerImport.Status.REJECTED and job.file_bytes
            else 0,
        ),
    )
