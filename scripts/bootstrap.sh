#!/usr/bin/env bash
# Create or refresh the project's virtual environment (.venv) from a Python
# 3.10 interpreter, install pinned dependencies and the web chat's assets.
# Re-running is cheap: it only reinstalls when a requirements file changed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
STAMP="$VENV/.kefu-installed"
want=$(cat requirements.txt requirements-dev.txt constraints.txt | sha256sum | cut -d' ' -f1)

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c \
    'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' 2>/dev/null; then
  python310=$(scripts/find_python310.sh)
  echo "==> creating $VENV with $python310"
  rm -rf "$VENV"
  "$python310" -m venv "$VENV"
fi

# pip, quiet, without the noise of unreadable local index locations
pip_install() {
  "$VENV/bin/python" -m pip install --quiet "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2)
}

if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "==> installing Python dependencies (a few minutes the first time)"
  pip_install --upgrade "pip==24.0" "setuptools==70.3.0" "wheel==0.45.1"
  pip_install -r requirements.txt -r requirements-dev.txt -c constraints.txt
  echo "$want" > "$STAMP"
fi

if [ -f web/package-lock.json ]; then
  lock_hash=$(sha256sum web/package-lock.json | cut -d' ' -f1)
  if [ "$(cat web/node_modules/.kefu-installed 2>/dev/null)" != "$lock_hash" ]; then
    echo "==> installing web chat assets (npm ci)"
    (cd web && npm ci --silent --no-audit --no-fund)
    echo "$lock_hash" > web/node_modules/.kefu-installed
  fi
fi
