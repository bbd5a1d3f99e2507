"""The original Docker Registry UI's scan API, kept compatible: POST /api/scan, GET
/api/scan-results. Roles as everywhere: a viewer reads results, an operator scans.
"""

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.api.serializers import JobSerializer
from jobs.models import Job
from registries.models import Tag
from registries.permissions import Action, get_registry
from scanning import services
from scanning.api.serializers import (
    ImageReferenceSerializer,
    ScanDoneSerializer,
    ScanFailedSerializer,
    ScanRequestSerializer,
    ScanResultsSerializer,
)


def tagged_manifest(registry, repository, tag):
    """The cached manifest a tag points at (404 when the sync has not seen the tag)."""
    found = (
        Tag.objects.filter(repository__registry=registry, repository__name=repository, name=tag)
        .select_related("manifest")
        .first()
    )
    if found is None:
        raise Http404("No such tag in this registry (has it been synced?).")
    return found.manifest


class ScanView(APIView):
    @extend_schema(
        summary="Scan an image (original UI API)",
        request=ScanRequestSerializer,
        responses={200: ScanDoneSerializer, 202: JobSerializer, 502: ScanFailedSerializer},
    )
    def post(self, request):
        data = ScanRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reference = data.validated_data
        registry = get_registry(request.user, Action.SCAN, reference["registry_id"])
        manifest = tagged_manifest(registry, reference["repository"], reference["tag"])
        job = services.request_scan(
            registry,
            manifest,
            repository=reference["repository"],
            user=request.user,
            request=request,
        )
        if reference["wait"]:
            job = services.wait_for_job(job, settings.REGUI_SCAN_WAIT_SECONDS)
            if job.status == Job.Status.SUCCEEDED:
                scan = services.latest_scan(manifest.digest)
                return Response({"status": "success", "vulnerabilities": scan.counts()})
            if job.status == Job.Status.FAILED:
                return Response(
                    {"status": "error", "error": job.error, "job": JobSerializer(job).data},
                    status=status.HTTP_502_BAD_GATEWAY,
                )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ScanResultsView(APIView):
    @extend_schema(
        summary="An image's scan results by layer (original UI API)",
        parameters=[ImageReferenceSerializer],
        responses=ScanResultsSerializer,
    )
    def get(self, request):
        query = ImageReferenceSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        reference = query.validated_data
        registry = get_registry(request.user, Action.VIEW, reference["registry_id"])
        manifest = tagged_manifest(registry, reference["repository"], reference["tag"])
        results = services.scan_results(manifest)
        if results is None:
            raise Http404("This image has not been scanned yet.")
        return Response(results)
