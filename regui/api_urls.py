"""Everything under /api/: the versioned REST API, the original UI's scan API, events."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from regui.rest import api_not_found

urlpatterns = [
    path("", include("registries.api.urls")),
    path("", include("scanning.api.urls")),
    path("v1/", include("jobs.api.urls")),
    path("v1/", include("audit.api.urls")),
    path("v1/", include("accounts.api.urls")),
    path("v1/", include("scanning.api.v1_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file, which the CSP (script-src self) allows.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # Last: any other /api/ path is a JSON 404, not the HTML page.
    re_path(r"^(?P<path>.*)$", api_not_found),
]
