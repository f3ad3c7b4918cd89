#!/usr/bin/env bash
# Start the action server (5055), the Rasa server (5005), the web chat page
# (8080) and the agent workspace (8081); print the URLs; stop everything on
# Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

RASA_PORT=5005
ACTIONS_PORT=5055
WEB_PORT=${KEFU_WEB_PORT:-8080}
WORKSPACE_PORT=${KEFU_WORKSPACE_PORT:-8081}
TOKEN=${KEFU_RASA_TOKEN:-}
if [ -z "$TOKEN" ]; then
  TOKEN=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(24))')
  echo "==> KEFU_RASA_TOKEN is not set; generated a token for this run"
fi

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "==> stopping"
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT

.venv/bin/rasa run actions --actions actions --port "$ACTIONS_PORT" --quiet &
pids+=($!)
.venv/bin/rasa run --model models/kefu.tar.gz --endpoints "${KEFU_ENDPOINTS:-endpoints.yml}" \
  --credentials credentials.yml --port "$RASA_PORT" --cors "*" \
  --enable-api "--auth-token=$TOKEN" --quiet &
pids+=($!)
.venv/bin/python scripts/serve_web.py --port "$WEB_PORT" \
  --rasa-url "http://localhost:$RASA_PORT" &
pids+=($!)
KEFU_RASA_URL="http://localhost:$RASA_PORT" KEFU_RASA_TOKEN="$TOKEN" \
  .venv/bin/python -m workspace --port "$WORKSPACE_PORT" &
pids+=($!)

echo "==> waiting for the Rasa server to load the model"
until curl -fsS "http://localhost:$RASA_PORT/status?token=$TOKEN" >/dev/null 2>&1; do
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "error: a server exited during start-up" >&2; exit 1; }
  done
  sleep 1
done

cat <<MSG

  Kefu is running.
    Web chat:       http://localhost:$WEB_PORT/
    Agent workspace: http://localhost:$WORKSPACE_PORT/
      (create an agent: .venv/bin/python scripts/create_agent.py USER --name 名字)
    REST channel:   http://localhost:$RASA_PORT/webhooks/rest/webhook
    Socket.IO:      http://localhost:$RASA_PORT/socket.io/
    HTTP API:       http://localhost:$RASA_PORT/  (token: $TOKEN)
    Action server:  http://localhost:$ACTIONS_PORT/webhook
  Press Ctrl-C to stop.

MSG
wait -n "${pids[@]}"
