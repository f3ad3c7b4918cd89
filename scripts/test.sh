#!/usr/bin/env bash
# The whole test suite, in stages (fastest feedback first). Run by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

MODEL=models/kefu.tar.gz
mkdir -p results
# scripts/system_deps.sh installed PostgreSQL: its tests must run, not skip
export KEFU_REQUIRE_POSTGRES="${KEFU_REQUIRE_POSTGRES:-1}"
step() { echo; echo "==== $*"; }

step "1/4 rasa data validate --fail-on-warnings"
# Rasa 3.6 warns (without failing) about responses uttered by custom actions
# ("not used in any story") and EXTERNAL_ intents triggered through the HTTP
# API ("not found in the NLU training data"); tests/test_domain.py checks
# those, so they are summarised here. Anything else is shown.
if ! .venv/bin/rasa data validate --fail-on-warnings > results/validate.log 2>&1; then
  cat results/validate.log; exit 1
fi
known="is not used in any story or rule|intent 'EXTERNAL_[a-z_]*' is listed in the domain"
summarised=$(grep -cE "$known" results/validate.log || true)
grep -vE "$known" results/validate.log | grep -E "UserWarning|ERROR|rasa.validator" || true
echo "validation passed ($summarised known warnings summarised, see results/validate.log)"

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
