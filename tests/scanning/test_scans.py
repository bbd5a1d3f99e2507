"""Scans with the real Trivy, the suite's fixture DB and real registries."""

import json
import os
import subprocess
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from jobs.models import Job
from scanning import services, trivy
from scanning.models import Scan
from tests.support import images
from tests.support.scanning_fixtures import (
    TRIVY_SERVER_TOKEN,
    apk_layer_digest,
    fixture_image,
    fixture_index,
    publish_trivy_db,
    push_and_cache,
    registry_row,
)
from tests.support.trivy_db import (
    DEFAULT_UPDATED_AT,
    EXPECTED_FINDINGS,
    FIXTURE_ADVISORIES,
    NEWER_DB_ADVISORY,
    NEWER_DB_FINDINGS,
    write_trivy_db,
)

pytestmark = pytest.mark.django_db


def finding_tuples(scan):
    return sorted(
        (f.vulnerability_id, f.package, f.installed_version, f.fixed_version, f.severity)
        for f in scan.findings.all()
    )


def expected_tuples(arch, extra=()):
    return sorted(
        (e.vulnerability_id, e.pkg_name, e.installed_version, e.fixed_version, e.severity)
        for e in (*EXPECTED_FINDINGS[arch], *extra)
    )


class TrivyRuns:
    """Records every argv and environment the scanning code starts Trivy with (a spy)."""

    def __init__(self):
        self.calls = []
        self._real_run = subprocess.run

    def __call__(self, argv, *args, **kwargs):
        self.calls.append((list(argv), dict(kwargs.get("env") or {})))
        return self._real_run(argv, *args, **kwargs)

    @property
    def scans(self):
        return [argv for argv, _ in self.calls if argv[1:2] == ["image"]]


@pytest.fixture
def trivy_runs(monkeypatch):
    runs = TrivyRuns()
    monkeypatch.setattr(trivy.subprocess, "run", runs)
    return runs


def scan_now(django_capture_on_commit_callbacks, registry, manifest, repository):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.request_scan(registry, manifest, repository=repository)
    job.refresh_from_db()
    return job


def test_fixture_image_gives_exactly_the_fixture_findings(
    trivy_settings, registry, open_registry, repo_name, django_capture_on_commit_callbacks
):
    image = fixture_image("amd64")
    manifest = push_and_cache(registry, open_registry, repo_name, "v1", image)

    job = scan_now(django_capture_on_commit_callbacks, open_registry, manifest, repo_name)

    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.progress_done, job.progress_total) == (1, 1)
    scan = services.latest_scan(image.digest)
    assert finding_tuples(scan) == expected_tuples("amd64")
    assert {f.layer_digest for f in scan.findings.all()} == {apk_layer_digest(image)}
    assert {f.layer_diff_id for f in scan.findings.all()} == {image.layers[1].diff_id}
    assert {f.class_name for f in scan.findings.all()} == {"os-pkgs"}
    assert scan.counts() == {
        "total": 6,
        "critical": 2,
        "high": 1,
        "medium": 1,
        "low": 1,
        "unknown": 1,
        "fixable": 5,
    }
    assert scan.trivy_version == "0.59.1"
    assert scan.db_updated_at == DEFAULT_UPDATED_AT
    assert scan.os == "alpine 3.18.4"
    report = json.loads(scan.report_json)
    assert report["ArtifactName"].endswith(f"{repo_name}@{image.digest}")
    assert job.result["total"] == 6


def test_layers_in_the_compat_answer_are_the_real_layers_in_order(
    trivy_settings, registry, open_registry, repo_name, django_capture_on_commit_callbacks
):
    image = fixture_image("amd64")
    manifest = push_and_cache(registry, open_registry, repo_name, "v1", image)
    scan_now(django_capture_on_commit_callbacks, open_registry, manifest, repo_name)

    results = services.scan_results(manifest)

    assert [(layer["digest"], layer["size"]) for layer in results["layers"]] == [
        (layer.digest, layer.size) for layer in image.layers
    ]
    assert [layer["total"] for layer in results["layers"]] == [0, 6]
    assert results["layers"][1]["critical"] == 2


