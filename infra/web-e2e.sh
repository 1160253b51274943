#!/usr/bin/env bash
# `make test`'s browser step: the console's end-to-end tests (web/e2e, pytest +
# Playwright driving Debian's Chromium headless) against a private stack — the dev
# gateway serving the freshly built console, the Stripe emulator, DynamoDB Local and
# the SES emulator on free loopback ports, seeded as `make run` seeds.
# Screenshots: every screen at 1280×800 and 390 px wide, and any failing test's
# page, in $CARGO_TARGET_DIR/screenshots (target/screenshots by default).
# Bounded: WEB_E2E_TIMEOUT seconds for the whole pytest run (default 420); each
# Playwright wait has its own timeout. Everything it started is stopped on exit.
#   infra/web-e2e.sh                 all browser tests
#   infra/web-e2e.sh -k promotions   pytest arguments pass through
#   infra/web-e2e.sh --bench         the console's `make bench` figures instead
#                                    (web/bench/first_render.py), debug build
#   infra/web-e2e.sh --bench --bin DIR   the same against the binaries in DIR
#                                    (devgw, devctl, stripe-emulator; `make bench`
#                                    passes its release build)
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
TIMEOUT="${WEB_E2E_TIMEOUT:-420}"
BENCH=""
BIN=""
if [ "${1:-}" = "--bench" ]; then
    BENCH=1
    if [ "${2:-}" = "--bin" ]; then
        BIN="${3:?--bin needs a directory}"
    fi
fi
infra/stack.sh install-browser
PYTHON="$(dirname "$(infra/stack.sh venv-bin pytest)")/python"
if [ -z "$BIN" ]; then
    cargo build -q -p devtools -p stripe-emulator --bins
    BIN="$CARGO_TARGET_DIR/debug"
fi
for b in devgw devctl stripe-emulator; do
    [ -x "$BIN/$b" ] || { echo "web-e2e.sh: $BIN/$b is missing" >&2; exit 1; }
done
infra/web.sh build

STATE="$(mktemp -d -t tierdesk-web-e2e.XXXXXX)"
pids=()
cleanup() {
    local pid
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

export TABLE_NAME=tierdesk-web-e2e DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT"
export SES_ENDPOINT="http://127.0.0.1:$SES_PORT" TIERDESK_TEMPLATE="$PWD/template.yaml"
export AWS_EC2_METADATA_DISABLED=true TIERDESK_PORT="$API_PORT" TIERDESK_WEB_DIR="$PWD/web/dist"
export STRIPE_WEBHOOK_SECRET=whsec_tierdesk_local_development_secret
export STRIPE_API_KEY=sk_test_tierdesk_local STRIPE_API_BASE="http://127.0.0.1:$STRIPE_PORT"
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
    if [ "$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "http://127.0.0.1:$API_PORT/")" = 200 ]; then
        up=1
        break
    fi
    sleep 0.1
done
[ -n "$up" ] || { tail -20 "$STATE/devgw.log" >&2; echo "web-e2e.sh: devgw did not come up" >&2; exit 1; }

export TIERDESK_CONSOLE_URL="http://127.0.0.1:$API_PORT" TIERDESK_SES_URL="http://127.0.0.1:$SES_PORT"
export TIERDESK_SCREENSHOTS="$CARGO_TARGET_DIR/screenshots"
rm -rf "$TIERDESK_SCREENSHOTS"
mkdir -p "$TIERDESK_SCREENSHOTS"
status=0
if [ -n "$BENCH" ]; then
    echo "console bench against $BIN/devgw" >&2
    timeout --kill-after=10 "$TIMEOUT" "$PYTHON" web/bench/first_render.py || status=$?
    exit "$status"
fi
timeout --kill-after=10 "$TIMEOUT" "$PYTHON" -m pytest -q -p no:cacheprovider web/e2e "$@" || status=$?
if [ "$status" -ne 0 ]; then
    echo "web-e2e.sh: browser tests failed (status $status); screenshots in $TIERDESK_SCREENSHOTS, gateway log:" >&2
    tail -20 "$STATE/devgw.log" >&2
fi
exit "$status"
