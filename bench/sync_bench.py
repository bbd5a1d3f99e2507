"""Full and no-change sync of a 10,000-tag registry, against a sequential baseline and a floor.

Pushes REPOS x TAGS tags to a real registry (each tag its own config blob; the first
INDEX_REPOS repositories hold multi-platform indexes with attestations), then prints:
- full sync time of RegUI (registries.sync) and of a baseline that walks tag by tag with one
  Session, fetching the manifest and then the config blob for the created date, as the original
  Docker Registry UI does; both on loopback and behind a relay adding a LATENCY ms round trip
  (bench/latency_relay.py; the baseline behind latency walks a few tags of every repository
  and is scaled by its request count: it is sequential, so linear);
- requests per tag of a no-change re-sync;
- peak RSS of this process (the pushing runs in a child process);
- the floor: `ab -c 8 -k` making as many manifest GETs as the RegUI full sync made requests,
  and the same count split as the sync's requests are (config blobs apart from manifests).

The machines are shared and their speed drifts by up to a third from minute to minute, so every
RegUI full sync runs --rounds times (each into an empty cache, each loopback one followed by its
own floors) and each figure is the median of the rounds, printed beside every round's value.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python bench/sync_bench.py [--repos 200] [--tags 50] [--rounds 3] [--keep DIR]

It creates and drops its own test database (test_<name of DATABASE_URL's database>).
"""

import argparse
import datetime
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.db import connection  # noqa: E402
from latency_relay import latency_relay  # noqa: E402

from registries import sync  # noqa: E402
from registries.client import MANIFEST_ACCEPT  # noqa: E402
from registries.models import Manifest, Registry, Tag  # noqa: E402
from tests.support import images  # noqa: E402
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


def baseline_sync(url, tags_per_repository=None):
    """The original UI's walk: catalog, then per tag its manifest and then its config blob.

    With `tags_per_repository`, only that many tags of each repository: a sample with the
    whole registry's mix of images and indexes, for the walk behind latency.
    """
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
        tags = get_json(f"/v2/{repo}/tags/list")["tags"] or []
        for tag in tags[:tags_per_repository]:
            manifest = get_json(f"/v2/{repo}/manifests/{tag}", MANIFEST_ACCEPT)
            if "manifests" in manifest:  # an index: show its first platform's image
                child = manifest["manifests"][0]["digest"]
                manifest = get_json(f"/v2/{repo}/manifests/{child}", MANIFEST_ACCEPT)
            get_json(f"/v2/{repo}/blobs/{manifest['config']['digest']}")
            tags_done += 1
    return tags_done, requests_made


def regui_sync(url, concurrency):
    """A first (full) sync into an empty cache: a registry row of its own."""
    name = f"bench-{Registry.objects.count()}"
    row = Registry.objects.create(name=name, url=url, max_concurrency=concurrency)
    started = time.monotonic()
    result = sync.sync_registry(row)
    return time.monotonic() - started, result, row


def added_latency_ms(direct_url, relay_url, samples=20):
    """What the relay really adds to one request on a kept-alive connection."""
    session = requests.Session()
    session.trust_env = False

    def mean_seconds(url):
        session.get(url + "/v2/", timeout=10)  # connect first
        started = time.monotonic()
        for _ in range(samples):
            session.get(url + "/v2/", timeout=10)
        return (time.monotonic() - started) / samples

    return 1000 * (mean_seconds(relay_url) - mean_seconds(direct_url))


def ab_seconds(url, requests_count, accept=None):
    """`ab -c 8 -k` making `requests_count` GETs of one URL: (seconds, requests not 2xx)."""
    command = ["ab", "-q", "-k", "-c", "8", "-n", str(requests_count)]
    if accept:
        command += ["-H", f"Accept: {accept}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    seconds = float(re.search(r"Time taken for tests:\s+([\d.]+)", output).group(1))
    failed = int(re.search(r"Failed requests:\s+(\d+)", output).group(1))
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", output)
    return seconds, failed + int(non_2xx.group(1) if non_2xx else 0)


def floors(url, row, requests_count):
    """The issue's floor (that many GETs of one manifest), and one with the sync's own mix:
    its config blob GETs cost the registry about twice a manifest GET (it reads every blob
    through a 4 MiB buffer of the request's own, however small the blob)."""
    tags = Tag.objects.filter(repository__registry=row, manifest__is_index=False)
    tag = tags.select_related("repository", "manifest").first()
    manifest_url = f"{url}/v2/{tag.repository.name}/manifests/{tag.name}"
    images_with_config = Manifest.objects.filter(registry=row, is_index=False).exclude(
        parents__is_attestation=True
    )
    configs = images_with_config.count()
    config_url = f"{url}/v2/{tag.repository.name}/blobs/{tag.manifest.config_digest}"
    manifests_only = ab_seconds(manifest_url, requests_count, MANIFEST_ACCEPT)
    manifest_part = ab_seconds(manifest_url, requests_count - configs, MANIFEST_ACCEPT)
    config_part = ab_seconds(config_url, configs)
    mixed = (manifest_part[0] + config_part[0], manifest_part[1] + config_part[1])
    return manifests_only, mixed, configs


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--tags", type=int, default=50)
    parser.add_argument("--index-repos", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=Registry().max_concurrency)
    parser.add_argument(
        "--baseline-sample", type=int, default=3, help="tags per repository, behind latency"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="RegUI syncs and floors, each; medians are shown"
    )
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
        # Its own database: one left behind by an interrupted run is replaced.
        database = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            run(options, server, total_tags)
        finally:
            connection.creation.destroy_test_db(database, verbosity=0)


def empty_cache():
    """Drop every cached registry, so that each round syncs into the same empty tables."""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Registry._meta.db_table} CASCADE")


