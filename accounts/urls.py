from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import token_views

urlpatterns = [
    # LoginView follows `next` only to this site (url_has_allowed_host_and_scheme).
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    # POST only (Django 5): a link or an image on another site cannot sign anyone out.
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("tokens/", token_views.token_list, name="api-tokens"),
    path("tokens/<int:pk>/revoke/", token_views.token_revoke, name="api-token-revoke"),
]
