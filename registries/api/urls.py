from django.urls import path
from rest_framework.routers import SimpleRouter

from registries import events
from registries.api import views

router = SimpleRouter()
router.register("v1/registries", views.RegistryViewSet, basename="api-registry")
router.register(
    r"v1/registries/(?P<registry_pk>\d+)/members", views.MemberViewSet, basename="api-member"
)

urlpatterns = [
    *router.urls,
    path("v1/repositories/", views.RepositoryListView.as_view(), name="api-repository-list"),
    path("v1/tags/", views.TagListView.as_view(), name="api-tag-list"),
    path("v1/tags/<int:pk>/", views.TagDetailView.as_view(), name="api-tag"),
    path("v1/images/<str:digest>/", views.ImageView.as_view(), name="api-image"),
    path("v1/cleanup/", views.CleanupView.as_view(), name="api-cleanup"),
    path("events/registry/<int:registry_id>/", events.registry_events, name="registry-events"),
]
