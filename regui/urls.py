from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/", include("regui.api_urls")),
    path("", include("scanning.urls")),
    path("", include("registries.urls")),
]
