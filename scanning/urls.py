from django.urls import path

from scanning import views

# Same shape as registries.urls: "-/" ends a repository name (which may contain slashes).
IMAGE = "registries/<int:registry_id>/repositories/<path:repository>/-/digests/<str:digest>"

urlpatterns = [
    path(f"{IMAGE}/scan/", views.image_scan, name="image-scan"),
    path(f"{IMAGE}/scan/start/", views.start_scan, name="image-scan-start"),
    path(f"{IMAGE}/scan/report.json", views.scan_report, name="image-scan-report"),
    path("scans/jobs/<int:job_id>/", views.scan_progress, name="scan-progress"),
    path("scans/search/", views.search, name="scan-search"),
    path("scans/diff/", views.diff, name="scan-diff"),
]
