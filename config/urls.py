"""URL routes: the back office at /admin/, the REST API at /api/ and a health check."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from .health import healthz

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", include("config.api")),
    path("unsubscribe/", include("automations.urls")),
    path("healthz", healthz, name="healthz"),
]

handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"
