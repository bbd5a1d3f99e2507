"""A known registry password and API token, used for a sync and a scan on a real worker: they
appear in no broker message, Trivy command line or environment, page, API answer, row or log.
"""

import base64
import json
import os
import secrets
import threading
import time
from pathlib import Path

import pytest
import redis
from django.contrib import admin
from django.test import Client
from django.urls import NoReverseMatch, reverse
from rest_framework.test import APIClient

from accounts import tokens
from audit.models import AuditEvent
from jobs.models import Job
from registries.models import Membership, Registry, Role
from tests.support.processes import start_worker, stop
from tests.support.scanning_fixtures import fixture_image, push_and_cache, registry_row

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

USERNAME = "leak-test-user"


@pytest.fixture
def password():
    return "Canary-Pass-" + secrets.token_hex(12)


@pytest.fixture
def private_registry(registry_factory, password):
    return registry_factory(htpasswd=(USERNAME, password))


def needles(password, token):
    """The secrets, and the forms they would take in a Basic header or a docker config."""
    basic = base64.b64encode(f"{USERNAME}:{password}".encode()).decode()
    return {"password": password, "token": token, "basic": basic}


def assert_nowhere(where, text, secret_forms):
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    for name, value in secret_forms.items():
        assert value not in text, f"the {name} appears in {where}"


def broker_contents(url):
    """Every list and hash in the broker (queued task messages, unacked deliveries)."""
    client = redis.Redis.from_url(url)
    dumped = []
    for key in client.keys("*"):
        kind = client.type(key).decode()
        if kind == "list":
            dumped += client.lrange(key, 0, -1)
        elif kind == "hash":
            dumped += client.hvals(key)
        elif kind == "zset":
            dumped += client.zrange(key, 0, -1)
    return b"\n".join(dumped)


class TrivyWatcher(threading.Thread):
    """Reads the command line and environment of every Trivy process while it runs (`ps e`)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.seen, self.done = [], threading.Event()

    def run(self):
        while not self.done.is_set():
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if b"trivy" in cmdline and b"image" in cmdline:
                        self.seen.append((cmdline, Path(f"/proc/{pid}/environ").read_bytes()))
                except OSError:
                    continue
            time.sleep(0.01)

    def stop(self):
        self.done.set()
        self.join()


def wait_until_finished(job_ids, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Job.objects.filter(pk__in=job_ids, status__in=["queued", "running"]).exists():
            return
        time.sleep(0.2)
    raise AssertionError(f"jobs {job_ids} still unfinished after {timeout}s")


def ui_pages(registry, repository, digest, job_ids):
    image = [registry.pk, repository, digest]
    pages = [
        reverse("dashboard"),
        reverse("registry", args=[registry.pk]),
        reverse("repository", args=[registry.pk, repository]),
        reverse("image-tag", args=[registry.pk, repository, "v1"]),
        reverse("image-digest", args=image),
        reverse("image-scan", args=image),
        reverse("image-scan-report", args=image),
        reverse("jobs"),
        reverse("audit-log"),
        reverse("api-tokens"),
        reverse("cleanup", args=[registry.pk]),
    ]
    return pages + [reverse("job", args=[pk]) for pk in job_ids]


def admin_pages():
    """Every model's list in the admin, and the change page of each of its first rows."""
    pages = [reverse("admin:index")]
    for model in admin.site._registry:
        meta = model._meta
        try:
            pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
            first = model.objects.order_by("pk").first()
            if first is not None:
                pages.append(
                    reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first.pk])
                )
        except NoReverseMatch:
            continue
    return pages


def api_pages(registry, digest, job_ids):
    pages = [
        "/api/v1/registries/",
        f"/api/v1/registries/{registry.pk}/",
        f"/api/v1/registries/{registry.pk}/members/",
        f"/api/v1/repositories/?registry={registry.pk}",
        f"/api/v1/images/{digest}/?registry={registry.pk}",
        "/api/v1/jobs/",
        "/api/v1/audit/",
        "/api/v1/scans/",
        "/api/v1/me/",
    ]
    return pages + [f"/api/v1/jobs/{pk}/" for pk in job_ids]


def test_the_registry_password_and_the_api_token_leak_nowhere(
    private_registry,
    password,
    trivy_settings,
    celery_broker,
    worker_env,
    root,
    repo_name,
    caplog,
    tmp_path,
):
    caplog.set_level("DEBUG")
    registry = registry_row(private_registry, name="private")
    Membership.objects.create(registry=registry, user=root, role=Role.ADMIN)
    image = fixture_image("amd64")
    push_and_cache(private_registry, registry, repo_name, "v1", image)
    _, token = tokens.issue(root, name="leak-test")
    secret_forms = needles(password, token)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    # Requested through the API with the token, before any worker runs: the messages wait.
    sync_job = api.post(f"/api/v1/registries/{registry.pk}/sync/").json()["id"]
    scan = api.post("/api/scan", {"registry_id": registry.pk, "repository": repo_name, "tag": "v1"})
    scan_job = scan.json()["id"]
    queued = broker_contents(celery_broker.url)
    assert str(sync_job).encode() in queued and str(scan_job).encode() in queued
    assert_nowhere("the broker's task messages", queued, secret_forms)

    env = worker_env(
        LOG_LEVEL="DEBUG",
        REGUI_TRIVY_BIN=trivy_settings.REGUI_TRIVY_BIN,
        REGUI_TRIVY_CACHE_DIR=trivy_settings.REGUI_TRIVY_CACHE_DIR,
        REGUI_TRIVY_SKIP_DB_UPDATE="true",
        REGUI_TRIVY_OFFLINE_SCAN="true",
    )
    watcher = TrivyWatcher()
    watcher.start()
    worker = start_worker(env, "secrets", tmp_path / "worker.log")
    try:
        wait_until_finished([sync_job, scan_job])
    finally:
        watcher.stop()
        stop(worker)

    jobs = Job.objects.filter(pk__in=[sync_job, scan_job])
    assert {job.status for job in jobs} == {Job.Status.SUCCEEDED}, [job.error for job in jobs]
    assert watcher.seen, "no Trivy process was seen during the scan"
    for cmdline, environ in watcher.seen:
        assert_nowhere("Trivy's command line", cmdline, secret_forms)
        assert_nowhere("Trivy's environment", environ, secret_forms)

    digest = image.digest
    job_ids = [sync_job, scan_job]
    browser = Client()
    browser.force_login(root)
    for path in ui_pages(registry, repo_name, digest, job_ids) + admin_pages():
        page = browser.get(path)
        assert page.status_code == 200, path
        assert_nowhere(path, page.content, secret_forms)
    for path in api_pages(registry, digest, job_ids):
        answer = api.get(path)
        assert answer.status_code == 200, (path, answer.content[:200])
        assert_nowhere(path, answer.content, secret_forms)

    rows = {
        "job rows": list(Job.objects.values()),
        "audit rows": list(AuditEvent.objects.values()),
        "registry row": list(Registry.objects.values()),
    }
    for where, values in rows.items():
        assert_nowhere(where, json.dumps(values, default=str), secret_forms)
    assert_nowhere("the worker's log", (tmp_path / "worker.log").read_text(), secret_forms)
    assert_nowhere("the test process's log", caplog.text, secret_forms)
    assert "Scanning" in (tmp_path / "worker.log").read_text()  # the log was really written
