from django.contrib import admin

from scanning.models import Finding, Scan, ScannerState


class FindingInline(admin.TabularInline):
    model = Finding
    extra = 0
    can_delete = False
    fields = ("severity", "vulnerability_id", "package", "installed_version", "fixed_version")
    readonly_fields = fields
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Scan)
class ScanAdmin(admin.ModelAdmin):
    list_display = ("digest", "status", "total", "critical", "high", "db_updated_at", "finished_at")
    list_filter = ("status",)
    search_fields = ("digest",)
    # Results come from Trivy only; the admin reads them.
    readonly_fields = [field.name for field in Scan._meta.fields if field.name != "report_zlib"]
    inlines = [FindingInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ScannerState)
class ScannerStateAdmin(admin.ModelAdmin):
    list_display = ("trivy_version", "db_updated_at", "checked_at")

    def has_add_permission(self, request):
        return False
