#!/usr/bin/env bash
# Build the spaCy pipeline and train a Rasa model when data/, domain.yml,
# config.yml or the Chinese language resources changed since the last model.
# `--force` always trains.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

MODEL=models/kefu.tar.gz
FINGERPRINT=models/.kefu-fingerprint
inputs=$(find data domain.yml config.yml kefu_nlu scripts/build_spacy_model.py \
  -type f \( -name '*.yml' -o -name '*.py' -o -name '*.txt' \) | LC_ALL=C sort)
want=$(cat $inputs | sha256sum | cut -d' ' -f1)

if [ "${1:-}" != "--force" ] && [ -f "$MODEL" ] && [ -d var/spacy/zh_kefu ] \
    && [ "$(cat "$FINGERPRINT" 2>/dev/null)" = "$want" ]; then
  echo "==> model is up to date ($MODEL)"
  exit 0
fi

echo "==> building the spaCy pipeline"
.venv/bin/python scripts/build_spacy_model.py
echo "==> training the Rasa model (a few minutes on 2 cores)"
start=$(date +%s)
# Rasa prints many harmless warnings while training; keep them in a log
if ! .venv/bin/rasa train --fixed-model-name kefu --out models --quiet > var/train.log 2>&1; then
  cat var/train.log
  echo "error: rasa train failed (log above, also in var/train.log)" >&2
  exit 1
fi
echo "$want" > "$FINGERPRINT"
echo "$(( $(date +%s) - start ))" > models/.kefu-train-seconds
echo "==> trained $MODEL in $(cat models/.kefu-train-seconds)s"
