#!/usr/bin/env bash
# Runs RegUI on one machine: web on http://127.0.0.1:8000, a Celery worker and Celery beat,
# all in the foreground; Ctrl-C stops the three.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/bootstrap.sh requirements.txt
mkdir -p var

# First run: make the secrets this installation needs and keep them in .env (git-ignored).
if [ ! -f .env ]; then
  echo "regui: writing .env with a new SECRET_KEY and encryption key"
  .venv/bin/python - <<'PY'
import secrets
from cryptography.fernet import Fernet
with open(".env", "w") as env:
    env.write(f"SECRET_KEY={secrets.token_urlsafe(50)}\n")
    env.write(f"REGUI_ENCRYPTION_KEYS={Fernet.generate_key().decode()}\n")
PY
  chmod 600 .env
fi

if [ -z "${DATABASE_URL:-}" ] && ! grep -q '^DATABASE_URL=' .env; then
  echo "regui: DATABASE_URL is not set: using the embedded SQLite database var/regui.sqlite3"
fi
if [ -z "${REDIS_URL:-}" ] && ! grep -q '^REDIS_URL=' .env; then
  echo "regui: REDIS_URL is not set: using the file-system Celery broker under var/broker"
  mkdir -p var/broker/queue var/broker/processed
fi

manage() { .venv/bin/python manage.py "$@"; }
manage migrate --no-input -v 0
manage ensure_admin

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

bind=${REGUI_BIND:-127.0.0.1:8000}
.venv/bin/gunicorn regui.wsgi --bind "$bind" --workers 2 --threads 4 --access-logfile - &
pids+=($!)
.venv/bin/celery -A regui worker --loglevel INFO --concurrency "${REGUI_WORKER_CONCURRENCY:-2}" &
pids+=($!)
.venv/bin/celery -A regui beat --loglevel INFO &
pids+=($!)
echo "regui: serving on http://$bind (admin: http://$bind/admin/); Ctrl-C stops everything"

# Stop all three as soon as one of them exits.
wait -n
