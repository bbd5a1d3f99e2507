from django.contrib import admin

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit trail, read-only: events are written by the code, never by hand."""

    list_display = ["at", "actor_name", "action", "registry_name", "target", "result", "ip"]
    list_filter = ["action", "result", "registry"]
    search_fields = ["actor_name", "target"]
    date_hierarchy = "at"
    list_select_related = ["registry"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
