"""Read-only queries behind the browsing pages: one query per list, whatever its length.

Pages read only the cache the sync keeps in the database, never the registry itself.
"""

import json
import re
from collections import defaultdict
from functools import lru_cache

from django.core.cache import cache
from django.db import connection
from django.db.backends.signals import connection_created
from django.db.models import Count, F, Func, Max, Q, TextField
from django.dispatch import receiver

from registries.models import IndexChild, Manifest, Repository, Tag

# Heavy columns a listing never needs; the image page loads them for one manifest.
MANIFEST_HEAVY = ("manifest__raw", "manifest__config", "manifest__layers", "manifest__labels")

NATURAL_DIGITS = 20


def natural_key(text):
    """The same key as NaturalSortKey, in Python: every digit run zero-padded to 20 digits."""
    return re.sub(r"\d+", lambda match: match.group().zfill(NATURAL_DIGITS), text or "")


class NaturalSortKey(Func):
    """A sort key that orders `1.9` before `1.10`: digit runs zero-padded in SQL.

    PostgreSQL pads with two regexp_replace calls (prefix every digit run with zeros, then keep
    its last 20 digits) compared in "C" collation; SQLite calls natural_key() registered below.
    Runs longer than 20 digits still sort, only less precisely.
    """

    output_field = TextField()
    arity = 1

    def as_postgresql(self, compiler, conn, **extra_context):
        padding = "0" * NATURAL_DIGITS
        template = (
            f"regexp_replace(regexp_replace(%(expressions)s, '([0-9]+)', '{padding}\\1', 'g'), "
            f"'0*([0-9]{{{NATURAL_DIGITS}}})', '\\1', 'g') COLLATE \"C\""
        )
        return self.as_sql(compiler, conn, template=template, **extra_context)

    def as_sqlite(self, compiler, conn, **extra_context):
        return self.as_sql(compiler, conn, function="regui_natural_key", **extra_context)


@receiver(connection_created)
def _register_sqlite_natural_key(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "regui_natural_key", 1, natural_key, deterministic=True
        )


REPOSITORY_SORTS = {
    "name": ("name",),
    "tags": ("tag_count", "name"),
    "size": ("size_bytes", "name"),
    "created": ("last_created", "name"),
}
TAG_SORTS = {
    "name": (NaturalSortKey("name"), "name"),
    # Ties (sibling tags share created date and size) are rare: plain name order is enough,
    # and it spares PostgreSQL a natural key for every tag of the repository.
    "created": (F("manifest__created"), "name"),
    "size": (F("manifest__size_bytes"), "name"),
}
DEFAULT_REPOSITORY_SORT = "name"
DEFAULT_TAG_SORT = "-created"


def _ordering(sorts, sort, default):
    """Order-by expressions for `sort` ("key" or "-key"), nulls last; ties by name, ascending."""
    key = sort.lstrip("-")
    if key not in sorts:
        sort, key = default, default.lstrip("-")
    first, *ties = (F(term) if isinstance(term, str) else term for term in sorts[key])
    primary = first.desc(nulls_last=True) if sort.startswith("-") else first.asc(nulls_last=True)
    return sort, [primary, *(tie.asc() for tie in ties)]


def repositories(registry, search="", sort=DEFAULT_REPOSITORY_SORT):
    """(sort actually used, queryset) of the registry's repositories."""
    queryset = Repository.objects.filter(registry=registry)
    if search:
        queryset = queryset.filter(name__icontains=search.strip())
    sort, ordering = _ordering(REPOSITORY_SORTS, sort, DEFAULT_REPOSITORY_SORT)
    return sort, queryset.order_by(*ordering)


def namespaces(registry):
    """[(namespace, repository count)] for the grouping filter, top level first."""
    counts = defaultdict(int)
    for name in Repository.objects.filter(registry=registry).values_list("name", flat=True):
        counts[name.rsplit("/", 1)[0] if "/" in name else ""] += 1
    return sorted(counts.items())


def tags(repository, search="", sort=DEFAULT_TAG_SORT):
    """(sort actually used, queryset) of the repository's tags, their manifests joined."""
    queryset = (
        Tag.objects.filter(repository=repository).select_related("manifest").defer(*MANIFEST_HEAVY)
    )
    if search:
        queryset = queryset.filter(name__icontains=search.strip())
    sort, ordering = _ordering(TAG_SORTS, sort, DEFAULT_TAG_SORT)
    return sort, queryset.order_by(*ordering)


