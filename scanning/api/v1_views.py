"""/api/v1/ scanning: scan results, findings, search across registries, image diffs.

Thin views over scanning.services; the digest's registry decides who may read (viewers).
"""

from django.db.models import Case, IntegerField, Value, When
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response

from registries.api.views import query
from registries.models import Manifest, Tag
from registries.permissions import Action, get_registry, visible_registries
from scanning import services
from scanning.api import v1_serializers as api
from scanning.models import SEVERITIES, Scan

SEVERITY_RANK = Case(
    *[When(severity=name, then=Value(rank)) for rank, name in enumerate(SEVERITIES)],
    default=Value(len(SEVERITIES)),
    output_field=IntegerField(),
)


def visible_tags(user, params):
    """Tags of visible registries matching registry/repository/tag (404/403 for a registry)."""
    if params.get("registry"):
        tags = Tag.objects.filter(
            repository__registry=get_registry(user, Action.VIEW, params["registry"])
        )
    else:
        tags = Tag.objects.filter(repository__registry__in=visible_registries(user))
    if params.get("repository"):
        tags = tags.filter(repository__name=params["repository"])
    if params.get("tag"):
        tags = tags.filter(name=params["tag"])
    return tags


def registry_image(user, registry_id, digest):
    """The registry's cached manifest of the digest, checked for viewing."""
    registry = get_registry(user, Action.VIEW, registry_id)
    manifest = Manifest.objects.filter(registry=registry, digest=digest).first()
    if manifest is None:
        raise Http404("No such image in this registry.")
    return manifest


@extend_schema(parameters=[api.ScanQuerySerializer])
class ScanListView(ListAPIView):
    """Latest scan results of the images of visible registries."""

    serializer_class = api.ScanSerializer
    filter_backends = []

    def get_queryset(self):
        params = query(api.ScanQuerySerializer, self.request)
        self.tags = visible_tags(self.request.user, params)
        digests = self.tags.values("manifest__digest")
        return Scan.objects.filter(digest__in=digests).order_by("-finished_at", "digest")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        page = getattr(self, "page_scans", None)
        if page is None:
            return {**context, "summaries": {}, "tags": {}}
        digests = [scan.digest for scan in page]
        tags = {}
        for tag in self.tags.filter(manifest__digest__in=digests).select_related(
            "repository", "manifest"
        ):
            tags.setdefault(tag.manifest.digest, []).append(tag)
        summaries = services.summaries_for_digests(digests)
        return {**context, "summaries": summaries, "tags": tags}

    def paginate_queryset(self, queryset):
        self.page_scans = super().paginate_queryset(queryset)
        return self.page_scans


@extend_schema(parameters=[api.FindingQuerySerializer])
class FindingListView(ListAPIView):
    """Findings of an image's latest scan (an index: its platforms'), most severe first."""

    serializer_class = api.FindingSerializer
    filter_backends = []

    def get_queryset(self):
        params = query(api.FindingQuerySerializer, self.request)
        manifest = registry_image(self.request.user, params["registry"], self.kwargs["digest"])
        scan = services.latest_scan(manifest.digest)
        if scan is None:
            raise Http404("This image has not been scanned yet.")
        findings = services.findings_of(scan).select_related("scan")
        if params.get("severity"):
            findings = findings.filter(severity__in=params["severity"])
        if params.get("package"):
            findings = findings.filter(package__iexact=params["package"])
        if params.get("vulnerability_id"):
            findings = findings.filter(vulnerability_id__iexact=params["vulnerability_id"])
        if params.get("fixable") is not None:
            findings = (
                findings.exclude(fixed_version="")
                if params["fixable"]
                else findings.filter(fixed_version="")
            )
        return findings.annotate(rank=SEVERITY_RANK).order_by(
            "rank", "vulnerability_id", "package", "id"
        )


@extend_schema(parameters=[api.VulnerabilityQuerySerializer])
class VulnerabilitySearchView(ListAPIView):
    """Tags in every visible registry whose image has the vulnerability or the package."""

    serializer_class = api.SearchHitSerializer
    filter_backends = []

    def get_queryset(self):
        params = query(api.VulnerabilityQuerySerializer, self.request)
        return services.search(
            self.request.user,
            vulnerability_id=params.get("id", ""),
            package=params.get("package", ""),
            below_version=params.get("below_version", ""),
        )


class ImageDiffView(GenericAPIView):
    """What changed in the vulnerabilities between two scanned images of a registry."""

    serializer_class = api.DiffSerializer
    filter_backends = []

    @extend_schema(parameters=[api.DiffQuerySerializer])
    def get(self, request):
        params = query(api.DiffQuerySerializer, request)
        findings = {}
        for side in ("base", "head"):
            manifest = registry_image(request.user, params["registry"], params[side])
            scan = services.latest_scan(manifest.digest)
            if scan is None:
                raise Http404(f"The {side} image has not been scanned yet.")
            findings[side] = services.findings_of(scan)
        diff = services.diff_findings(findings["base"], findings["head"])
        return Response(api.DiffSerializer({**params, **diff}).data)
