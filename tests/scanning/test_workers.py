"""Scans run by real Celery workers: each worker keeps a Trivy cache of its own."""

import time
from pathlib import Path

import pytest

from jobs.models import Job
from scanning import services
from tests.support.processes import start_worker, stop
from tests.support.scanning_fixtures import fixture_image, push_and_cache

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_until_finished(jobs, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job in jobs:
            job.refresh_from_db()
        if not any(job.is_active for job in jobs):
            return
        time.sleep(0.2)
    raise AssertionError(f"scan jobs still active: {jobs}")


def test_two_workers_scan_with_their_own_caches(
    trivy_settings, worker_env, registry, fault_proxy, live_registry_a, repo_name, tmp_path
):
    live_registry_a.url = fault_proxy.url
    live_registry_a.save()
    fault_proxy.latency(0.2)  # scans long enough for both workers to take one
    env = worker_env(
        REGUI_TRIVY_BIN=trivy_settings.REGUI_TRIVY_BIN,
        REGUI_TRIVY_CACHE_DIR=trivy_settings.REGUI_TRIVY_CACHE_DIR,
        REGUI_TRIVY_SKIP_DB_UPDATE="true",
        REGUI_TRIVY_OFFLINE_SCAN="true",
    )
    pushed = {arch: fixture_image(arch) for arch in ("amd64", "arm64")}
    manifests = {
        arch: push_and_cache(registry, live_registry_a, repo_name, arch, image)
        for arch, image in pushed.items()
    }
    workers = [start_worker(env, name, tmp_path / f"{name}.log") for name in ("scan-a", "scan-b")]
    try:
        jobs = [
            services.request_scan(live_registry_a, manifest, repository=repo_name)
            for manifest in manifests.values()
        ]
        wait_until_finished(jobs)
    finally:
        for worker in workers:
            stop(worker)

    assert [job.status for job in jobs] == [Job.Status.SUCCEEDED] * 2, [j.error for j in jobs]
    assert services.latest_scan(pushed["amd64"].digest).total == 6
    assert services.latest_scan(pushed["arm64"].digest).total == 3
    caches = sorted(p.name for p in (Path(env["REGUI_TRIVY_CACHE_DIR"]) / "workers").iterdir())
    assert caches and all(name.startswith(("scan-a_", "scan-b_")) for name in caches), caches
    for cache in caches:
        assert (Path(env["REGUI_TRIVY_CACHE_DIR"]) / "workers" / cache / "db" / "trivy.db").exists()
