"""Background work as rows: created first, enqueued on commit, shown by UI and API.

One model serves sync, scan and cleanup jobs so that progress, the jobs page, the API
and the reaper of abandoned jobs are written once.
"""

from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone


class Job(models.Model):
    class Kind(models.TextChoices):
        SYNC = "sync", "Sync"
        SCAN = "scan", "Scan"
        CLEANUP = "cleanup", "Cleanup"
        DELETE = "delete", "Delete"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    MAX_ATTEMPTS = 3  # a transient failure is tried again until this many attempts

    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    registry = models.ForeignKey(
        "registries.Registry", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    # The image a scan is for; one active scan per digest (see constraint).
    digest = models.CharField(max_length=100, blank=True)
    target = models.CharField(max_length=300, blank=True, help_text="What the job works on.")
    params = models.JSONField(default=dict, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The Celery task that runs the job, so that a lost or abandoned job can be sent again.
    task_name = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "kind"]), models.Index(fields=["-created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["registry"],
                condition=Q(kind="sync", status__in=["queued", "running"]),
                name="one_active_sync_per_registry",
            ),
            models.UniqueConstraint(
                fields=["digest"],
                condition=Q(kind="scan", status__in=["queued", "running"]),
                name="one_active_scan_per_digest",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def is_active(self):
        return self.status in self.ACTIVE

    @property
    def percent(self):
        if not self.progress_total:
            return 100 if self.status == self.Status.SUCCEEDED else 0
        return min(100, round(100 * self.progress_done / self.progress_total))

    @property
    def duration(self):
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    def enqueue(self, task):
        """Send `task(job_id)` to the workers once the row is committed."""
        if self.task_name != task.name:
            self.task_name = task.name
            self.save(update_fields=["task_name"])
        transaction.on_commit(lambda: task.delay(self.pk))

    def start(self):
        """Claim the job for this worker; False if it is finished or another worker has it.

        A job whose heartbeat went quiet (its worker died) may be claimed again, which is
        how a redelivered task (acks late) takes over.
        """
        now = timezone.now()
        stale = now - timedelta(seconds=settings.REGUI_JOB_STALE_SECONDS)
        claimable = Q(status=self.Status.QUEUED) | Q(
            status=self.Status.RUNNING, heartbeat_at__lt=stale
        )
        claimed = (
            Job.objects.filter(claimable, pk=self.pk).update(
                status=self.Status.RUNNING,
                started_at=now,
                heartbeat_at=now,
                attempts=F("attempts") + 1,
                error="",
            )
            == 1
        )
        self.refresh_from_db()
        return claimed

    def report_progress(self, done, total=None):
        self.progress_done = done
        if total is not None:
            self.progress_total = total
        self.heartbeat_at = timezone.now()
        self.save(update_fields=["progress_done", "progress_total", "heartbeat_at"])

    def succeed(self, result=None):
        self._finish(self.Status.SUCCEEDED, result=result or {})

    def fail(self, error, result=None):
        self._finish(self.Status.FAILED, error=str(error)[:4000], result=result or self.result)

    def _finish(self, status, error="", result=None):
        self.status, self.error, self.result = status, error, result
        self.finished_at = timezone.now()
        self.save(update_fields=["status", "error", "result", "finished_at"])
