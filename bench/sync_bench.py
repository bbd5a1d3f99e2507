"""Full and no-change sync of a 10,000-tag registry, against a sequential baseline and a floor.

Pushes REPOS x TAGS tags to a real registry (each tag its own config blob; the first
INDEX_REPOS repositories hold multi-platform indexes with attestations), then prints:
- full sync time of RegUI (registries.sync) and of a baseline that walks tag by tag with one
  Session, fetching the manifest and then the config blob for the created date, as the original
  Docker Registry UI does; both on loopback and behind a proxy adding LATENCY ms per request
  (the baseline behind latency runs on a sample of tags and is scaled: it is linear);
- requests per tag of a no-change re-sync;
- peak RSS of this process (the pushing runs in a child process);
- the floor: `ab -c 8 -k` making as many manifest GETs as the RegUI full sync made requests.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python bench/sync_bench.py [--repos 200] [--tags 50] [--keep DIR]

It creates and drops its own test database (test_<name of DATABASE_URL's database>).
"""

import argparse
import contextlib
import datetime
import multiprocessing
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.db import connection  # noqa: E402

from registries import sync  # noqa: E402
from registries.client import MANIFEST_ACCEPT  # noqa: E402
from registries.models import Registry, Tag  # noqa: E402
from tests.support import images  # noqa: E402
from tests.support.fault_proxy import FaultProxy  # noqa: E402
from tests.support.registry_server import RegistryServer  # noqa: E402

PUSHED_MARKER = "pushed.txt"


def repository_name(number):
    return f"bench/app-{number:03d}"


def push_index_repository(url, repo_number, tags):
    """`tags` tags, each an amd64 + arm64 index with attestations and configs of its own."""
    repo = repository_name(repo_number)
    session = images.registry_session()
    layers = {arch: images.alpine_layer(None, arch) for arch in ("amd64", "arm64")}
    for layer in layers.values():  # once, before the threads: concurrent uploads of one blob race
        images.push_blob(url, repo, layer, session)

    def push_one(number):
        created = images.DEFAULT_CREATED - datetime.timedelta(days=repo_number, minutes=number)
        children = [
            images.image_from_layers([layers[arch]], arch=arch, created=created)
            for arch in ("amd64", "arm64")
        ]
        index = images.build_index(children, attestation=True)
        images.push_index(url, repo, f"v{number:05d}", index, session)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(push_one, range(tags)))


def push_everything(url, repos, tags, index_repos):
    for number in range(repos):
        if number < index_repos:
            push_index_repository(url, number, tags)
        else:
            # Creation dates differ per repository too, so every tag has a config of its own.
            start = images.DEFAULT_CREATED + datetime.timedelta(days=number)
            images.push_many_tags(
                url,
                repository_name(number),
                tags,
                created_start=start,
                created_step=datetime.timedelta(minutes=1),
                workers=8,
            )


def baseline_sync(url, tag_limit=None):
    """The original UI's walk: catalog, then per tag its manifest and then its config blob."""
    session = requests.Session()
    session.trust_env = False
    requests_made, tags_done = 0, 0

    def get_json(path, accept=None):
        nonlocal requests_made
        requests_made += 1
        headers = {"Accept": accept} if accept else {}
        answer = session.get(url + path, headers=headers, timeout=60)
        answer.raise_for_status()
        return answer.json()

    repositories = get_json("/v2/_catalog?n=1000")["repositories"]
    for repo in repositories:
        for tag in get_json(f"/v2/{repo}/tags/list")["tags"] or []:
            manifest = get_json(f"/v2/{repo}/manifests/{tag}", MANIFEST_ACCEPT)
            if "manifests" in manifest:  # an index: show its first platform's image
                child = manifest["manifests"][0]["digest"]
                manifest = get_json(f"/v2/{repo}/manifests/{child}", MANIFEST_ACCEPT)
            get_json(f"/v2/{repo}/blobs/{manifest['config']['digest']}")
            tags_done += 1
            if tag_limit and tags_done >= tag_limit:
                return tags_done, requests_made
    return tags_done, requests_made


def regui_sync(url, concurrency):
    """A first (full) sync into an empty cache: a registry row of its own."""
    name = f"bench-{Registry.objects.count()}"
    row = Registry.objects.create(name=name, url=url, max_concurrency=concurrency)
    started = time.monotonic()
    result = sync.sync_registry(row)
    return time.monotonic() - started, result, row


def serve_latency_proxy(upstream_url, seconds, urls):
    proxy = FaultProxy(upstream_url).start()
    proxy.latency(seconds)
    urls.put(proxy.url)
    threading.Event().wait()


@contextlib.contextmanager
def latency_proxy(upstream_url, seconds):
    """The fault proxy in a process of its own, so that it does not share our GIL."""
    context = multiprocessing.get_context("fork")
    urls = context.Queue()
    connection.close()  # the child must not share the database socket
    process = context.Process(target=serve_latency_proxy, args=(upstream_url, seconds, urls))
    process.start()
    try:
        yield urls.get(timeout=30)
    finally:
        process.terminate()
        process.join()