def test_index_scans_each_platform_by_digest_and_never_attestations(
    trivy_settings,
    registry,
    open_registry,
    repo_name,
    trivy_runs,
    django_capture_on_commit_callbacks,
):
    index = fixture_index()
    manifest = push_and_cache(registry, open_registry, repo_name, "multi", index)
    amd64, arm64 = index.children

    job = scan_now(django_capture_on_commit_callbacks, open_registry, manifest, repo_name)

    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.progress_done, job.progress_total) == (2, 2)
    assert [argv[-1] for argv in trivy_runs.scans] == [
        f"{registry.host}/{repo_name}@{amd64.digest}",
        f"{registry.host}/{repo_name}@{arm64.digest}",
    ]
    assert finding_tuples(services.latest_scan(amd64.digest)) == expected_tuples("amd64")
    arm64_scan = services.latest_scan(arm64.digest)
    assert finding_tuples(arm64_scan) == expected_tuples("arm64")
    assert {f.layer_digest for f in arm64_scan.findings.all()} == {apk_layer_digest(arm64)}
    for attestation in index.attestations:
        assert not Scan.objects.filter(digest=attestation.digest).exists()
    index_scan = services.latest_scan(index.digest)
    assert index_scan.total == 9 and index_scan.critical == 2
    assert index_scan.child_digests == [amd64.digest, arm64.digest]
    summaries = services.summaries_for_digests([index.digest, amd64.digest, "sha256:nothing"])
    assert set(summaries) == {index.digest, amd64.digest}


def _watch_trivy_processes(stop, seen):
    """Read the command line and environment of every Trivy process while it runs (`ps e`)."""
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"trivy" in cmdline and b"image" in cmdline:
                    seen.append((cmdline, Path(f"/proc/{pid}/environ").read_bytes()))
            except OSError:
                continue


def test_htpasswd_registry_scan_keeps_the_credentials_off_argv_env_and_logs(
    trivy_settings,
    htpasswd_registry,
    repo_name,
    trivy_runs,
    caplog,
    django_capture_on_commit_callbacks,
):
    caplog.set_level("DEBUG")
    password = htpasswd_registry.password
    registry = registry_row(htpasswd_registry, name="private")
    image = fixture_image("amd64")
    manifest = push_and_cache(htpasswd_registry, registry, repo_name, "v1", image)
    seen, stop = [], threading.Event()
    watcher = threading.Thread(target=_watch_trivy_processes, args=(stop, seen))
    watcher.start()
    try:
        job = scan_now(django_capture_on_commit_callbacks, registry, manifest, repo_name)
    finally:
        stop.set()
        watcher.join()

    assert job.status == Job.Status.SUCCEEDED, job.error
    assert finding_tuples(services.latest_scan(image.digest)) == expected_tuples("amd64")
    (argv, env), *_ = trivy_runs.calls
    assert password not in " ".join(argv)
    assert not any(password in value for value in env.values())
    assert not {"TRIVY_USERNAME", "TRIVY_PASSWORD", "TRIVY_REGISTRY_TOKEN"} & env.keys()
    assert not Path(env["DOCKER_CONFIG"]).exists()  # removed after the scan
    for cmdline, environ in seen:
        assert password.encode() not in cmdline
        assert password.encode() not in environ
    assert password not in caplog.text
    assert password not in json.dumps(job.result) + job.error + job.target


def test_docker_config_names_the_scanned_registry_only(open_registry):
    open_registry.username = "u"
    open_registry.secret = "p"
    with trivy.private_docker_config(open_registry) as directory:
        assert directory.stat().st_mode & 0o777 == 0o700
        assert (directory / "config.json").stat().st_mode & 0o777 == 0o600
        config = json.loads((directory / "config.json").read_text())
    assert list(config["auths"]) == [open_registry.host]
    assert not directory.exists()


