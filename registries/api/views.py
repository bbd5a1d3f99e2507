"""The registry API: registries and members, cached contents, deletes and bulk cleanup.

Every view asks registries.permissions: a registry the caller has no role in is a 404, a role
too low for the action a 403.
"""

from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response

from audit import log
from audit.models import AuditEvent
from jobs.api.serializers import JobSerializer
from registries import browse, cleanup, connection, deletion, sync
from registries.api import filtersets
from registries.api.serializers import (
    CleanupPlanSerializer,
    CleanupRequestSerializer,
    DeletionResultSerializer,
    ImageSerializer,
    MemberSerializer,
    MemberUpdateSerializer,
    ProbeResultSerializer,
    RegistrySerializer,
    RepositorySerializer,
    TagSerializer,
)
from registries.client import DeleteNotSupported
from registries.models import Manifest, Membership, Registry, Repository, Tag
from registries.permissions import Action, get_registry, roles_by_registry, visible_registries
from scanning.services import summaries_for_digests

# Fields whose changes are worth an audit line; the secret is noted as "changed", never shown.
AUDITED_FIELDS = set(RegistrySerializer.Meta.fields) - set(RegistrySerializer.Meta.read_only_fields)


class RegistryRefused(APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "The registry refused the request."


class DeleteDisabled(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = deletion.ENABLE_DELETE_HINT


class PlanChanged(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = (
        "The plan changed since that dry run (a sync or another delete): dry-run again."
    )


def deletion_error(error):
    """The API error for a delete the registry did not do; nothing changed in the cache."""
    if isinstance(error.__cause__, DeleteNotSupported):
        return DeleteDisabled(str(error))
    return RegistryRefused(str(error))


def deletion_answer(repository, outcome):
    return DeletionResultSerializer(
        {
            "digest": outcome.digest,
            "removed_tags": [{"repository": repository.name, "tag": tag} for tag in outcome.tags],
            "already_gone": outcome.already_gone,
            "message": outcome.message,
        }
    ).data


def query(serializer_class, request):
    """The validated query string (a 400 with field errors when it is bad)."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _changes(serializer):
    changed = sorted(field for field in serializer.validated_data if field in AUDITED_FIELDS)
    return {
        field: "(changed)" if field == "secret" else str(serializer.validated_data[field])
        for field in changed
    }


@extend_schema_view(
    list=extend_schema(summary="Registries you are a member of"),
    create=extend_schema(summary="Add a registry (superusers)"),
    retrieve=extend_schema(summary="One registry"),
    partial_update=extend_schema(summary="Change a registry's settings (registry admins)"),
    destroy=extend_schema(summary="Remove a registry and its cached data (registry admins)"),
)
class RegistryViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = RegistrySerializer
    queryset = Registry.objects.none()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    ordering_fields = ["name", "created_at", "last_synced_at"]
    ordering = ["name"]

    DETAIL_ACTIONS = {
        "retrieve": Action.VIEW,
        "partial_update": Action.CHANGE_REGISTRY,
        "destroy": Action.CHANGE_REGISTRY,
        "test": Action.CHANGE_REGISTRY,
        "sync": Action.SYNC,
    }

    def get_queryset(self):
        return visible_registries(self.request.user)

    def get_object(self):
        return get_registry(self.request.user, self.DETAIL_ACTIONS[self.action], self.kwargs["pk"])

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self, "swagger_fake_view", False) or not self.request.user.is_authenticated:
            return context
        return {**context, "roles": roles_by_registry(self.request.user)}

    def create(self, request, *args, **kwargs):
        # Refused before the body is read, so a 403 never depends on what was sent.
        if not request.user.is_superuser:
            raise PermissionDenied("Only superusers add registries.")
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        self._save_and_record(serializer, "registry.created")

    def perform_update(self, serializer):
        self._save_and_record(serializer, "registry.changed")

    def _save_and_record(self, serializer, action):
        with transaction.atomic():
            registry = serializer.save()
            log.record(
                action,
                request=self.request,
                registry=registry,
                target=registry.name,
                params=_changes(serializer),
            )

    def perform_destroy(self, registry):
        with transaction.atomic():
            log.record("registry.deleted", request=self.request, registry=registry, target=registry)
            registry.delete()

    @extend_schema(
        request=None,
        responses=ProbeResultSerializer,
        summary="Test the connection (registry admins)",
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        registry = self.get_object()
        report = connection.probe(registry, request=request)
        return Response(
            ProbeResultSerializer(
                {
                    "ok": report.ok,
                    "message": report.summary(),
                    "auth_scheme": report.auth_scheme,
                    "delete_enabled": report.delete_enabled,
                }
            ).data
        )

    @extend_schema(
        request=None,
        responses={202: JobSerializer},
        summary="Sync the registry's contents now (operators); poll the job",
    )
    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        registry = self.get_object()
        job = sync.request_sync(registry, user=request.user)
        log.record(
            "registry.sync",
            request=request,
            registry=registry,
            target=registry,
            params={"job": job.pk},
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(summary="The registry's user members (registry admins)"),
    create=extend_schema(summary="Give a user a role in the registry"),
    partial_update=extend_schema(summary="Change a member's role", request=MemberUpdateSerializer),
    destroy=extend_schema(summary="Remove a member"),
)
class MemberViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = MemberSerializer
    queryset = Membership.objects.none()
    lookup_field = "user_id"
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    ordering_fields = ["created_at", "role"]
    ordering = ["user__username"]

    def registry(self):
        if not hasattr(self, "_registry"):
            self._registry = get_registry(
                self.request.user, Action.MANAGE_MEMBERS, self.kwargs["registry_pk"]
            )
        return self._registry

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        return Membership.objects.filter(
            registry=self.registry(), user__isnull=False
        ).select_related("user")

    def get_serializer_class(self):
        return MemberUpdateSerializer if self.action == "partial_update" else MemberSerializer

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self, "swagger_fake_view", False):
            return context
        return {**context, "registry": self.registry()}

    def get_object(self):
        return get_object_or_404(self.get_queryset(), user_id=self.kwargs["user_id"])

    def _record(self, verb, membership):
        log.record(
            f"membership.{verb}",
            request=self.request,
            registry=membership.registry,
            target=membership.user.username,
            params={"role": membership.role},
        )

    def perform_create(self, serializer):
        with transaction.atomic():
            self._record("added", serializer.save())

    def perform_update(self, serializer):
        with transaction.atomic():
            self._record("changed", serializer.save())

    def perform_destroy(self, membership):
        with transaction.atomic():
            self._record("removed", membership)
            membership.delete()


class RepositoryListView(ListAPIView):
    """Repositories of the registries you can see, with their tag counts and sizes."""

    serializer_class = RepositorySerializer
    filterset_class = filtersets.RepositoryFilterSet
    ordering_fields = ["name", "tag_count", "size_bytes", "last_created"]
    ordering = ["registry_id", "name"]

    def get_queryset(self):
        return Repository.objects.filter(registry__in=visible_registries(self.request.user))


@extend_schema(parameters=[filtersets.TagQuerySerializer])
class TagListView(ListAPIView):
    """The tags of one repository with their image facts, sibling tags and scan summary."""

    serializer_class = TagSerializer
    filter_backends = []  # the query is validated by TagQuerySerializer

    def get_queryset(self):
        params = query(filtersets.TagQuerySerializer, self.request)
        registry = get_registry(self.request.user, Action.VIEW, params["registry"])
        self.repository = get_object_or_404(
            Repository, registry=registry, name=params["repository"]
        )
        _, tags = browse.tags(self.repository, params.get("search", ""), params["ordering"])
        return tags.select_related("repository")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        page = getattr(self, "page_tags", None)
        if page is None:
            return context
        siblings = browse.siblings(self.repository, page)
        return {
            **context,
            "siblings": {
                (self.repository.pk, manifest_id): names for manifest_id, names in siblings.items()
            },
            "summaries": summaries_for_digests({tag.manifest.digest for tag in page}),
        }

    def paginate_queryset(self, queryset):
        self.page_tags = super().paginate_queryset(queryset)
        return self.page_tags


class ImageView(GenericAPIView):
    """One image (manifest or index) of a registry, by digest."""

    serializer_class = ImageSerializer
    filter_backends = []

    def manifest(self, action, params):
        registry = get_registry(self.request.user, action, params["registry"])
        try:
            return registry, Manifest.objects.get(registry=registry, digest=self.kwargs["digest"])
        except Manifest.DoesNotExist:
            raise Http404("No such image in this registry.") from None

    @extend_schema(parameters=[filtersets.RegistryQuerySerializer], summary="Image details")
    def get(self, request, digest):
        params = query(filtersets.RegistryQuerySerializer, request)
        _, manifest = self.manifest(Action.VIEW, params)
        context = {
            **self.get_serializer_context(),
            "summaries": summaries_for_digests([manifest.digest]),
        }
        return Response(ImageSerializer(manifest, context=context).data)

    @extend_schema(
        parameters=[filtersets.ImageDeleteQuerySerializer],
        summary="Delete a digest from a repository (operators), with all its tags",
        responses={200: DeletionResultSerializer},
    )
    def delete(self, request, digest):
        params = query(filtersets.ImageDeleteQuerySerializer, request)
        registry, manifest = self.manifest(Action.DELETE_TAG, params)
        repository = get_object_or_404(Repository, registry=registry, name=params["repository"])
        names = sorted(
            Tag.objects.filter(repository=repository, manifest=manifest).values_list(
                "name", flat=True
            )
        )
        audit = {"repository": repository.name, "digest": digest, "tags": names}
        try:
            outcome = deletion.delete_digest(repository, manifest.digest, names)
        except deletion.DeletionError as error:
            log.record(
                "image.delete",
                request=request,
                registry=registry,
                target=f"{repository.name}@{digest}",
                params=audit,
                result=AuditEvent.Result.FAILED,
                message=str(error),
            )
            raise deletion_error(error) from None
        log.record(
            "image.delete",
            request=request,
            registry=registry,
            target=f"{repository.name}@{digest}",
            params=audit,
            message=outcome.message,
        )
        return Response(deletion_answer(repository, outcome))


class TagDetailView(GenericAPIView):
    """One tag by id (from the tag list)."""

    serializer_class = TagSerializer
    filter_backends = []

    def tag(self, action):
        tag = get_object_or_404(
            Tag.objects.select_related("repository__registry", "manifest"), pk=self.kwargs["pk"]
        )
        get_registry(self.request.user, action, tag.repository.registry_id)
        return tag

    @extend_schema(summary="One tag")
    def get(self, request, pk):
        tag = self.tag(Action.VIEW)
        context = {
            **self.get_serializer_context(),
            "siblings": {
                (tag.repository_id, manifest_id): names
                for manifest_id, names in browse.siblings(tag.repository, [tag]).items()
            },
            "summaries": summaries_for_digests([tag.manifest.digest]),
        }
        return Response(TagSerializer(tag, context=context).data)

    @extend_schema(
        summary="Delete a tag (operators): its digest goes, with every sibling tag",
        responses={200: DeletionResultSerializer},
    )
    def delete(self, request, pk):
        tag = self.tag(Action.DELETE_TAG)
        try:
            outcome = deletion.delete_tag(tag, user=request.user, request=request)
        except deletion.DeletionError as error:
            raise deletion_error(error) from None
        return Response(deletion_answer(tag.repository, outcome))


class CleanupView(GenericAPIView):
    """Bulk cleanup of one registry by rules (registry admins)."""

    serializer_class = CleanupRequestSerializer
    filter_backends = []

    @extend_schema(
        summary="Dry-run (default) or run a bulk cleanup",
        responses={200: CleanupPlanSerializer, 202: JobSerializer},
    )
    def post(self, request):
        serializer = CleanupRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        params = serializer.validated_data
        registry = get_registry(request.user, Action.CLEANUP, params["registry"])
        rules = params["rules"]
        plan = cleanup.build_plan(registry, rules)
        if params["dry_run"]:
            return Response(CleanupPlanSerializer(plan, context={"rules": rules}).data)
        if params.get("fingerprint", plan.fingerprint) != plan.fingerprint:
            raise PlanChanged()
        job = cleanup.start_cleanup(registry, rules, plan, user=request.user, request=request)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
