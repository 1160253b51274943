#!/usr/bin/env bash
# `make bench`: DynamoDB calls per route, partner list costs at 1,000 and 50,000
# partners, the expiry cron's reads at 100,000 partners with 1,000 due, Tierdesk's
# own time, DynamoDB capacity and monthly cost per route (`bench cost`), cold init and
# size of every function bootstrap in one table, raw DynamoDB Local latency, and a bounded loopback load of 1,000
# concurrent users through the dev gateway. Runs on its own stack on free ports;
# everything stops by itself. The report is also written to target/bench/report.md.
set -euo pipefail
cd "$(dirname "$0")/.."

infra/stack.sh install
STATE_DIR="$(mktemp -d -t tierdesk-bench.XXXXXX)"
GW_PIDS=()
cleanup() {
  for pid in "${GW_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  infra/stack.sh stop "$STATE_DIR" || true
  rm -rf "$STATE_DIR"
}
trap cleanup EXIT

DDB_PORT="$(infra/stack.sh freeport)"; SES_PORT="$(infra/stack.sh freeport)"
GW_PORT="$(infra/stack.sh freeport)"; GW_NOCACHE_PORT="$(infra/stack.sh freeport)"
infra/stack.sh start "$STATE_DIR" "$DDB_PORT" "$SES_PORT"

# A separate target dir keeps release artefacts from blocking debug builds.
export CARGO_TARGET_DIR="$PWD/target/bench"
echo "building release binaries (several minutes on 2 cores the first time)..." >&2
cargo build -q --release -p tiers -p partners -p billing -p stripe-webhook -p expiry-cron -p promotions -p usage -p quotes -p experiments -p analytics -p devtools -p stripe-emulator
BIN="$CARGO_TARGET_DIR/release"
# The arm64 bootstraps Lambda runs (`make build`: cargo-lambda and zig, into
# target/lambda/); the cold-init table reports their stripped sizes. Cached after
# the first run, like the release build above.
echo "building the arm64 Lambda bootstraps (make build; 15-20 minutes on 2 cores the first time)..." >&2
(unset CARGO_TARGET_DIR; make -s build >&2)

export TABLE_NAME=tierdesk-bench DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT" TIERDESK_TEMPLATE="$PWD/template.yaml"
export SES_ENDPOINT="http://127.0.0.1:$SES_PORT"
export AWS_EC2_METADATA_DISABLED=true RUST_LOG=warn
"$BIN/devctl" create-table >/dev/null
"$BIN/devctl" seed >/dev/null

# Two gateways over the same table: the default public-read cache, and none.
TIERDESK_PORT="$GW_PORT" "$BIN/devgw" >"$STATE_DIR/devgw.log" 2>&1 &
GW_PIDS+=($!)
PUBLIC_CACHE_TTL_SECS=0 TIERDESK_PORT="$GW_NOCACHE_PORT" "$BIN/devgw" >"$STATE_DIR/devgw-nocache.log" 2>&1 &
GW_PIDS+=($!)
for port in "$GW_PORT" "$GW_NOCACHE_PORT"; do
  for _ in $(seq 1 100); do
    curl -s --noproxy '*' -o /dev/null "http://127.0.0.1:$port/api/tiers" && break
    sleep 0.1
  done
done
ulimit -n 16384 2>/dev/null || true

# Every stage after the load runs on a fresh DynamoDB Local (and SES emulator): the
# data earlier stages leave behind (50,000 partners, usage, redemptions) slows the
# in-memory DynamoDB Local's writes about thirtyfold (analytics' 1,000-partner load:
# 363 s on the shared instance, 12 s on a fresh one), which would measure the
# emulator's backlog instead of Tierdesk.
fresh_stack() {
  infra/stack.sh stop "$STATE_DIR" >/dev/null 2>&1 || true
  DDB_PORT="$(infra/stack.sh freeport)"; SES_PORT="$(infra/stack.sh freeport)"
  while [ "$SES_PORT" = "$DDB_PORT" ]; do SES_PORT="$(infra/stack.sh freeport)"; done
  infra/stack.sh start "$STATE_DIR" "$DDB_PORT" "$SES_PORT" >&2
  export DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT" SES_ENDPOINT="http://127.0.0.1:$SES_PORT"
  "$BIN/devctl" create-table >/dev/null
  "$BIN/devctl" seed >/dev/null
}

{
  # Load first, on the seeded catalog (3 default + 3 demo tiers); the calls stage
  # then grows the catalog to show read costs do not.
  echo "## Loopback load through the dev gateway (release build, DynamoDB Local, same 2-core machine)"
  echo
  "$BIN/bench" ddb-get
  echo
  "$BIN/bench" load "cache 5 s=http://127.0.0.1:$GW_PORT" "no cache=http://127.0.0.1:$GW_NOCACHE_PORT"
  echo
  # The gateways served the load only.
  for pid in "${GW_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  echo "## DynamoDB calls per tiers route"
  echo
  fresh_stack
  "$BIN/bench" calls
  echo
  echo "## partners: DynamoDB calls per route, and list/dashboard reads at 1,000 and 50,000 partners"
  echo
  fresh_stack
  "$BIN/bench" partners
  echo
  echo "## billing: DynamoDB calls per billing route and per Stripe webhook event type (Stripe emulator in-process)"
  echo
  fresh_stack
  "$BIN/bench" billing
  echo
  echo "## promotions: DynamoDB reads and writes per route, validate under 1,000 concurrent users"
  echo
  fresh_stack
  "$BIN/bench" promotions
  echo
  echo "## usage: DynamoDB reads and writes per route, feature check under 1,000 concurrent users"
  echo
  fresh_stack
  "$BIN/bench" usage
  echo
  echo "## analytics: DynamoDB operations per route and summary p50/p95 at 1,000 and 100,000 partners (aggregates only; calls must be equal)"
  echo
  fresh_stack
  "$BIN/bench" analytics
  echo
  echo "## experiments: DynamoDB reads and writes per route, assign under 1,000 concurrent new visitors"
  echo
  fresh_stack
  "$BIN/bench" experiments
  echo
  echo "## quotes: DynamoDB reads and writes per route"
  echo
  fresh_stack
  "$BIN/bench" quotes
  echo
  echo "## expiry cron: DynamoDB reads and run time at 10,000 and 100,000 partners, 1,000 due (SES emulator)"
  echo
  fresh_stack
  "$BIN/bench" cron
  echo
  echo "## cost: own time, DynamoDB capacity and outside calls per route, and the monthly bill (release build, in-process)"
  echo
  fresh_stack
  "$BIN/bench" cost
  echo
  echo "## Function bootstraps: cold init (process start → first Runtime API poll, fake Runtime API on loopback, x86_64 release build) and size"
  echo
  "$BIN/bench" cold-init "$BIN/tiers" "$BIN/partners" "$BIN/billing" "$BIN/stripe-webhook" "$BIN/expiry-cron" \
    "$BIN/promotions" "$BIN/usage" "$BIN/quotes" "$BIN/experiments" "$BIN/analytics"
  # The console: API calls and time of each screen's first render, the JavaScript
  # each loads, the chunks (a private stack of its own on these release binaries;
  # the tables go to stdout, the setup to stderr).
  echo
  echo "## Console first render (release-build dev gateway)"
  infra/web-e2e.sh --bench --bin "$BIN" 2>/dev/null
} | tee "$CARGO_TARGET_DIR/report.md"
