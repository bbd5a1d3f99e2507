from django.urls import path

from scanning.api import views

urlpatterns = [
    path("scan", views.ScanView.as_view(), name="api-scan"),
    path("scan-results", views.ScanResultsView.as_view(), name="api-scan-results"),
]
