#!/usr/bin/env bash
# `make test`'s API-contract step: schemathesis (pinned in infra/stack.sh) sends
# requests generated from infra/openapi.yaml to a private running API — the dev
# gateway `devgw` with the Stripe emulator, DynamoDB Local and the SES emulator,
# all on free loopback ports, seeded as `make run` seeds — once per role: admin,
# sales_manager, sales_rep, partner (a real seeded partner), service and an
# anonymous caller. Its checks: no 5xx, every status code documented for the
# operation, every response body valid against its documented schema.
#
# Bounded: the examples and fuzzing phases, SCHEMATHESIS_EXAMPLES requests per
# operation and phase (default 5, about 500 requests a role, 20-60 s on 2 cores);
# SCHEMATHESIS_ROLE_TIMEOUT seconds per role (default 240; a role that runs out of
# time fails the step). A deeper run by hand adds the coverage phase (boundary
# and invalid values of every documented constraint, several minutes a role):
#   SCHEMATHESIS_PHASES=examples,coverage,fuzzing,stateful infra/schemathesis.sh admin
# One worker: schemathesis on Python 3.11 can trip over CPython's AST parser
# when two worker threads build strategies at once.
# Everything it started is stopped on exit.
#
#   infra/schemathesis.sh                 all roles
#   infra/schemathesis.sh admin partner   only these roles
set -euo pipefail
cd "$(dirname "$0")/.."

EXAMPLES="${SCHEMATHESIS_EXAMPLES:-5}"
ROLE_TIMEOUT="${SCHEMATHESIS_ROLE_TIMEOUT:-240}"
# A fixed generation seed: the same requests every run, so a red step reproduces.
GEN_SEED="${SCHEMATHESIS_SEED:-18}"
ROLES=("$@")
[ ${#ROLES[@]} -gt 0 ] || ROLES=(anonymous partner service sales_rep sales_manager admin)

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
SCHEMATHESIS="$(infra/stack.sh venv-bin schemathesis)"
cargo build -q -p devtools -p stripe-emulator --bins
BIN="$CARGO_TARGET_DIR/debug"

STATE="$(mktemp -d -t tierdesk-schemathesis.XXXXXX)"
pids=()
cleanup() {
    local pid
    # SCHEMATHESIS_LOG_DIR: keep the logs (devgw, seed, one per role) there.
    if [ -n "${SCHEMATHESIS_LOG_DIR:-}" ]; then
        mkdir -p "$SCHEMATHESIS_LOG_DIR" && cp "$STATE"/*.log "$SCHEMATHESIS_LOG_DIR"/ 2>/dev/null || true
    fi
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    infra/stack.sh stop "$STATE" || true
    rm -rf "$STATE"
}
trap cleanup EXIT

port() { infra/stack.sh freeport; }
DDB_PORT="$(port)"
SES_PORT="$(port)"
while [ "$SES_PORT" = "$DDB_PORT" ]; do SES_PORT="$(port)"; done
infra/stack.sh start "$STATE" "$DDB_PORT" "$SES_PORT"
API_PORT="$(port)"
STRIPE_PORT="$(port)"

export TABLE_NAME=tierdesk-schemathesis DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT"
export SES_ENDPOINT="http://127.0.0.1:$SES_PORT" TIERDESK_TEMPLATE="$PWD/template.yaml"
export AWS_EC2_METADATA_DISABLED=true TIERDESK_PORT="$API_PORT"
export STRIPE_WEBHOOK_SECRET=whsec_tierdesk_local_development_secret
export STRIPE_API_KEY=sk_test_tierdesk_local STRIPE_API_BASE="http://127.0.0.1:$STRIPE_PORT"
# No daily cron run in the middle of the step.
export TIERDESK_CRON_DAILY_AT=off

"$BIN/stripe-emulator" --port "$STRIPE_PORT" --webhook-url "http://127.0.0.1:$API_PORT/api/webhooks/stripe" \
    >"$STATE/stripe-emulator.log" 2>&1 </dev/null &
pids+=("$!")
for _ in $(seq 1 100); do
    curl -s --noproxy '*' -o /dev/null "http://127.0.0.1:$STRIPE_PORT/_emulator/clock" && break
    sleep 0.1
done
"$BIN/devctl" create-table >/dev/null
"$BIN/devctl" seed >"$STATE/seed.log"
"$BIN/devgw" >"$STATE/devgw.log" 2>&1 </dev/null &
pids+=("$!")
up=""
for _ in $(seq 1 100); do
    if [ "$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "http://127.0.0.1:$API_PORT/api/tiers")" = 200 ]; then
        up=1
        break
    fi
    sleep 0.1
done
[ -n "$up" ] || { tail -20 "$STATE/devgw.log" >&2; echo "schemathesis.sh: devgw did not come up" >&2; exit 1; }

token() { "$BIN/devctl" token "$@" | tail -1; }
# A real partner for the partner token: the first seeded one.
PARTNER_ID="$(curl -s --noproxy '*' -H "Authorization: Bearer $(token admin)" \
    "http://127.0.0.1:$API_PORT/api/admin/partners?limit=1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["partnerId"])')"

failed=()
for role in "${ROLES[@]}"; do
    auth=()
    case "$role" in
        anonymous) ;;
        partner) auth=(-H "Authorization: Bearer $(token partner "$PARTNER_ID")") ;;
        *) auth=(-H "Authorization: Bearer $(token "$role")") ;;
    esac
    phases="${SCHEMATHESIS_PHASES:-examples,fuzzing}"
    echo "-- schemathesis as $role ($phases)" >&2
    # Run from the state dir: schemathesis writes nothing into the repository.
    if ! (cd "$STATE" && timeout --kill-after=10 "$ROLE_TIMEOUT" "$SCHEMATHESIS" run \
        "$OLDPWD/infra/openapi.yaml" --url "http://127.0.0.1:$API_PORT" "${auth[@]}" \
        --checks not_a_server_error,status_code_conformance,response_schema_conformance \
        --phases "$phases" --max-examples "$EXAMPLES" --seed "$GEN_SEED" --no-shrink --workers 1 \
        --generation-database none --request-timeout 10 --no-color \
        --exclude-path /api/webhooks/stripe >"$STATE/schemathesis-$role.log" 2>&1); then
        failed+=("$role")
        # The failures and the summary, not every passing operation.
        sed -n '/FAILURES\|ERRORS/,$p' "$STATE/schemathesis-$role.log" | head -400 >&2
        tail -5 "$STATE/schemathesis-$role.log" >&2
    else
        sed -n '/SUMMARY/,$p' "$STATE/schemathesis-$role.log" | grep -v '^$' >&2
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "schemathesis: failed for ${failed[*]} (a timeout counts as a failure)" >&2
    exit 1
fi
echo "schemathesis: ${ROLES[*]}: no failures" >&2
