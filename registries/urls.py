from django.urls import path

from registries import views

REPO = "registries/<int:registry_id>/repositories/<path:repository>"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("registries/<int:registry_id>/", views.registry_detail, name="registry"),
    path("registries/<int:registry_id>/sync/", views.sync_now, name="registry-sync"),
    path("registries/<int:registry_id>/cleanup/", views.cleanup_form, name="cleanup"),
    path("registries/<int:registry_id>/cleanup/run/", views.cleanup_run, name="cleanup-run"),
    # Repository names contain slashes: the routes below the repository come first and use
    # "-/" (never a valid name component) to end the name.
    path(f"{REPO}/-/tags/<str:tag>/", views.image_by_tag, name="image-tag"),
    path(f"{REPO}/-/tags/<str:tag>/delete/", views.delete_tag, name="tag-delete"),
    path(f"{REPO}/-/digests/<str:digest>/", views.image_by_digest, name="image-digest"),
    path(
        f"{REPO}/-/digests/<str:digest>/<str:kind>.json",
        views.raw_json,
        name="image-raw",
    ),
    path(f"{REPO}/", views.repository_detail, name="repository"),
]