def test_missing_image_fails_readably_without_retry_and_keeps_the_good_result(
    trivy_settings, registry, open_registry, repo_name, django_capture_on_commit_callbacks
):
    image = fixture_image("amd64")
    manifest = push_and_cache(registry, open_registry, repo_name, "v1", image)
    scan_now(django_capture_on_commit_callbacks, open_registry, manifest, repo_name)
    good = services.latest_scan(image.digest)
    images.delete_manifest(registry.url, repo_name, image.digest)

    job = scan_now(django_capture_on_commit_callbacks, open_registry, manifest, repo_name)

    assert job.status == Job.Status.FAILED
    assert job.attempts == 1  # "no such image" is not retried
    assert "MANIFEST_UNKNOWN" in job.error or "manifest unknown" in job.error
    kept = services.latest_scan(image.digest)
    assert kept.finished_at == good.finished_at
    assert finding_tuples(kept) == expected_tuples("amd64")
    assert kept.error == job.error and kept.failed_at is not None


def test_trivy_crash_on_a_broken_db_fails_the_job_and_keeps_the_good_result(
    trivy_settings, registry, open_registry, repo_name, django_capture_on_commit_callbacks
):
    image = fixture_image("amd64")
    manifest = push_and_cache(registry, open_registry, repo_name, "v1", image)
    scan_now(django_capture_on_commit_callbacks, open_registry, manifest, repo_name)
    db_dir = Path(trivy_settings.REGUI_TRIVY_CACHE_DIR) / "db"
    (db_dir / "trivy.db").write_bytes(b"not a bolt database" * 300)
    (db_dir / "metadata.json").write_text(json.dumps({"Version": 2, "UpdatedAt": "x"}))

    job = scan_now(django_capture_on_commit_callbacks, open_registry, manifest, repo_name)

    assert job.status == Job.Status.FAILED
    assert job.error and "\n" not in job.error
    assert finding_tuples(services.latest_scan(image.digest)) == expected_tuples("amd64")


def test_timeout_fails_the_job_with_a_readable_reason(
    trivy_settings,
    registry,
    fault_proxy,
    repo_name,
    django_capture_on_commit_callbacks,
):
    trivy_settings.REGUI_TRIVY_TIMEOUT = 0.5
    slow_registry = registry_row(fault_proxy, name="slow")
    image = fixture_image("amd64")
    manifest = push_and_cache(registry, slow_registry, repo_name, "v1", image)
    fault_proxy.latency(3)

    job = scan_now(django_capture_on_commit_callbacks, slow_registry, manifest, repo_name)

    assert job.status == Job.Status.FAILED
    assert "timed out" in job.error or "did not finish" in job.error
    assert services.latest_scan(image.digest) is None
    assert Scan.objects.get(digest=image.digest).status == Scan.Status.FAILED


def test_same_digest_in_two_registries_is_scanned_once(
    trivy_settings,
    registry,
    fresh_registry,
    repo_name,
    trivy_runs,
    django_capture_on_commit_callbacks,
):
    first = registry_row(registry, name="first", scan_new_images=True)
    second = registry_row(fresh_registry, name="second", scan_new_images=True)
    image = fixture_image("amd64")
    push_and_cache(registry, first, repo_name, "v1", image)
    push_and_cache(fresh_registry, second, "other/name", "prod", image)

    with django_capture_on_commit_callbacks(execute=True):
        queued = services.scan_new_digests(first, [image.digest])
        joined = services.scan_new_digests(second, [image.digest])
    later = services.scan_new_digests(second, [image.digest])

    assert len(trivy_runs.scans) == 1
    assert [job.pk for job in joined] == [job.pk for job in queued]  # joined while queued
    assert later == []  # the result serves every registry holding the digest
    assert Job.objects.filter(kind="scan", digest=image.digest).count() == 1
    assert image.digest in services.summaries_for_digests([image.digest])


def test_second_request_joins_the_active_scan(open_registry, repo_name):
    first = services.request_scan(open_registry, "sha256:" + "a" * 64, repository=repo_name)
    second = services.request_scan(open_registry, "sha256:" + "a" * 64, repository="elsewhere")
    assert second.pk == first.pk
    assert Job.objects.filter(kind="scan").count() == 1


def test_registry_without_scan_policy_queues_nothing(open_registry):
    assert services.scan_new_digests(open_registry, ["sha256:" + "b" * 64]) == []


