"""Load check: 16 concurrent clients on the repository page and on the tags API of a running portal.

Fills a bench database with one registry of REPOSITORIES x TAGS tags (rows written with
bulk_create by bench/page_bench.fill, as a sync would leave them: manifests with layers, config
JSON and raw text, every tenth tag an alias), starts the portal under gunicorn on loopback
(2 workers x 4 threads, like scripts/run.sh) with production settings, signs in through the
login form and issues an API token, then points `wrk` at it: CLIENTS connections for SECONDS on
each target in turn, the requests spread over every repository. Prints requests, errors
(connection errors, timeouts and answers >= 400; must be 0), throughput and p50 / p95 / p99.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/load_bench.py [--repositories 50] [--tags 200] [--seconds 30]

It creates and drops its own test database (test_<name of DATABASE_URL's database>). The API
token's rate limit is raised for the run: the bench measures the server, not the throttle.
Needs `wrk` (apt-get install wrk).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import PBKDF2PasswordHasher  # noqa: E402
from django.db import connection  # noqa: E402
from django.urls import reverse  # noqa: E402

from accounts import tokens  # noqa: E402
from bench.page_bench import fill  # noqa: E402
from registries.models import Registry  # noqa: E402
from tests.support.processes import (  # noqa: E402
    ROOT,
    free_port,
    regui_env,
    stop,
    wait_for_port,
)

PASSWORD = "load-bench-password"  # noqa: S105  a throwaway user of a throwaway database
WRK_SCRIPT = """
local paths = {%(paths)s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%f, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"status": %%d, "timeout": %%d, "p50": %%f, "p95": %%f, "p99": %%f, "max": %%f}\\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def fill_registry(options):
    registry = Registry.objects.create(name="bench", url="http://bench.invalid")
    names = [f"bench/app-{number:02d}" for number in range(options.repositories)]
    for name in names:
        fill(registry, name, options.tags)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return registry, names


def start_portal(log_path):
    """gunicorn on a free loopback port, with the bench database and production settings."""
    db = connection.settings_dict
    env = regui_env(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REGUI_API_TOKEN_RATE="1000000/min",
        DEBUG="false",
    )
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "regui.wsgi", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", "2", "--threads", "4"]
    log = open(log_path, "ab")  # noqa: SIM115  closed with the process
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port)
    process.url = f"http://127.0.0.1:{port}"
    return process


def sign_in(base_url, username):
    """The session cookie of a real sign-in through the login form."""
    session = requests.Session()
    login_url = f"{base_url}{reverse('login')}"
    session.get(login_url, timeout=10).raise_for_status()
    answer = session.post(
        login_url,
        {
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": login_url},
        timeout=10,
        allow_redirects=False,
    )
    if answer.status_code != 302 or "sessionid" not in session.cookies:
        raise SystemExit(f"sign-in failed: HTTP {answer.status_code}")
    return session.cookies["sessionid"]


def targets(registry, names, session_id, token):
    pages = [reverse("repository", args=[registry.pk, name]) for name in names]
    api = [f"/api/v1/tags/?registry={registry.pk}&repository={name}" for name in names]
    return {
        "repository page": (pages, f"Cookie: sessionid={session_id}"),
        "tags API": (api, f"Authorization: Bearer {token}"),
    }


def check_answers(base_url, paths, header, tags):
    """One request to each kind of target first: the load must hit real, complete answers."""
    name, _, value = header.partition(": ")
    answer = requests.get(base_url + paths[0], headers={name: value}, timeout=30)
    answer.raise_for_status()
    if "/api/" in paths[0]:
        assert answer.json()["count"] == tags, answer.json()["count"]
    else:
        newest = tags - 1  # the page lists newest first; page_bench.fill names tags vN.M
        assert "bench/app-00" in answer.text and f"v{newest // 100}.{newest % 100}" in answer.text


def run_wrk(base_url, paths, header, options, workdir):
    script = workdir / "load.lua"
    script.write_text(WRK_SCRIPT % {"paths": ", ".join(json.dumps(path) for path in paths)})
    command = ["wrk", "--threads", "2", "--connections", str(options.clients)]
    command += ["--duration", f"{options.seconds}s", "--timeout", "10s"]
    command += ["--header", header, "--script", str(script), base_url]
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=options.seconds + 60
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def report(label, result):
    errors = sum(result[key] for key in ("connect", "read", "write", "status", "timeout"))
    print(
        f"{label:16} {result['requests']:>9} {errors:>7} "
        f"{result['requests'] / result['seconds']:>9.1f} {result['p50']:>8.1f} "
        f"{result['p95']:>8.1f} {result['p99']:>8.1f} {result['max']:>8.1f}"
    )
    return errors


def run(options, workdir):
    registry, names = fill_registry(options)
    user = get_user_model().objects.create_superuser("bench", "bench@example.test")
    # Hashed for the portal's settings: this process runs with the test settings' fast hasher.
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(PASSWORD, hasher.salt())
    user.save(update_fields=["password"])
    _, token = tokens.issue(user, name="load bench")
    print(f"filled {len(names)} repositories x {options.tags} tags")
    portal = start_portal(workdir / "gunicorn.log")
    try:
        session_id = sign_in(portal.url, "bench")
        print(
            f"{options.clients} clients x {options.seconds} s per target (wrk, loopback)\n"
            f"{'target':16} {'requests':>9} {'errors':>7} {'req/s':>9} {'p50 ms':>8} "
            f"{'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        )
        errors = 0
        for label, (paths, header) in targets(registry, names, session_id, token).items():
            check_answers(portal.url, paths, header, options.tags)
            errors += report(label, run_wrk(portal.url, paths, header, options, workdir))
    finally:
        stop(portal)
    if errors:
        print(f"{errors} errors; the server log: {workdir / 'gunicorn.log'}")
        return 1
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repositories", type=int, default=50)
    parser.add_argument("--tags", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=30)
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    workdir = Path(tempfile.mkdtemp(prefix="regui-load-"))
    database = connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        status = run(options, workdir)
    finally:
        connection.close()
        connection.creation.destroy_test_db(database, verbosity=0)
    if status == 0:
        shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
