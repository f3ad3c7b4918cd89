#!/usr/bin/env bash
# Print the path of a working Python 3.10 interpreter, or fail with a clear
# message. Looks on PATH first, then in pyenv's installed versions.
set -euo pipefail

is_310() {
  "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' \
    >/dev/null 2>&1
}

for candidate in python3.10 python3 python; do
  path=$(command -v "$candidate" 2>/dev/null || true)
  if [ -n "$path" ] && is_310 "$path"; then
    "$path" -c 'import sys; print(sys.executable)'
    exit 0
  fi
done

if command -v pyenv >/dev/null 2>&1 || [ -d "${PYENV_ROOT:-$HOME/.pyenv}" ]; then
  root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  for dir in $(ls -d "$root"/versions/3.10.* 2>/dev/null | sort -V -r); do
    if is_310 "$dir/bin/python3.10"; then
      echo "$dir/bin/python3.10"
      exit 0
    fi
  done
fi

cat >&2 <<'MSG'
error: Kefu needs Python 3.10 (Rasa 3.6 does not install on 3.11 or newer).
No Python 3.10 was found on PATH or among pyenv's versions.
Install one, e.g. `pyenv install 3.10.13`, or put python3.10 on PATH.
MSG
exit 1