def test_newer_db_makes_results_stale_and_is_rescanned_first(
    trivy_settings,
    registry,
    open_registry,
    repo_name,
    trivy_runs,
    django_capture_on_commit_callbacks,
):
    old_image, new_image = fixture_image("amd64"), fixture_image("arm64")
    old_manifest = push_and_cache(registry, open_registry, repo_name, "old", old_image)
    push_and_cache(registry, open_registry, repo_name, "never", new_image)
    scan_now(django_capture_on_commit_callbacks, open_registry, old_manifest, repo_name)
    newer = DEFAULT_UPDATED_AT + timedelta(days=30)
    write_trivy_db(
        trivy_settings.REGUI_TRIVY_CACHE_DIR,
        advisories=(*FIXTURE_ADVISORIES, NEWER_DB_ADVISORY),
        updated_at=newer,
    )
    services.refresh_scanner_state(worker_name="test")
    assert services.summaries_for_digests([old_image.digest])[old_image.digest]["stale"]

    open_registry.rescan_limit = 1
    open_registry.save()
    with django_capture_on_commit_callbacks(execute=True):
        jobs = services.queue_scheduled_rescans([open_registry])

    assert [job.digest for job in jobs] == [old_image.digest]  # stale before unscanned
    rescanned = services.latest_scan(old_image.digest)
    assert rescanned.db_updated_at == newer
    assert finding_tuples(rescanned) == expected_tuples("amd64", NEWER_DB_FINDINGS["amd64"])
    assert not services.summaries_for_digests([old_image.digest])[old_image.digest]["stale"]
    with django_capture_on_commit_callbacks(execute=True):
        jobs = services.queue_scheduled_rescans([open_registry])
    assert [job.digest for job in jobs] == [new_image.digest]


def test_scan_through_a_trivy_server_passes_its_token_by_environment_only(
    trivy_settings,
    trivy_server,
    registry,
    open_registry,
    repo_name,
    trivy_runs,
    django_capture_on_commit_callbacks,
):
    trivy_settings.REGUI_TRIVY_SERVER = trivy_server
    trivy_settings.REGUI_TRIVY_TOKEN = TRIVY_SERVER_TOKEN
    trivy_settings.REGUI_TRIVY_SKIP_DB_UPDATE = False  # the server owns the DB
    image = fixture_image("amd64")
    manifest = push_and_cache(registry, open_registry, repo_name, "v1", image)

    job = scan_now(django_capture_on_commit_callbacks, open_registry, manifest, repo_name)

    assert job.status == Job.Status.SUCCEEDED, job.error
    scan = services.latest_scan(image.digest)
    assert finding_tuples(scan) == expected_tuples("amd64")
    assert scan.db_updated_at == DEFAULT_UPDATED_AT  # asked from the server's /version
    (argv, env), *_ = trivy_runs.calls
    assert argv[argv.index("--server") + 1] == trivy_server
    assert TRIVY_SERVER_TOKEN not in " ".join(argv)
    assert env["TRIVY_TOKEN"] == TRIVY_SERVER_TOKEN


def test_wrong_trivy_server_token_fails_the_job(
    trivy_settings,
    trivy_server,
    registry,
    open_registry,
    repo_name,
    django_capture_on_commit_callbacks,
):
    trivy_settings.REGUI_TRIVY_SERVER = trivy_server
    trivy_settings.REGUI_TRIVY_TOKEN = "not-the-token"
    manifest = push_and_cache(registry, open_registry, repo_name, "v1", fixture_image("amd64"))

    job = scan_now(django_capture_on_commit_callbacks, open_registry, manifest, repo_name)

    assert job.status == Job.Status.FAILED
    assert job.error == (
        "image scan error: scan error: scan failed: failed analysis: unable to get missing "
        "layers: unable to fetch missing layers: twirp error unauthenticated: invalid token"
    )


