#!/usr/bin/env bash
# The OpenAPI document's lint (make lint, make test): openapi-spec-validator and
# spectral with the built-in `spectral:oas` rules (infra/spectral.yaml). Errors
# fail; spectral warnings are printed. Tools come from infra/stack.sh install.
set -euo pipefail
cd "$(dirname "$0")/.."
"$(infra/stack.sh venv-bin openapi-spec-validator)" infra/openapi.yaml
"$(infra/stack.sh spectral-bin)" lint --quiet --fail-severity error --ruleset infra/spectral.yaml infra/openapi.yaml
# A reader sees summaries and descriptions: no internal specification references.
if grep -n -i 'seed' infra/openapi.yaml; then
    echo "infra/openapi.yaml: internal 'seed' references (above) in text a reader sees" >&2
    exit 1
fi
