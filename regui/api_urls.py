"""Everything under /api/: the versioned REST API, the original UI's scan API, events."""

from django.urls import include, path

urlpatterns = [
    path("", include("registries.api.urls")),
    path("", include("scanning.api.urls")),
]
