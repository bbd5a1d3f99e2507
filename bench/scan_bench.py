"""Scan throughput with 1, 2 and 4 worker processes, each with its own Trivy cache.

Pushes N distinct images (the fixture Alpine packages plus one unique package and a bulky file
each) to a real registry, then scans all of them with the real Trivy and the fixture DB through
scanning.trivy, as Celery workers do. Every run starts with cold caches. Prints images per
second and the speed-up against the one-worker run of the same invocation.

    .venv/bin/python bench/scan_bench.py [--images 24] [--workers 1,2,4]
"""

import argparse
import hashlib
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from registries.models import Registry  # noqa: E402
from scanning import reports, trivy  # noqa: E402
from tests.support import images  # noqa: E402
from tests.support.registry_server import RegistryServer  # noqa: E402
from tests.support.trivy_db import EXPECTED_FINDINGS, FIXTURE_PACKAGES, write_trivy_db  # noqa: E402

REPOSITORY = "bench/app"
BULK_BYTES = 2 * 1024 * 1024

_worker = {}


def distinct_image(number):
    packages = (*FIXTURE_PACKAGES["amd64"], (f"app-{number}", "1.0-r0", f"app-{number}"))
    bulk = b"".join(
        hashlib.sha256(f"{number}-{block}".encode()).digest() for block in range(BULK_BYTES // 32)
    )
    return images.build_image(packages, extra_files={f"opt/app/data-{number}.bin": bulk})


def push_images(server, count):
    session = images.registry_session()
    digests = []
    for number in range(count):
        digests.append(
            images.push_image(server.url, REPOSITORY, f"v{number}", distinct_image(number), session)
        )
    return digests


def start_worker(registry_url, config):
    _worker["registry"] = Registry(name="bench", url=registry_url)
    _worker["config"] = config
    _worker["cache_dir"] = trivy.worker_cache_dir(config.cache_root, f"bench-{os.getpid()}")


def scan(digest):
    output = trivy.scan_image(
        _worker["registry"],
        REPOSITORY,
        digest,
        cache_dir=_worker["cache_dir"],
        config=_worker["config"],
    )
    return reports.summarize(reports.parse_findings(output.report))["total"]


def run(registry_url, digests, workers, binary):
    with tempfile.TemporaryDirectory(prefix="scan-bench-") as cache_root:
        write_trivy_db(cache_root)
        config = trivy.TrivyConfig(
            binary=binary,
            cache_root=Path(cache_root),
            skip_db_update=True,
            offline_scan=True,
            timeout=300,
        )
        started = time.perf_counter()
        with multiprocessing.Pool(workers, start_worker, (registry_url, config)) as pool:
            totals = pool.map(scan, digests, chunksize=1)
        seconds = time.perf_counter() - started
    expected = len(EXPECTED_FINDINGS["amd64"])
    if set(totals) != {expected}:
        raise SystemExit(f"unexpected finding counts {sorted(set(totals))}, wanted {expected}")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    worker_counts = [int(part) for part in args.workers.split(",")]
    binary = trivy.find_binary(os.environ.get("REGUI_TRIVY_BIN", ""))
    with (
        tempfile.TemporaryDirectory(prefix="scan-bench-registry-") as workdir,
        RegistryServer(Path(workdir)) as server,
    ):
        digests = push_images(server, args.images)
        print(
            f"{args.images} distinct images, Trivy {trivy.binary_version(binary)}, "
            f"{os.cpu_count()} CPUs"
        )
        baseline = None
        for workers in worker_counts:
            seconds = run(server.url, digests, workers, binary)
            rate = args.images / seconds
            baseline = baseline or rate
            print(
                f"workers={workers}: {seconds:6.2f} s  {rate:6.2f} images/s  "
                f"x{rate / baseline:.2f} vs {worker_counts[0]} worker(s)"
            )


if __name__ == "__main__":
    main()