def tag_listing(repository, search="", sort=DEFAULT_TAG_SORT):
    """(sort used, TagListing) for the repository page: tag ids in order first, then only the
    rows of the page shown.

    Ordering ids alone lets PostgreSQL sort narrow rows (a third of the time of sorting whole
    tag + manifest rows for 10,000 tags). The natural name key in SQL would cost two
    regexp_replace calls per tag on every request, so that order is computed once in Python
    and kept per repository until its set of tags changes.
    """
    if sort.lstrip("-") != "name":
        sort, queryset = tags(repository, search, sort)
        return sort, TagListing(queryset.values_list("id", flat=True))
    rows = _natural_order(repository.pk, *_tag_set_version(repository))
    needle = search.strip().lower()
    ids = [tag_id for tag_id, lowered in rows if needle in lowered]
    if sort.startswith("-"):
        ids.reverse()
    return sort, TagListing(ids)


def _tag_set_version(repository):
    """(count, highest id) of the repository's tags: changes whenever a tag comes or goes."""
    version = Tag.objects.filter(repository=repository).aggregate(count=Count("id"), top=Max("id"))
    return version["count"], version["top"]


@lru_cache(maxsize=64)
def _natural_order(repository_id, count, top_id):
    """((tag id, lowercased name)...) of the repository in natural name order."""
    rows = Tag.objects.filter(repository_id=repository_id).values_list("id", "name")
    ordered = sorted(rows, key=lambda row: (natural_key(row[1]), row[1]))
    return tuple((tag_id, name.lower()) for tag_id, name in ordered)


class TagListing:
    """Tag ids in display order (a list or an id queryset); Paginator slices it, and a slice
    fetches just those tags, their manifests joined."""

    def __init__(self, ids):
        self.ids = ids

    def count(self):
        return len(self.ids) if isinstance(self.ids, list) else self.ids.count()

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        ids = list(self.ids[index]) if isinstance(index, slice) else [self.ids[index]]
        rows = Tag.objects.filter(pk__in=ids).select_related("manifest").defer(*MANIFEST_HEAVY)
        by_id = {tag.pk: tag for tag in rows}
        found = [by_id[tag_id] for tag_id in ids if tag_id in by_id]
        return found if isinstance(index, slice) else found[0]


def siblings(repository, tags_shown):
    """{manifest id: [tag names]} of every tag in the repository sharing a shown digest."""
    manifest_ids = {tag.manifest_id for tag in tags_shown}
    names = defaultdict(list)
    rows = (
        Tag.objects.filter(repository=repository, manifest_id__in=manifest_ids)
        .order_by(NaturalSortKey("name"))
        .values_list("manifest_id", "name")
    )
    for manifest_id, name in rows:
        names[manifest_id].append(name)
    return names


def platform_children(manifest):
    """The index's platform children (attestations left out), their manifests joined."""
    return list(
        IndexChild.objects.filter(index=manifest, is_attestation=False)
        .select_related("child")
        .order_by("position")
    )


def images_of_registries(registry_ids):
    """Manifests still referenced: tagged ones and the platform children of tagged indexes."""
    tagged = Tag.objects.filter(repository__registry_id__in=registry_ids).values("manifest_id")
    children = IndexChild.objects.filter(index_id__in=tagged, child__isnull=False).values(
        "child_id"
    )
    return Manifest.objects.filter(Q(pk__in=tagged) | Q(pk__in=children))


STORAGE_SQL = """
WITH tagged AS (
    SELECT DISTINCT t.manifest_id AS id
    FROM registries_tag t JOIN registries_repository r ON r.id = t.repository_id
    WHERE r.registry_id = ANY(%s)
), images AS (
    SELECT id FROM tagged
    UNION
    SELECT c.child_id FROM registries_indexchild c JOIN tagged ON c.index_id = tagged.id
    WHERE c.child_id IS NOT NULL
), blobs AS (
    SELECT m.registry_id, layer->>'digest' AS digest, (layer->>'size')::bigint AS size
    FROM registries_manifest m JOIN images ON images.id = m.id,
         jsonb_array_elements(m.layers) AS layer
    UNION
    SELECT m.registry_id, m.config_digest, m.config_size
    FROM registries_manifest m JOIN images ON images.id = m.id
    WHERE m.config_digest <> ''
)
SELECT registry_id, COALESCE(SUM(size), 0) FROM blobs GROUP BY registry_id
"""


