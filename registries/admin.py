"""Registries and their members in the Django admin.

Every change is audited from here (save/delete hooks), naming changed settings but never a
secret's value. Which registries a staff user may touch is decided by registries.permissions,
like everywhere else.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from audit.log import record
from registries import connection
from registries.forms import MembershipForm, RegistryForm
from registries.models import Manifest, Membership, Registry, Repository, Tag
from registries.permissions import Action, visible_registries

HEALTH_COLOURS = {
    Registry.Health.OK: "#198754",
    Registry.Health.ERROR: "#dc3545",
    Registry.Health.UNKNOWN: "#6c757d",
}


def member_label(membership):
    if membership.user_id:
        return f"user {membership.user.get_username()}"
    return f"group {membership.group.name}"


def record_membership(request, action, membership, **params):
    record(
        action,
        request=request,
        registry=membership.registry,
        target=member_label(membership),
        params={"role": membership.role, **params},
    )


class MembershipInline(admin.TabularInline):
    model = Membership
    form = MembershipForm
    fields = ["user", "group", "role"]
    autocomplete_fields = ["user", "group"]
    extra = 1


@admin.register(Registry)
class RegistryAdmin(admin.ModelAdmin):
    form = RegistryForm
    inlines = [MembershipInline]
    list_display = [
        "name",
        "url",
        "health_badge",
        "auth_scheme",
        "delete_enabled",
        "last_synced_at",
    ]
    list_filter = ["health", "auth_scheme", "catalog_mode"]
    search_fields = ["name", "url"]
    actions = ["test_connection", "generate_notification_secret"]
    readonly_fields = [
        "auth_scheme",
        "notification_secret_status",
        "health_badge",
        "health_message",
        "health_checked_at",
        "delete_enabled",
        "last_synced_at",
    ]
    fieldsets = [
        ("Connection", {"fields": ["name", "url", "verify_tls", "ca_bundle"]}),
        ("Authentication", {"fields": ["username", "secret", "clear_secret", "auth_scheme"]}),
        ("Catalog", {"fields": ["catalog_mode", "repository_list"]}),
        (
            "Sync & scanning",
            {
                "fields": [
                    "sync_interval_minutes",
                    "max_concurrency",
                    "scan_new_images",
                    "rescan_limit",
                    "notification_secret_status",
                ]
            },
        ),
        (
            "Health",
            {
                "fields": [
                    "health_badge",
                    "health_message",
                    "health_checked_at",
                    "delete_enabled",
                    "last_synced_at",
                ]
            },
        ),
    ]

    def get_queryset(self, request):
        allowed = visible_registries(request.user, Action.CHANGE_REGISTRY)
        return super().get_queryset(request).filter(pk__in=allowed.values("pk"))

    @admin.display(description="health", ordering="health")
    def health_badge(self, registry):
        return format_html(
            '<span title="{}" style="background:{};color:#fff;padding:1px 8px;'
            'border-radius:8px">{}</span>',
            registry.health_message,
            HEALTH_COLOURS[registry.health],
            registry.get_health_display(),
        )

    @admin.display(description="notification secret")
    def notification_secret_status(self, registry):
        if registry.notification_secret_hash:
            return "Set (shown only when generated)."
        return "Not set: use “Generate notification secret” to accept registry notifications."

    # Auditing

    def save_model(self, request, registry, form, change):
        super().save_model(request, registry, form, change)
        if not change:
            record("registry.created", request=request, registry=registry, target=registry.name)
        elif changed := form.changed_setting_names():
            record(
                "registry.changed",
                request=request,
                registry=registry,
                target=registry.name,
                params={"changed": changed},
            )

    def delete_model(self, request, registry):
        with transaction.atomic():
            record("registry.deleted", request=request, registry=registry, target=registry.name)
            registry.delete()

    def delete_queryset(self, request, queryset):
        for registry in queryset:
            self.delete_model(request, registry)

    def get_deleted_objects(self, objs, request):
        """Counts of the cached rows that go with the registries, not a list of every tag."""
        registries = [registry.pk for registry in objs]
        model_count = {
            Registry._meta.verbose_name_plural: len(registries),
            Membership._meta.verbose_name_plural: Membership.objects.filter(
                registry__in=registries
            ).count(),
            "cached repositories": Repository.objects.filter(registry__in=registries).count(),
            "cached tags": Tag.objects.filter(repository__registry__in=registries).count(),
            "cached manifests": Manifest.objects.filter(registry__in=registries).count(),
        }
        return [str(registry) for registry in objs], model_count, set(), []

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        if formset.model is not Membership:
            return
        for membership in formset.new_objects:
            record_membership(request, "membership.added", membership)
        for membership, changed in formset.changed_objects:
            record_membership(request, "membership.changed", membership, changed=changed)
        for membership in formset.deleted_objects:
            record_membership(request, "membership.removed", membership)

    # Test connection and the notification secret: admin actions and change-page buttons

    @admin.action(description="Test connection", permissions=["change"])
    def test_connection(self, request, queryset):
        for registry in queryset:
            self._test_connection(request, registry)

    @admin.action(description="Generate notification secret", permissions=["change"])
    def generate_notification_secret(self, request, queryset):
        for registry in queryset:
            self._generate_notification_secret(request, registry)

    def _test_connection(self, request, registry):
        report = connection.probe(registry, request=request)
        level = getattr(messages, connection.message_level(report).upper())
        self.message_user(request, f"{registry.name}: {report.summary()}", level)

    def _generate_notification_secret(self, request, registry):
        value = registry.new_notification_secret()
        registry.save(update_fields=["notification_secret_hash"])
        record("registry.notification_secret_generated", request=request, registry=registry)
        self.message_user(
            request,
            f"New notification secret for {registry.name}: {value} — copy it now into the "
            "registry's notification endpoint headers; it is stored hashed and not shown again.",
            messages.WARNING,
        )

    def get_urls(self):
        button_views = [
            ("test-connection", "test_connection", self._test_connection),
            ("notification-secret", "notification_secret", self._generate_notification_secret),
        ]
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                f"<path:object_id>/{suffix}/",
                self.admin_site.admin_view(self._button_view(operation)),
                name="{}_{}_".format(*info) + name,
            )
            for suffix, name, operation in button_views
        ] + super().get_urls()

    def _button_view(self, operation):
        @require_POST
        def view(request, object_id):
            registry = self.get_object(request, object_id)
            if registry is None:
                raise Http404("No such registry.")
            if not self.has_change_permission(request, registry):
                raise PermissionDenied
            operation(request, registry)
            return redirect(reverse("admin:registries_registry_change", args=[registry.pk]))

        return view


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    form = MembershipForm
    list_display = ["registry", "user", "group", "role", "created_at"]
    list_filter = ["role", "registry"]
    search_fields = ["user__username", "group__name", "registry__name"]
    autocomplete_fields = ["user", "group"]

    def get_queryset(self, request):
        allowed = visible_registries(request.user, Action.MANAGE_MEMBERS)
        return super().get_queryset(request).filter(registry__in=allowed.values("pk"))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "registry":
            kwargs["queryset"] = visible_registries(request.user, Action.MANAGE_MEMBERS)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, membership, form, change):
        super().save_model(request, membership, form, change)
        if not change:
            record_membership(request, "membership.added", membership)
        elif form.changed_data:
            record_membership(request, "membership.changed", membership, changed=form.changed_data)

    def delete_model(self, request, membership):
        record_membership(request, "membership.removed", membership)
        super().delete_model(request, membership)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("registry", "user", "group"):
            record_membership(request, "membership.removed", membership)
        super().delete_queryset(request, queryset)