def test_unavailable_registry_is_retried_then_fails(
    trivy_settings, registry, fault_proxy, repo_name, django_capture_on_commit_callbacks
):
    flaky = registry_row(fault_proxy, name="flaky")
    manifest = push_and_cache(registry, flaky, repo_name, "v1", fixture_image("amd64"))
    fault_proxy.error(503, path="/manifests/")

    job = scan_now(django_capture_on_commit_callbacks, flaky, manifest, repo_name)

    assert job.status == Job.Status.FAILED
    assert job.attempts == Job.MAX_ATTEMPTS


def test_registry_back_after_a_failed_attempt_gives_the_result(
    trivy_settings, registry, fault_proxy, repo_name, django_capture_on_commit_callbacks
):
    flaky = registry_row(fault_proxy, name="flaky")
    manifest = push_and_cache(registry, flaky, repo_name, "v1", fixture_image("amd64"))
    # Trivy asks three times per attempt before giving up: the first attempt sees only 503s.
    fault_proxy.error(503, path="/manifests/", times=3)

    job = scan_now(django_capture_on_commit_callbacks, flaky, manifest, repo_name)

    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.attempts == 2
    assert finding_tuples(services.latest_scan(manifest.digest)) == expected_tuples("amd64")


def test_scheduled_task_queues_unscanned_images_up_to_the_limit(
    trivy_settings, registry, open_registry, repo_name, django_capture_on_commit_callbacks
):
    from scanning.tasks import rescan_images

    for tag, arch in (("a", "amd64"), ("b", "arm64")):
        push_and_cache(registry, open_registry, repo_name, tag, fixture_image(arch))
    open_registry.rescan_limit = 1
    open_registry.save()

    with django_capture_on_commit_callbacks(execute=True):
        rescan_images.delay()

    assert Job.objects.filter(kind="scan", status="succeeded").count() == 1
    assert services.current_db_updated_at() == DEFAULT_UPDATED_AT


def test_summaries_for_many_digests_take_one_query(
    trivy_settings,
    registry,
    open_registry,
    repo_name,
    django_assert_num_queries,
    django_capture_on_commit_callbacks,
):
    index = fixture_index()
    manifest = push_and_cache(registry, open_registry, repo_name, "multi", index)
    scan_now(django_capture_on_commit_callbacks, open_registry, manifest, repo_name)
    digests = [index.digest, *(child.digest for child in index.manifests)]

    with django_assert_num_queries(1):
        summaries = services.summaries_for_digests(digests)

    assert set(summaries) == {index.digest, *(child.digest for child in index.children)}
    assert summaries[index.digest]["critical"] == 2
    assert summaries[index.digest]["stale"] is False


def test_db_mirror_on_a_plain_http_registry_feeds_scans_and_staleness(
    trivy_settings,
    registry,
    fresh_registry,
    open_registry,
    repo_name,
    tmp_path,
    trivy_runs,
    django_capture_on_commit_callbacks,
):
    mirror = publish_trivy_db(fresh_registry, "aquasec/trivy-db:2", tmp_path / "db-1")
    trivy_settings.REGUI_TRIVY_CACHE_DIR = str(tmp_path / "empty-cache")  # no DB of its own
    trivy_settings.REGUI_TRIVY_SKIP_DB_UPDATE = False
    trivy_settings.REGUI_TRIVY_DB_REPOSITORY = f"http://{mirror}"
    image = fixture_image("amd64")
    manifest = push_and_cache(registry, open_registry, repo_name, "v1", image)

    job = scan_now(django_capture_on_commit_callbacks, open_registry, manifest, repo_name)

    assert job.status == Job.Status.SUCCEEDED, job.error
    argv = trivy_runs.scans[0]
    assert argv[argv.index("--db-repository") + 1] == mirror and "--insecure" in argv
    assert services.latest_scan(image.digest).db_updated_at == DEFAULT_UPDATED_AT

    newer = DEFAULT_UPDATED_AT + timedelta(days=7)
    publish_trivy_db(
        fresh_registry,
        "aquasec/trivy-db:2",
        tmp_path / "db-2",
        advisories=(*FIXTURE_ADVISORIES, NEWER_DB_ADVISORY),
        updated_at=newer,
    )
    assert services.refresh_scanner_state(worker_name="beat") == newer
    assert services.summaries_for_digests([image.digest])[image.digest]["stale"]
