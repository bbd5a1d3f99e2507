"""The one place that turns a Trivy JSON report into Scan and Finding rows."""

import json
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from scanning.models import SEVERITIES, Finding, Scan


@dataclass(frozen=True)
class ParsedFinding:
    vulnerability_id: str
    package: str
    installed_version: str
    fixed_version: str
    status: str
    severity: str
    title: str
    primary_url: str
    layer_digest: str
    layer_diff_id: str
    target: str
    class_name: str
    package_type: str


def layer_digest_by_diff_id(layers, diff_ids):
    """{diff id: compressed blob digest}: config and manifest list the layers in one order."""
    return {diff_id: layer["digest"] for diff_id, layer in zip(diff_ids, layers, strict=False)}


def manifest_layer_map(manifest):
    if manifest is None:
        return {}
    diff_ids = (manifest.config or {}).get("rootfs", {}).get("diff_ids") or []
    return layer_digest_by_diff_id(manifest.layers or [], diff_ids)


def parse_findings(report, layer_map=None):
    """Every vulnerability of the report, with the real compressed layer digest when known.

    Trivy's own Layer.Digest is only a fallback: it comes from its layer cache, which may have
    learnt the layer from another source.
    """
    layer_map = layer_map or {}
    findings = []
    for result in report.get("Results") or []:
        for vulnerability in result.get("Vulnerabilities") or []:
            layer = vulnerability.get("Layer") or {}
            diff_id = layer.get("DiffID", "")
            severity = vulnerability.get("Severity", "UNKNOWN").upper()
            findings.append(
                ParsedFinding(
                    vulnerability_id=vulnerability.get("VulnerabilityID", ""),
                    package=vulnerability.get("PkgName", ""),
                    installed_version=vulnerability.get("InstalledVersion", ""),
                    fixed_version=vulnerability.get("FixedVersion", ""),
                    status=vulnerability.get("Status", ""),
                    severity=severity if severity in SEVERITIES else "UNKNOWN",
                    title=vulnerability.get("Title", "")[:2000],
                    primary_url=vulnerability.get("PrimaryURL", "")[:500],
                    layer_digest=layer_map.get(diff_id) or layer.get("Digest", ""),
                    layer_diff_id=diff_id,
                    target=result.get("Target", "")[:500],
                    class_name=result.get("Class", ""),
                    package_type=result.get("Type", ""),
                )
            )
    return findings


def summarize(findings):
    """Counts per severity, total and fixable (a fix version exists)."""
    counts = dict.fromkeys(("critical", "high", "medium", "low", "unknown"), 0)
    for finding in findings:
        counts[finding.severity.lower()] += 1
    counts["total"] = len(findings)
    counts["fixable"] = sum(1 for finding in findings if finding.fixed_version)
    return counts


def detected_os(report):
    os_info = (report.get("Metadata") or {}).get("OS") or {}
    return " ".join(part for part in (os_info.get("Family"), os_info.get("Name")) if part)


@transaction.atomic
def store_result(digest, output, manifest=None):
    """Replace the digest's result with this successful scan (ScanOutput from scanning.trivy)."""
    findings = parse_findings(output.report, manifest_layer_map(manifest))
    scan, _ = Scan.objects.select_for_update().get_or_create(
        digest=digest, defaults={"status": Scan.Status.SUCCEEDED}
    )
    scan.status = Scan.Status.SUCCEEDED
    scan.child_digests = []
    scan.trivy_version = output.trivy_version
    scan.db_updated_at = output.db_updated_at
    scan.os = detected_os(output.report)[:100]
    scan.started_at, scan.finished_at = output.started_at, timezone.now()
    scan.error, scan.failed_at = "", None
    for name, value in summarize(findings).items():
        setattr(scan, name, value)
    scan.set_report(json.dumps(output.report, separators=(",", ":")))
    scan.save()
    scan.findings.all().delete()
    Finding.objects.bulk_create(Finding(scan=scan, **finding.__dict__) for finding in findings)
    return scan


@transaction.atomic
def store_index_summary(digest, child_scans):
    """An index's result: its platform children's counts added up, the oldest DB date."""
    scan, _ = Scan.objects.select_for_update().get_or_create(
        digest=digest, defaults={"status": Scan.Status.SUCCEEDED}
    )
    scan.status = Scan.Status.SUCCEEDED
    scan.child_digests = [child.digest for child in child_scans]
    scan.trivy_version = child_scans[0].trivy_version if child_scans else ""
    dates = [child.db_updated_at for child in child_scans if child.db_updated_at]
    scan.db_updated_at = min(dates, default=None)
    scan.os = ", ".join(sorted({child.os for child in child_scans if child.os}))[:100]
    scan.started_at = min((c.started_at for c in child_scans if c.started_at), default=None)
    scan.finished_at = timezone.now()
    scan.error, scan.failed_at = "", None
    for name in ("critical", "high", "medium", "low", "unknown", "total", "fixable"):
        setattr(scan, name, sum(getattr(child, name) for child in child_scans))
    scan.report_zlib = b""
    scan.save()
    return scan


@transaction.atomic
def store_failure(digest, reason):
    """Note a failed attempt; an earlier good result stays as it was."""
    scan, created = Scan.objects.select_for_update().get_or_create(
        digest=digest, defaults={"status": Scan.Status.FAILED}
    )
    scan.error, scan.failed_at = reason[:4000], timezone.now()
    scan.save(update_fields=["error", "failed_at"])
    return scan
