"""What the browsing pages show about scans, read through the scanning app when installed."""

from django.apps import apps
from django.db.models import Count, Q, Sum

from registries.models import Manifest, Tag

SEVERITY_FIELDS = ("critical", "high", "medium", "low", "unknown")


def available():
    return apps.is_installed("scanning")


def summaries(digests):
    """{digest: summary} for the digests that have a scan (the scanning app's own answer)."""
    if not available() or not digests:
        return {}
    try:
        from scanning.services import summaries_for_digests
    except ImportError:  # the scanning app without its service layer yet
        return {}
    return summaries_for_digests(list(dict.fromkeys(digests)))


def overview_by_registry(registry_ids):
    """{registry id: {images, scanned, critical, high, medium, low, unknown}} per registry.

    Counts distinct tagged digests once, however many tags point at them.
    """
    if not available() or not registry_ids:
        return {}
    from scanning.models import Scan

    overview = {}
    for registry_id in registry_ids:
        tagged = Tag.objects.filter(repository__registry_id=registry_id).values("manifest_id")
        digests = Manifest.objects.filter(pk__in=tagged).values("digest")
        images = Manifest.objects.filter(pk__in=tagged).count()
        totals = Scan.objects.filter(digest__in=digests).aggregate(
            scanned=Count("id", filter=Q(status="succeeded")),
            **{name: Sum(name, filter=Q(status="succeeded")) for name in SEVERITY_FIELDS},
        )
        overview[registry_id] = {
            "images": images,
            **{key: value or 0 for key, value in totals.items()},
        }
    return overview
