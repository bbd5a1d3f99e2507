from django.contrib import admin

from accounts import tokens
from accounts.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Every user's API tokens, to find and revoke a leaked one. Issuing happens elsewhere
    ("My API tokens" or `manage.py issue_token`) because the token is shown only there."""

    list_display = [
        "name",
        "user",
        "prefix",
        "read_only",
        "created_at",
        "expires_at",
        "last_used_at",
    ]
    list_filter = ["read_only"]
    search_fields = ["name", "user__username", "prefix"]
    readonly_fields = list_display
    fields = list_display

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, token):
        tokens.revoke(token, request=request)

    def delete_queryset(self, request, queryset):
        for token in queryset.select_related("user"):
            tokens.revoke(token, request=request)
