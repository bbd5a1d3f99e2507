from django.urls import path

from scanning.api import v1_views as views

urlpatterns = [
    path("scans/", views.ScanListView.as_view(), name="api-scan-list"),
    path("scans/<str:digest>/findings/", views.FindingListView.as_view(), name="api-findings"),
    path("vulnerabilities/", views.VulnerabilitySearchView.as_view(), name="api-vulnerabilities"),
    path("diff/", views.ImageDiffView.as_view(), name="api-image-diff"),
]
