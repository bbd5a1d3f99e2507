#!/usr/bin/env bash
# Installs what RegUI needs into .venv and node_modules; a second run installs nothing.
# Usage: scripts/bootstrap.sh [requirements file]   (default: requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=${1:-requirements.txt}
python=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  echo "regui: creating .venv"
  "$python" -m venv .venv
fi

# Reinstall only when the requirement files changed since the last install.
stamp=.venv/.installed-$(basename "$requirements")
wanted=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "regui: installing Python packages from $requirements"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
  echo "$wanted" > "$stamp"
fi

stamp=node_modules/.regui-installed
if [ "$(cat "$stamp" 2>/dev/null)" != "$(sha256sum < package-lock.json)" ]; then
  command -v npm >/dev/null || { echo "regui: npm is missing: install Node.js 18 or newer" >&2; exit 1; }
  echo "regui: installing front-end packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  sha256sum < package-lock.json > "$stamp"
fi
