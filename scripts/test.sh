#!/usr/bin/env bash
# The whole test suite, in stages (fastest feedback first). Run by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

MODEL=models/kefu.tar.gz
step() { echo; echo "==== $*"; }

step "1/4 rasa data validate --fail-on-warnings"
.venv/bin/rasa data validate --fail-on-warnings --quiet

step "2/4 NLU evaluation on the held-out tests/nlu_test.yml"
rm -rf results/nlu
.venv/bin/rasa test nlu --model "$MODEL" --nlu tests/nlu_test.yml --out results/nlu --quiet
.venv/bin/python scripts/nlu_report.py results/nlu --min-accuracy 0.90

step "3/4 end-to-end test stories (tests/stories)"
rm -rf results/core
.venv/bin/rasa test core --model "$MODEL" --stories tests/stories \
  --fail-on-prediction-errors --out results/core --quiet

step "4/4 pytest: units, pipeline, REST and browser tests"
.venv/bin/python -m pytest -q tests
