"""Registries, who may use them, and the cached copy of their contents."""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from registries import crypto


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"


ROLE_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


class Registry(models.Model):
    class CatalogMode(models.TextChoices):
        CATALOG = "catalog", "Registry catalog (/v2/_catalog)"
        LIST = "list", "Configured repository list"

    class AuthScheme(models.TextChoices):
        UNKNOWN = "", "Not detected yet"
        NONE = "none", "None"
        BASIC = "basic", "Basic"
        BEARER = "bearer", "Bearer token"

    class Health(models.TextChoices):
        UNKNOWN = "unknown", "Unknown"
        OK = "ok", "OK"
        ERROR = "error", "Error"

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(
        max_length=500, help_text="Base URL of the registry, e.g. https://registry.example.com"
    )
    verify_tls = models.BooleanField(default=True, verbose_name="verify TLS certificates")
    ca_bundle = models.TextField(
        blank=True, help_text="PEM certificates to trust for this registry, if not public."
    )
    username = models.CharField(max_length=200, blank=True)
    secret_ciphertext = models.TextField(blank=True, editable=False)
    auth_scheme = models.CharField(
        max_length=10, choices=AuthScheme.choices, blank=True, editable=False
    )
    catalog_mode = models.CharField(
        max_length=10, choices=CatalogMode.choices, default=CatalogMode.CATALOG
    )
    repository_list = models.TextField(
        blank=True, help_text="One repository per line; used when the catalog mode is a list."
    )
    sync_interval_minutes = models.PositiveIntegerField(
        default=15, help_text="0 syncs only on demand and on notifications."
    )
    max_concurrency = models.PositiveSmallIntegerField(
        default=64, help_text="Requests in flight to this registry during a sync."
    )
    scan_new_images = models.BooleanField(
        default=False, help_text="Scan digests first seen by a sync or a push notification."
    )
    rescan_limit = models.PositiveIntegerField(
        default=20, help_text="Stale or unscanned images queued per scheduled rescan run."
    )
    notification_secret_hash = models.CharField(max_length=64, blank=True, editable=False)

    health = models.CharField(max_length=10, choices=Health.choices, default=Health.UNKNOWN)
    health_message = models.TextField(blank=True)
    health_checked_at = models.DateTimeField(null=True, blank=True)
    delete_enabled = models.BooleanField(
        null=True, blank=True, help_text="Detected: does the registry accept deletes?"
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "registries"

    def __str__(self):
        return self.name

    @property
    def host(self):
        """host[:port] as used in image references (docker pull HOST/repo:tag)."""
        return self.url.split("://", 1)[-1].rstrip("/")

    @property
    def has_secret(self):
        return bool(self.secret_ciphertext)

    @property
    def secret(self):
        return crypto.decrypt(self.secret_ciphertext) if self.secret_ciphertext else ""

    @secret.setter
    def secret(self, value):
        self.secret_ciphertext = crypto.encrypt(value) if value else ""

    def configured_repositories(self):
        return [line.strip() for line in self.repository_list.splitlines() if line.strip()]

    def new_notification_secret(self):
        """Make, store (hashed) and return a fresh secret for the notification header."""
        value = secrets.token_urlsafe(32)
        self.notification_secret_hash = hashlib.sha256(value.encode()).hexdigest()
        return value

    def check_notification_secret(self, value):
        if not self.notification_secret_hash or not value:
            return False
        digest = hashlib.sha256(value.encode()).hexdigest()
        return secrets.compare_digest(digest, self.notification_secret_hash)

    def mark_healthy(self):
        self.health, self.health_message = self.Health.OK, ""
        self.health_checked_at = timezone.now()
        self.save(update_fields=["health", "health_message", "health_checked_at"])

    def mark_unhealthy(self, message):
        self.health, self.health_message = self.Health.ERROR, message[:2000]
        self.health_checked_at = timezone.now()
        self.save(update_fields=["health", "health_message", "health_checked_at"])


class Membership(models.Model):
    """A user's, or a group's, role in one registry."""

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="registry_memberships",
    )
    group = models.ForeignKey(
        "auth.Group",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="registry_memberships",
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, group__isnull=True)
                | Q(user__isnull=True, group__isnull=False),
                name="membership_user_xor_group",
            ),
            models.UniqueConstraint(fields=["registry", "user"], name="unique_user_membership"),
            models.UniqueConstraint(fields=["registry", "group"], name="unique_group_membership"),
        ]

    def __str__(self):
        return f"{self.user or self.group} is {self.role} of {self.registry}"


