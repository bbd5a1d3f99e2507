#!/usr/bin/env bash
# The whole test suite: installs what it needs, lints, then runs pytest against the real
# PostgreSQL, Redis, registry, Trivy and Chromium. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/bootstrap.sh requirements-dev.txt

# Real parts the tests drive: the distribution registry, skopeo, htpasswd and Chromium.
missing=()
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v skopeo >/dev/null || missing+=(skopeo)
command -v htpasswd >/dev/null || missing+=(apache2-utils)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "regui: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "regui: the tests need these Debian packages; install them: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/15}

echo "regui: ruff check"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "regui: bandit"
.venv/bin/bandit -q -c pyproject.toml -r regui registries scanning accounts audit jobs
echo "regui: pytest"
exec .venv/bin/python -m pytest "$@"
