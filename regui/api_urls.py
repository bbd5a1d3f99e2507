"""Everything under /api/: the versioned REST API, the original UI's scan API, events."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("", include("registries.api.urls")),
    path("", include("scanning.api.urls")),
    path("v1/", include("jobs.api.urls")),
    path("v1/", include("audit.api.urls")),
    path("v1/", include("accounts.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