class Repository(models.Model):
    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="repositories")
    name = models.CharField(max_length=255)
    # Kept by the sync so the registry page never aggregates thousands of tags per request.
    tag_count = models.PositiveIntegerField(default=0)
    size_bytes = models.BigIntegerField(default=0, help_text="Distinct blobs, shared ones once.")
    last_created = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "repositories"
        constraints = [
            models.UniqueConstraint(fields=["registry", "name"], name="unique_repository_name")
        ]

    def __str__(self):
        return f"{self.registry.name}/{self.name}"

    @property
    def namespace(self):
        return self.name.rsplit("/", 1)[0] if "/" in self.name else ""


class Manifest(models.Model):
    """One manifest or index of a registry, keyed by digest (immutable, so cached for good)."""

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="manifests")
    digest = models.CharField(max_length=100)
    media_type = models.CharField(max_length=100)
    is_index = models.BooleanField(default=False)
    size_bytes = models.BigIntegerField(
        default=0, help_text="Compressed layers + config; for an index, its platforms' blobs once."
    )
    config_digest = models.CharField(max_length=100, blank=True)
    config_size = models.BigIntegerField(default=0)
    created = models.DateTimeField(null=True, blank=True)
    os = models.CharField(max_length=50, blank=True)
    architecture = models.CharField(max_length=50, blank=True)
    variant = models.CharField(max_length=50, blank=True)
    # "os/arch[/variant]" of each platform child (of the image itself when not an index).
    platforms = models.JSONField(default=list, blank=True)
    layers = models.JSONField(default=list, blank=True, help_text="[{digest, size, media_type}]")
    labels = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True, help_text="The image config blob.")
    raw = models.TextField(blank=True, help_text="The manifest exactly as the registry sent it.")
    fetched_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["registry", "digest"], name="unique_manifest_digest")
        ]
        indexes = [models.Index(fields=["digest"])]

    def __str__(self):
        return self.digest

    @property
    def short_digest(self):
        return self.digest.split(":", 1)[-1][:12]

    def blob_sizes(self):
        """{digest: size} of every blob this image stores: its layers and its config."""
        blobs = {layer["digest"]: layer["size"] for layer in self.layers}
        if self.config_digest:
            blobs[self.config_digest] = self.config_size
        return blobs


class IndexChild(models.Model):
    index = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="children")
    child = models.ForeignKey(
        Manifest, null=True, blank=True, on_delete=models.SET_NULL, related_name="parents"
    )
    digest = models.CharField(max_length=100)
    media_type = models.CharField(max_length=100)
    os = models.CharField(max_length=50, blank=True)
    architecture = models.CharField(max_length=50, blank=True)
    variant = models.CharField(max_length=50, blank=True)
    is_attestation = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position"]

    def __str__(self):
        return self.platform

    @property
    def platform(self):
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


class Tag(models.Model):
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=128)
    # RESTRICT: a manifest cannot go while a tag points at it, unless both go in one cascade
    # (deleting the registry or repository).
    manifest = models.ForeignKey(Manifest, on_delete=models.RESTRICT, related_name="tags")
    first_seen_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["repository", "name"], name="unique_tag_name")
        ]

    def __str__(self):
        return f"{self.repository.name}:{self.name}"