def ab_floor(url, repo, tag, requests_count):
    command = [
        "ab", "-q", "-k", "-c", "8", "-n", str(requests_count),
        "-H", f"Accept: {MANIFEST_ACCEPT}", f"{url}/v2/{repo}/manifests/{tag}",
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    seconds = float(re.search(r"Time taken for tests:\s+([\d.]+)", output).group(1))
    failed = int(re.search(r"Failed requests:\s+(\d+)", output).group(1))
    return seconds, failed


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--tags", type=int, default=50)
    parser.add_argument("--index-repos", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=Registry().max_concurrency)
    parser.add_argument("--baseline-sample", type=int, default=500, help="tags, behind latency")
    parser.add_argument("--keep", help="registry directory to reuse between runs")
    parser.add_argument("--push-only", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.push_only:
        push_everything(options.push_only, options.repos, options.tags, options.index_repos)
        return

    workdir = Path(options.keep or tempfile.mkdtemp(prefix="regui-sync-bench-"))
    total_tags = options.repos * options.tags
    shape = f"{options.repos}x{options.tags}x{options.index_repos}"
    with RegistryServer(workdir) as server:
        marker = workdir / PUSHED_MARKER
        if not marker.exists() or marker.read_text() != shape:
            started = time.monotonic()
            # A child process pushes, so that this one's peak RSS is the sync's alone.
            subprocess.run(
                [sys.executable, __file__, "--push-only", server.url, "--repos",
                 str(options.repos), "--tags", str(options.tags), "--index-repos",
                 str(options.index_repos)],
                check=True,
            )  # fmt: skip
            marker.write_text(shape)
            print(f"pushed {total_tags} tags in {time.monotonic() - started:.1f} s")
        database = connection.creation.create_test_db(verbosity=0, keepdb=False)
        try:
            run(options, server, total_tags)
        finally:
            connection.creation.destroy_test_db(database, verbosity=0)


def run(options, server, total_tags):
    print(f"registry: {total_tags} tags, concurrency {options.concurrency}, 2 cores shared")
    rss_start = peak_rss_mb()

    regui_seconds, full, row = regui_sync(server.url, options.concurrency)
    assert Tag.objects.filter(repository__registry=row).count() == total_tags
    started = time.monotonic()
    again = sync.sync_registry(row)
    resync_seconds = time.monotonic() - started
    rss_sync = peak_rss_mb()

    started = time.monotonic()
    base_tags, base_requests = baseline_sync(server.url)
    base_seconds = time.monotonic() - started

    with latency_proxy(server.url, options.latency_ms / 1000) as proxy_url:
        slow_regui_seconds, slow_full, _ = regui_sync(proxy_url, options.concurrency)
        started = time.monotonic()
        sample_tags, _ = baseline_sync(proxy_url, tag_limit=options.baseline_sample)
        slow_base_seconds = (time.monotonic() - started) * total_tags / sample_tags

    tag = Tag.objects.filter(repository__registry=row).select_related("repository").first()
    floor_seconds, floor_failed = ab_floor(
        server.url, tag.repository.name, tag.name, full["requests"]
    )

    latency = f"{options.latency_ms:g} ms latency"
    print(f"{'':44}{'seconds':>9}{'tags/s':>9}{'requests':>10}")
    lines = [
        ("RegUI full sync, loopback", regui_seconds, full["requests"]),
        ("baseline (sequential), loopback", base_seconds, base_requests),
        (f"RegUI full sync, {latency}", slow_regui_seconds, slow_full["requests"]),
        (f"baseline, {latency} (from {sample_tags} tags)", slow_base_seconds, None),
        ("RegUI no-change re-sync, loopback", resync_seconds, again["requests"]),
    ]
    for label, seconds, count in lines:
        count_text = f"{count:>10}" if count is not None else f"{'':>10}"
        print(f"{label:44}{seconds:9.2f}{total_tags / seconds:9.0f}{count_text}")
    print(f"{'floor: ab -c 8 -k, same request count':44}{floor_seconds:9.2f}{'':9}"
          f"{full['requests']:>10}  ({floor_failed} failed)")  # fmt: skip
    print()
    print(f"speed-up vs baseline, loopback:       {base_seconds / regui_seconds:6.1f}x")
    print(f"speed-up vs baseline, {latency}: {slow_base_seconds / slow_regui_seconds:6.1f}x"
          "   (target >= 15x)")  # fmt: skip
    print(f"RegUI / floor, loopback:              {regui_seconds / floor_seconds:6.2f}"
          "    (target <= 2)")  # fmt: skip
    print(f"requests per tag, no-change re-sync:  {again['requests'] / total_tags:6.3f}"
          "    (target <= 1.05)")  # fmt: skip
    print(f"peak RSS: {rss_sync:.0f} MB after the syncs (Django loaded: {rss_start:.0f} MB), "
          f"{peak_rss_mb():.0f} MB at the end   (target < 300 MB)")  # fmt: skip


if __name__ == "__main__":
    main()
