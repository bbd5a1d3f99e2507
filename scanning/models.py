"""Vulnerability scan results, keyed by manifest digest.

A digest names the same bytes in every registry and tag, so one scan serves them all. A Scan
row holds the latest good result for its digest: a failed attempt records its reason on the row
(and on its job) but never replaces findings that were good. The attempts themselves are the
scan jobs (jobs.models.Job, kind "scan").
"""

import zlib

from django.db import models
from django.utils import timezone

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")


class Scan(models.Model):
    class Status(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        # Only while no attempt has ever succeeded: a good result is never replaced by a failure.
        FAILED = "failed", "Failed"

    digest = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    # For an index: the platform children it summarises (attestations are never scanned).
    child_digests = models.JSONField(default=list, blank=True)
    trivy_version = models.CharField(max_length=50, blank=True)
    db_updated_at = models.DateTimeField(
        null=True, blank=True, help_text="UpdatedAt of the vulnerability DB the scan used."
    )
    os = models.CharField(max_length=100, blank=True, help_text="As Trivy detected it.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    critical = models.PositiveIntegerField(default=0)
    high = models.PositiveIntegerField(default=0)
    medium = models.PositiveIntegerField(default=0)
    low = models.PositiveIntegerField(default=0)
    unknown = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    fixable = models.PositiveIntegerField(default=0)
    report_zlib = models.BinaryField(blank=True, default=b"", editable=False)
    # The latest failed attempt, kept next to the older good result.
    error = models.TextField(blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-finished_at"]
        indexes = [models.Index(fields=["db_updated_at"])]

    def __str__(self):
        return f"Scan of {self.digest}"

    @property
    def succeeded(self):
        return self.status == self.Status.SUCCEEDED

    @property
    def report_json(self):
        """The raw Trivy report as text ("" when none is kept, e.g. an index's summary)."""
        return zlib.decompress(bytes(self.report_zlib)).decode() if self.report_zlib else ""

    def set_report(self, text):
        self.report_zlib = zlib.compress(text.encode(), 6)

    def is_stale(self, current_db_updated_at):
        """Scanned with an older vulnerability DB than the one in use now."""
        return bool(
            self.db_updated_at
            and current_db_updated_at
            and self.db_updated_at < current_db_updated_at
        )

    def counts(self):
        return {
            "total": self.total,
            "critical": self.critical,
            "high": self.high,
            "medium": self.medium,
            "low": self.low,
            "unknown": self.unknown,
            "fixable": self.fixable,
        }


class Finding(models.Model):
    scan = models.ForeignKey(Scan, on_delete=models.CASCADE, related_name="findings")
    vulnerability_id = models.CharField(max_length=100)
    package = models.CharField(max_length=255)
    installed_version = models.CharField(max_length=255, blank=True)
    fixed_version = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=30, blank=True, help_text="Trivy's fix status.")
    severity = models.CharField(max_length=10)
    title = models.TextField(blank=True)
    primary_url = models.URLField(max_length=500, blank=True)
    # The compressed layer blob as the manifest lists it (matched through the config's diff_ids).
    layer_digest = models.CharField(max_length=100, blank=True)
    layer_diff_id = models.CharField(max_length=100, blank=True)
    target = models.CharField(max_length=500, blank=True)
    class_name = models.CharField("class", max_length=30, blank=True)
    package_type = models.CharField(max_length=30, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["vulnerability_id"]),
            models.Index(fields=["package"]),
        ]

    def __str__(self):
        return f"{self.vulnerability_id} in {self.package} {self.installed_version}"

    @property
    def is_fixable(self):
        return bool(self.fixed_version)

    @property
    def severity_rank(self):
        return SEVERITIES.index(self.severity) if self.severity in SEVERITIES else len(SEVERITIES)


class ScannerState(models.Model):
    """What scans run with now: the newest vulnerability DB any worker has seen.

    One row. Scans older than its DB date are "stale"; the scheduled rescan refreshes it.
    """

    trivy_version = models.CharField(max_length=50, blank=True)
    db_updated_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"Trivy {self.trivy_version}, DB of {self.db_updated_at}"