@dataclass
class LoopbackRound:
    """One full sync on loopback and the floors for as many requests, measured right after it
    so that both see the machine in the same mood."""

    seconds: float
    requests: int
    row: Registry  # the registry it cached
    floor: float  # seconds
    mixed_floor: float
    configs: int  # config blob GETs in the mixed floor
    floor_failures: int

    @classmethod
    def measure(cls, server, concurrency, total_tags):
        seconds, result, row = regui_sync(server.url, concurrency)
        assert Tag.objects.filter(repository__registry=row).count() == total_tags
        (floor, failed), (mixed, mixed_failed), configs = floors(
            server.url, row, result["requests"]
        )
        return cls(seconds, result["requests"], row, floor, mixed, configs, failed + mixed_failed)


def spread(values, digits=2):
    """The median and every round's value: "27.10  (25.90, 27.10, 29.70)"; a single value alone."""
    median = f"{statistics.median(values):.{digits}f}"
    if len(values) == 1:
        return median
    return median + "  (" + ", ".join(f"{value:.{digits}f}" for value in values) + ")"


def loopback_rounds(server, options, total_tags):
    """The loopback rounds, and a no-change re-sync of the first: (rounds, its result, seconds)."""
    rounds = []
    for number in range(options.rounds):
        rounds.append(LoopbackRound.measure(server, options.concurrency, total_tags))
        if number == 0:
            started = time.monotonic()
            again = sync.sync_registry(rounds[0].row)
            resync_seconds = time.monotonic() - started
        empty_cache()
    return rounds, again, resync_seconds


def latency_rounds(server, options, base_requests):
    """Behind the relay: (added ms, each round's sync seconds, tags the baseline sampled, the
    baseline's seconds scaled to `base_requests`)."""
    connection.close()  # the relay is a forked process
    with latency_relay(server.url, options.latency_ms / 1000) as relay_url:
        added_ms = added_latency_ms(server.url, relay_url)
        seconds = []
        for _ in range(options.rounds):
            seconds.append(regui_sync(relay_url, options.concurrency)[0])
            empty_cache()
        started = time.monotonic()
        sample_tags, sample_requests = baseline_sync(relay_url, options.baseline_sample)
        # Sequential, so linear in its requests: scaled to the loopback walk's request count.
        base_seconds = (time.monotonic() - started) * base_requests / sample_requests
    return added_ms, seconds, sample_tags, base_seconds


def run(options, server, total_tags):
    print(
        f"registry: {total_tags} tags, concurrency {options.concurrency}, 2 cores shared; "
        f"rounds: {options.rounds}, medians first"
    )
    rss_start = peak_rss_mb()

    rounds, again, resync_seconds = loopback_rounds(server, options, total_tags)
    regui_seconds = [measured.seconds for measured in rounds]
    floor_seconds = [measured.floor for measured in rounds]
    mixed_seconds = [measured.mixed_floor for measured in rounds]
    full_requests, configs = rounds[0].requests, rounds[0].configs
    rss_sync = peak_rss_mb()

    started = time.monotonic()
    _, base_requests = baseline_sync(server.url)
    base_seconds = time.monotonic() - started
    added_ms, slow_regui_seconds, sample_tags, slow_base_seconds = latency_rounds(
        server, options, base_requests
    )

    latency = f"{options.latency_ms:g} ms latency"
    print(f"the relay adds {added_ms:.1f} ms per request (asked: {options.latency_ms:g} ms)")
    print(f"{'':44}{'requests':>9}  seconds: median  (each round)")
    lines = [
        ("RegUI full sync, loopback", full_requests, regui_seconds),
        ("baseline (sequential), loopback", base_requests, [base_seconds]),
        (f"RegUI full sync, {latency}", full_requests, slow_regui_seconds),
        (f"baseline, {latency} (from {sample_tags} tags)", base_requests, [slow_base_seconds]),
        ("RegUI no-change re-sync, loopback", again["requests"], [resync_seconds]),
        ("floor: ab -c 8 -k, one manifest", full_requests, floor_seconds),
        (f"floor, the sync mix ({configs} config blobs)", full_requests, mixed_seconds),
    ]
    for label, count, seconds in lines:
        print(f"{label:44}{count:>9}  {spread(seconds)}")
    failed = sum(measured.floor_failures for measured in rounds)
    print(f"{'':44}{'':9}  ({failed} floor requests failed)")
    print()
    base_ratios = [base_seconds / seconds for seconds in regui_seconds]
    slow_ratios = [slow_base_seconds / seconds for seconds in slow_regui_seconds]
    # Each round's sync against the floors measured right after it.
    floor_ratios = [ours / floor for ours, floor in zip(regui_seconds, floor_seconds, strict=True)]
    mixed_ratios = [ours / floor for ours, floor in zip(regui_seconds, mixed_seconds, strict=True)]
    print(f"speed-up vs baseline, loopback:        {spread(base_ratios, 1)}")
    print(f"speed-up vs baseline, {latency}:  {spread(slow_ratios, 1)}   (target >= 15x)")
    print(f"RegUI / floor, loopback:               {spread(floor_ratios)}   (target <= 2)")
    print(f"RegUI / floor of the sync mix:         {spread(mixed_ratios)}")
    print(
        f"requests per tag, no-change re-sync:   {again['requests'] / total_tags:.3f}"
        "   (target <= 1.05)"
    )
    print(f"peak RSS: {rss_sync:.0f} MB after the syncs (Django loaded: {rss_start:.0f} MB), "
          f"{peak_rss_mb():.0f} MB at the end   (target < 300 MB)")  # fmt: skip


if __name__ == "__main__":
    main()
