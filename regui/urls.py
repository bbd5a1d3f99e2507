from django.contrib import admin
from django.urls import include, path

from regui import health, metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics.metrics, name="metrics"),
    path("accounts/", include("accounts.urls")),
    path("api/", include("regui.api_urls")),
    path("jobs/", include("jobs.urls")),
    path("audit/", include("audit.urls")),
    path("", include("scanning.urls")),
    path("", include("registries.urls")),
]

handler400 = "regui.errors.bad_request"
handler403 = "regui.errors.permission_denied"
handler404 = "regui.errors.page_not_found"
handler500 = "regui.errors.server_error"
