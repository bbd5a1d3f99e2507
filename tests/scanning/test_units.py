"""Pure parts of scanning: Trivy's command line, failure reasons, report parsing, diffs."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from registries.models import Registry
from scanning import reports, services, trivy


def config(**options):
    return trivy.TrivyConfig(binary="/usr/bin/trivy", cache_root=Path("/tmp/cache"), **options)


def registry(url="https://registry.example.com", **fields):
    return Registry(name="r", url=url, username="user", **fields)


def test_command_line_scans_by_digest_without_credentials():
    reg = registry()
    reg.secret_ciphertext = ""
    argv = trivy.command_line(config(), reg, "registry.example.com/app@sha256:abc", "/c/w1")
    assert argv[:4] == ["/usr/bin/trivy", "image", "--image-src", "remote"]
    assert argv[-1] == "registry.example.com/app@sha256:abc"
    assert "--insecure" not in argv
    assert not {"--username", "--password", "--registry-token", "--token"} & set(argv)
    assert argv[argv.index("--cache-dir") + 1] == "/c/w1"


def test_command_line_options():
    argv = trivy.command_line(
        config(skip_db_update=True, offline_scan=True, db_repository="mirror.local/trivy-db:2"),
        registry("http://127.0.0.1:5000"),
        "ref",
        "/c",
    )
    assert {"--skip-db-update", "--offline-scan", "--insecure"} <= set(argv)
    assert argv[argv.index("--db-repository") + 1] == "mirror.local/trivy-db:2"


def test_server_mode_leaves_the_db_to_the_server_and_the_token_to_the_environment(tmp_path):
    server = config(server="http://trivy:4954", token="t0ken", skip_db_update=True)
    argv = trivy.command_line(server, registry(verify_tls=False), "ref", "/c")
    assert argv[argv.index("--server") + 1] == "http://trivy:4954"
    assert "--skip-db-update" not in argv and "t0ken" not in argv
    assert "--insecure" in argv  # TLS verification switched off for this registry
    env = trivy.child_environment(server, tmp_path)
    assert env["TRIVY_TOKEN"] == "t0ken" and env["DOCKER_CONFIG"] == str(tmp_path)


def test_child_environment_drops_the_callers_trivy_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("TRIVY_PASSWORD", "leak")
    monkeypatch.setenv("TRIVY_USERNAME", "leak")
    env = trivy.child_environment(config(), tmp_path)
    assert not [name for name in env if name.startswith("TRIVY_")]


@pytest.mark.parametrize(
    ("stderr", "transient", "reason"),
    [
        (
            "2024-01-01T00:00:00Z\tFATAL\tFatal error\tunable to find the specified image\n"
            "\t* remote error: GET http://r/v2/a/manifests/v1: MANIFEST_UNKNOWN: manifest unknown",
            False,
            "remote error: GET http://r/v2/a/manifests/v1: MANIFEST_UNKNOWN: manifest unknown",
        ),
        (
            "2024-01-01T00:00:00Z\tFATAL\tFatal error\tdial tcp 127.0.0.1:1: connection refused",
            True,
            "dial tcp 127.0.0.1:1: connection refused",
        ),
        ("boom: context deadline exceeded", False, "Trivy timed out (REGUI_TRIVY_TIMEOUT)."),
        ("", False, "Trivy exited with status 2"),
    ],
)
def test_failure_reasons(stderr, transient, reason):
    error = trivy.classify_failure(2, stderr)
    assert (error.transient, error.reason) == (transient, reason)


def test_seed_database_copies_a_newer_db_only(tmp_path):
    root, worker = tmp_path / "root", tmp_path / "worker"
    (root / "db").mkdir(parents=True)
    (root / "db" / "trivy.db").write_bytes(b"db-1")
    (root / "db" / "metadata.json").write_text('{"UpdatedAt": "2025-01-01T00:00:00Z"}')
    trivy.seed_database(root, worker)
    assert (worker / "db" / "trivy.db").read_bytes() == b"db-1"
    (worker / "db" / "trivy.db").write_bytes(b"in use")
    trivy.seed_database(root, worker)  # same metadata: the worker's copy stays
    assert (worker / "db" / "trivy.db").read_bytes() == b"in use"
    (root / "db" / "trivy.db").write_bytes(b"db-2")
    (root / "db" / "metadata.json").write_text('{"UpdatedAt": "2025-02-01T00:00:00Z"}')
    trivy.seed_database(root, worker)
    assert (worker / "db" / "trivy.db").read_bytes() == b"db-2"
    assert trivy.db_updated_at(trivy.read_db_metadata(worker)).month == 2


def vulnerability(vuln_id, package, severity, fixed="", diff_id="sha256:d2", digest=""):
    return {
        "VulnerabilityID": vuln_id,
        "PkgName": package,
        "InstalledVersion": "1.0",
        "FixedVersion": fixed,
        "Severity": severity,
        "Layer": {"DiffID": diff_id, "Digest": digest},
    }


def test_parse_findings_maps_diff_ids_to_the_manifest_layers():
    report = {
        "Results": [
            {
                "Target": "img (alpine 3.18.4)",
                "Class": "os-pkgs",
                "Type": "alpine",
                "Vulnerabilities": [
                    vulnerability("CVE-1", "zlib", "HIGH", "1.1", digest="sha256:from-cache"),
                    vulnerability(
                        "CVE-2", "musl", "weird", diff_id="sha256:other", digest="sha256:g"
                    ),
                ],
            },
            {"Target": "no vulnerabilities here", "Class": "lang-pkgs"},
        ]
    }
    layer_map = reports.layer_digest_by_diff_id(
        [{"digest": "sha256:l1"}, {"digest": "sha256:l2"}], ["sha256:d1", "sha256:d2"]
    )
    first, second = reports.parse_findings(report, layer_map)
    assert first.layer_digest == "sha256:l2"  # the manifest's, not Trivy's cached one
    assert second.layer_digest == "sha256:g"  # unknown diff id: Trivy's digest as fallback
    assert second.severity == "UNKNOWN"
    assert reports.summarize([first, second]) == {
        "critical": 0,
        "high": 1,
        "medium": 0,
        "low": 0,
        "unknown": 1,
        "total": 2,
        "fixable": 1,
    }
    assert reports.parse_findings({"SchemaVersion": 2}) == []  # no Results at all


def test_version_key_orders_numbers_as_numbers():
    key = services.version_key
    assert key("1.2.13-r0") < key("1.2.13-r1") < key("1.2.14")
    assert key("1.10.0") > key("1.9.9")
    assert key("8.4.0-r0") < key("8.10")


def test_diff_findings():
    def finding(vuln, package):
        return SimpleNamespace(vulnerability_id=vuln, package=package)

    before = [finding("CVE-1", "a"), finding("CVE-2", "b")]
    after = [finding("CVE-2", "b"), finding("CVE-3", "c")]
    changes = services.diff_findings(before, after)
    assert {k: [(f.vulnerability_id, f.package) for f in v] for k, v in changes.items()} == {
        "added": [("CVE-3", "c")],
        "fixed": [("CVE-1", "a")],
        "unchanged": [("CVE-2", "b")],
    }


def test_docker_config_json_is_for_one_host():
    reg = registry("https://registry.example.com:5000")
    reg.secret_ciphertext = ""
    config_json = json.dumps(trivy.docker_config_json(reg))
    assert list(json.loads(config_json)["auths"]) == ["registry.example.com:5000"]


def test_plain_http_db_mirror_adds_insecure_and_loses_its_scheme():
    mirror = config(db_repository="http://mirror.internal:5000/aquasec/trivy-db:2")
    argv = trivy.command_line(mirror, registry(), "ref", "/c")
    assert argv[argv.index("--db-repository") + 1] == "mirror.internal:5000/aquasec/trivy-db:2"
    assert "--insecure" in argv
