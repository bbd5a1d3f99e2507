#!/usr/bin/env bash
# `make demo`: a local registry with sample images, registered in RegUI and synced, so a
# newcomer sees a populated portal. Run `make run` beside it, then open http://127.0.0.1:8000.
# Stop the registry with: kill "$(cat var/demo-registry/registry.pid)"
set -euo pipefail
cd "$(dirname "$0")/.."

port=${REGUI_DEMO_PORT:-5055}
workdir=var/demo-registry
url="http://127.0.0.1:${port}"

./scripts/bootstrap.sh requirements.txt
command -v docker-registry >/dev/null || {
  echo "regui: the demo needs the CNCF registry binary: sudo apt-get install docker-registry" >&2
  exit 1
}
if [ ! -f .env ] && [ -z "${SECRET_KEY:-}" ]; then
  echo "regui: writing .env with a new SECRET_KEY and encryption key (as make run does)"
  .venv/bin/python - <<'PY'
import secrets
from cryptography.fernet import Fernet
with open(".env", "w") as env:
    env.write(f"SECRET_KEY={secrets.token_urlsafe(50)}\n")
    env.write(f"REGUI_ENCRYPTION_KEYS={Fernet.generate_key().decode()}\n")
PY
  chmod 600 .env
fi

mkdir -p "$workdir/storage"
cat > "$workdir/config.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $(pwd)/$workdir/storage}
  delete: {enabled: true}
http: {addr: 127.0.0.1:${port}}
YAML

if [ -f "$workdir/registry.pid" ] && kill -0 "$(cat "$workdir/registry.pid")" 2>/dev/null; then
  echo "regui: demo registry already running at $url"
else
  echo "regui: starting a registry at $url (storage in $workdir)"
  nohup docker-registry serve "$workdir/config.yml" > "$workdir/registry.log" 2>&1 &
  echo $! > "$workdir/registry.pid"
  for _ in $(seq 50); do
    curl -fs "$url/v2/" >/dev/null 2>&1 && break
    sleep 0.1
  done
fi

echo "regui: pushing sample images"
.venv/bin/python - "$url" <<'PY'
import datetime as dt
import sys

from tests.support import images

url = sys.argv[1]
now = dt.datetime.now(dt.UTC).replace(microsecond=0)

# demo/web: a release line with dates to sort by, numeric-aware names (1.9 before 1.10).
for minor in range(1, 13):
    created = now - dt.timedelta(days=7 * (13 - minor))
    image = images.build_image(
        created=created,
        extra_files={"srv/www/index.html": f"<h1>web 1.{minor}</h1>"},
        labels={"org.opencontainers.image.version": f"1.{minor}", "team": "web"},
        exposed_ports=["8080/tcp"],
        entrypoint=["/usr/sbin/httpd", "-f"],
        workdir="/srv/www",
        user="www-data",
    )
    images.push_image(url, "demo/web", f"1.{minor}", image)
    if minor == 12:
        images.push_image(url, "demo/web", "latest", image)
        images.push_image(url, "demo/web", "stable", image)

# demo/api: multi-platform images (amd64 + arm64, with attestations).
for number, age in ((1, 60), (2, 20), (3, 2)):
    index = images.build_platform_index(created=now - dt.timedelta(days=age))
    images.push_index(url, "demo/api", f"v{number}", index)

# ci/builds: short-lived pull-request images, the kind bulk cleanup is for.
images.push_many_tags(
    url,
    "ci/builds",
    40,
    tag_format="pr-{:d}",
    created_start=now - dt.timedelta(days=90),
    created_step=dt.timedelta(days=2),
)
images.push_image(url, "library/alpine", "3.18", images.build_image(created=now - dt.timedelta(days=400)))
print("pushed demo/web, demo/api, ci/builds and library/alpine")
PY

manage() { .venv/bin/python manage.py "$@"; }
manage migrate --no-input -v 0
manage ensure_admin
manage register_registry demo "$url" --sync

cat <<TEXT

RegUI demo is ready.
  Registry:  $url  (delete enabled; storage in $workdir)
  Portal:    run \`make run\`, then open http://127.0.0.1:8000 and sign in as admin
             (the password was printed above on the first run, or set REGUI_ADMIN_PASSWORD).
  Try:       browse demo/web (sort tags by name or date), open demo/api:v3 and switch
             platforms, delete a tag, or run a bulk cleanup of ci/builds (pr-*, keep 5).
  Stop:      kill \$(cat $workdir/registry.pid)
TEXT
