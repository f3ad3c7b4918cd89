#!/usr/bin/env bash
# Chat in the terminal: `rasa shell` with the action server running.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

.venv/bin/rasa run actions --actions actions --port 5055 --quiet &
actions_pid=$!
trap 'kill $actions_pid 2>/dev/null || true; wait $actions_pid 2>/dev/null || true' EXIT
.venv/bin/rasa shell --model models/kefu.tar.gz --endpoints endpoints.yml