STORAGE_CACHE_SECONDS = 300


def cached_storage_by_registry(registries, tag_totals):
    """storage_by_registry, remembered until a registry syncs or its tag count changes.

    Adding up distinct blobs reads every manifest of a registry (tens of milliseconds for
    10,000 tags), too much for each dashboard view; the key changes with any sync or delete,
    and a short expiry bounds what a push notification could leave stale.
    """
    keys = {}
    for registry in registries:
        synced = registry.last_synced_at.timestamp() if registry.last_synced_at else 0
        tag_total = tag_totals.get(registry.pk, 0)
        keys[registry.pk] = f"regui:storage:{registry.pk}:{synced}:{tag_total}"
    found = cache.get_many(list(keys.values()))
    missing = [registry_id for registry_id, key in keys.items() if key not in found]
    fresh = storage_by_registry(missing)
    cache.set_many(
        {keys[registry_id]: fresh.get(registry_id, 0) for registry_id in missing},
        timeout=STORAGE_CACHE_SECONDS,
    )
    return {
        registry_id: found[key] if key in found else fresh.get(registry_id, 0)
        for registry_id, key in keys.items()
    }


def storage_by_registry(registry_ids):
    """{registry id: bytes of distinct blobs}: a blob shared by many images counts once."""
    registry_ids = list(registry_ids)
    if not registry_ids:
        return {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(STORAGE_SQL, [registry_ids])
            return {registry_id: int(size) for registry_id, size in cursor.fetchall()}
    blobs = defaultdict(dict)
    for manifest in images_of_registries(registry_ids).only(
        "registry_id", "layers", "config_digest", "config_size"
    ):
        blobs[manifest.registry_id].update(manifest.blob_sizes())
    return {registry_id: sum(sizes.values()) for registry_id, sizes in blobs.items()}


def history_lines(config, layers):
    """The image history as Dockerfile-like lines, each with the layer it made (or None).

    Layers are matched to history entries in order, skipping entries marked `empty_layer`.
    """
    layer_iter = iter(layers or [])
    lines = []
    for entry in (config or {}).get("history") or []:
        layer = None if entry.get("empty_layer") else next(layer_iter, None)
        lines.append(
            {
                "instruction": dockerfile_line(entry.get("created_by", "")),
                "layer": layer,
                "created": entry.get("created", ""),
                "comment": entry.get("comment", ""),
            }
        )
    return lines


def dockerfile_line(created_by):
    """`/bin/sh -c #(nop)  CMD ["sh"]` -> `CMD ["sh"]`; a shell step -> `RUN …`."""
    line = created_by.strip()
    if line.endswith("# buildkit"):
        line = line[: -len("# buildkit")].rstrip()
    if line.startswith("/bin/sh -c #(nop)"):
        return line[len("/bin/sh -c #(nop)") :].strip()
    if line.startswith("/bin/sh -c "):
        return "RUN " + line[len("/bin/sh -c ") :].strip()
    return line or "(no instruction recorded)"


def image_config(manifest):
    """The runtime settings an image page shows, from the cached config blob."""
    config = (manifest.config or {}).get("config") or {}
    return {
        "env": config.get("Env") or [],
        "cmd": config.get("Cmd"),
        "entrypoint": config.get("Entrypoint"),
        "workdir": config.get("WorkingDir") or "",
        "user": config.get("User") or "",
        "exposed_ports": sorted(config.get("ExposedPorts") or {}),
        "labels": sorted((config.get("Labels") or manifest.labels or {}).items()),
        "volumes": sorted(config.get("Volumes") or {}),
    }


def in_namespace(queryset, namespace):
    """Repositories under `namespace/` (nested ones too); "" means top-level repositories."""
    if namespace:
        return queryset.filter(name__startswith=f"{namespace}/")
    return queryset.exclude(name__contains="/")


def pretty_json(value):
    """Indented JSON for display; text that is not JSON is shown as it is."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, sort_keys=False)
