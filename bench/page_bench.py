"""Server time of the repository page for a 10,000-tag repository, against a 50-tag baseline.

Fills a repository with TAGS tags (realistic manifest rows: layers, config JSON, raw manifest;
every tenth tag an alias of the one before, so sibling lookups have work to do) and a small
baseline repository, then renders the page through Django's test client (URL routing,
middleware, permissions, queries, templates: all the server does) and prints p50 / p95 per
scenario, the ratio to the same scenario on the baseline, and the queries per request.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python bench/page_bench.py [--tags 10000] [--runs 60]

It creates and drops its own test database (test_<name of DATABASE_URL's database>).
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402

from registries.models import Manifest, Registry, Repository, Tag  # noqa: E402
from registries.sync import refresh_repository_totals  # noqa: E402

BASE = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
SCENARIOS = {
    "newest first (default)": {},
    "by name, numeric-aware": {"sort": "name"},
    "by name, last page": {"sort": "name", "page": "last"},
    "by size, descending": {"sort": "-size"},
    "search 'v1.' (100 hits)": {"q": "v1."},
    "200 per page": {"per_page": "200"},
    "htmx table only": {"sort": "created", "_htmx": "1"},
}


def sha(text):
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def fill(registry, name, tags):
    """A repository of `tags` tags; a manifest row per image, every tenth tag an alias."""
    shared_layer = {"digest": sha("base"), "size": 3_000_000, "media_type": "layer"}
    manifests = []
    for number in range(tags):
        if number % 10 == 9:
            continue  # aliased below
        own = {"digest": sha(f"{name}-{number}"), "size": 1000 + number, "media_type": "layer"}
        config = {
            "created": (BASE + dt.timedelta(minutes=number)).isoformat(),
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["/app"], "Labels": {"n": str(number)}},
            "history": [{"created_by": f"RUN step {i}"} for i in range(8)],
        }
        raw = json.dumps({"schemaVersion": 2, "layers": [shared_layer, own], "n": number})
        manifests.append(
            Manifest(
                registry=registry,
                digest=sha(raw),
                media_type="application/vnd.oci.image.manifest.v1+json",
                size_bytes=shared_layer["size"] + own["size"] + 500,
                config_digest=sha(f"config-{name}-{number}"),
                config_size=500,
                created=BASE + dt.timedelta(minutes=number),
                os="linux",
                architecture="amd64",
                platforms=["linux/amd64"],
                layers=[shared_layer, own],
                config=config,
                raw=raw,
            )
        )
    Manifest.objects.bulk_create(manifests, batch_size=1000)
    repository = Repository.objects.create(registry=registry, name=name)
    rows, previous = [], None
    by_number = iter(manifests)
    for number in range(tags):
        manifest = previous if number % 10 == 9 else next(by_number)
        rows.append(
            Tag(repository=repository, name=f"v{number // 100}.{number % 100}", manifest=manifest)
        )
        previous = manifest
    Tag.objects.bulk_create(rows, batch_size=2000)
    refresh_repository_totals(repository)
    repository.save()
    return repository


def measure(client, url, params, runs):
    params = dict(params)
    headers = {}
    if params.pop("_htmx", None):
        headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "tag-table"}
    if params.get("page") == "last":
        params["page"] = "999999"  # Paginator.get_page clamps to the last page
    client.get(url, params, **headers)  # warm up: template loading, connection
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url, params, **headers)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    with CaptureQueriesContext(connection) as queries:
        client.get(url, params, **headers)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * len(times)) - 1)]
    return statistics.median(times), p95, len(queries), len(response.content)


def run(options):
    setup_test_environment()
    registry = Registry.objects.create(name="bench", url="http://bench.invalid")
    started = time.perf_counter()
    big = fill(registry, "bench/big", options.tags)
    small = fill(registry, "bench/small", 50)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"filled {options.tags} + 50 tags in {time.perf_counter() - started:.1f} s")
    user = get_user_model().objects.create_superuser("bench", "bench@example.test", "x")
    client = Client()
    client.force_login(user)

    print(
        f"{'scenario':28} {'10k p50':>9} {'10k p95':>9} {'base p95':>9} {'ratio':>6} "
        f"{'queries':>8} {'KiB':>6}"
    )
    for label, params in SCENARIOS.items():
        big_url = reverse("repository", args=[registry.pk, big.name])
        small_url = reverse("repository", args=[registry.pk, small.name])
        p50, p95, queries, size = measure(client, big_url, params, options.runs)
        _, base_p95, base_queries, _ = measure(client, small_url, params, options.runs)
        print(
            f"{label:28} {p50:8.1f}ms {p95:8.1f}ms {base_p95:8.1f}ms {p95 / base_p95:6.2f} "
            f"{queries:>4}/{base_queries:<3} {size / 1024:6.0f}"
        )
    # The dashboard adds up distinct blobs of the whole registry (10,050 tags here).
    p50, p95, queries, size = measure(client, reverse("dashboard"), {}, options.runs)
    print(f"{'dashboard':28} {p50:8.1f}ms {p95:8.1f}ms {queries:>22} {size / 1024:14.0f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=60)
    options = parser.parse_args()
    database = connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        run(options)
    finally:
        connection.creation.destroy_test_db(database, verbosity=0)


if __name__ == "__main__":
    main()
