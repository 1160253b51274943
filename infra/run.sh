#!/usr/bin/env bash
# `make run`: emulators, table from template.yaml, seed, dev gateway — all on
# 127.0.0.1, all in the background; `make stop` (this script with `stop`) ends them.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORT:-3000}" DDB_PORT="${DDB_PORT:-8000}" SES_PORT="${SES_PORT:-8005}" STRIPE_PORT="${STRIPE_PORT:-12111}"
TABLE="${TABLE:-tierdesk-local}" STATE="${STATE:-.stack}"
mkdir -p "$STATE"

stop_gateway() {
  local name
  for name in devgw stripe-emulator; do
    if [[ -f "$STATE/$name.pid" ]]; then
      kill "$(cat "$STATE/$name.pid")" 2>/dev/null || true
      rm -f "$STATE/$name.pid"
    fi
  done
}

if [[ "${1:-}" == "stop" ]]; then
  stop_gateway
  infra/stack.sh stop "$STATE"
  echo "stopped"
  exit 0
fi

stop_gateway
infra/stack.sh stop "$STATE" >/dev/null 2>&1 || true
infra/stack.sh start "$STATE" "$DDB_PORT" "$SES_PORT"

echo "building the dev tools (first run compiles dependencies, a few minutes)..." >&2
cargo build -q -p devtools -p stripe-emulator --bins
echo "building the console (web/)..." >&2
infra/web.sh build

# The Stripe emulator (infra/stripe-emulator): async-stripe talks to it through
# STRIPE_API_BASE, and it signs and sends its webhooks to the dev gateway.
export STRIPE_WEBHOOK_SECRET="${STRIPE_WEBHOOK_SECRET:-whsec_tierdesk_local_development_secret}"
export STRIPE_API_KEY="${STRIPE_API_KEY:-sk_test_tierdesk_local}" STRIPE_API_BASE="http://127.0.0.1:$STRIPE_PORT"
setsid nohup target/debug/stripe-emulator --port "$STRIPE_PORT" \
  --webhook-url "http://127.0.0.1:$PORT/api/webhooks/stripe" >"$STATE/stripe-emulator.log" 2>&1 </dev/null &
echo $! >"$STATE/stripe-emulator.pid"
for _ in $(seq 1 100); do
  curl -s --noproxy '*' -o /dev/null "http://127.0.0.1:$STRIPE_PORT/_emulator/clock" && break
  sleep 0.1
done

export TABLE_NAME="$TABLE" DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT" TIERDESK_PORT="$PORT"
export SES_ENDPOINT="http://127.0.0.1:$SES_PORT" TIERDESK_TEMPLATE="$PWD/template.yaml"
export AWS_EC2_METADATA_DISABLED=true
target/debug/devctl create-table
target/debug/devctl seed

TIERDESK_WEB_DIR="$PWD/web/dist" setsid nohup target/debug/devgw >"$STATE/devgw.log" 2>&1 </dev/null &
echo $! >"$STATE/devgw.pid"
for _ in $(seq 1 100); do
  if curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/tiers" | grep -q 200; then
    break
  fi
  sleep 0.1
done
curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/tiers" | grep -q 200 || {
  echo "dev gateway did not come up; see $STATE/devgw.log" >&2
  tail -20 "$STATE/devgw.log" >&2
  exit 1
}

cat <<MSG

Tierdesk is running (stop with: make stop)
  pricing page   http://127.0.0.1:$PORT/pricing         (public: choose a plan, create a partner account, pay with the Stripe emulator)
  partner portal http://127.0.0.1:$PORT/partner-portal  (new partner: http://127.0.0.1:$PORT/dev/sign-up)
  console        http://127.0.0.1:$PORT/                (sign in: http://127.0.0.1:$PORT/dev/sign-in)
                 one click: http://127.0.0.1:$PORT/dev/sign-in?role=sales_manager
                            http://127.0.0.1:$PORT/dev/sign-in?role=sales_rep
                            http://127.0.0.1:$PORT/dev/sign-in?role=admin
                 a second manager (to approve a first one's promotion or quote):
                            http://127.0.0.1:$PORT/dev/sign-in?role=sales_manager&user=second
  API            http://127.0.0.1:$PORT/api        (routes: infra/openapi.yaml)
  public catalog http://127.0.0.1:$PORT/api/tiers
  DynamoDB Local http://127.0.0.1:$DDB_PORT         table $TABLE
  SES emulator   http://127.0.0.1:$SES_PORT/store   (sent mail as JSON)
  Stripe         http://127.0.0.1:$STRIPE_PORT        (emulator; webhooks signed with STRIPE_WEBHOOK_SECRET)
                 pay a checkout: curl -X POST http://127.0.0.1:$STRIPE_PORT/_emulator/checkout/sessions/<cs_id>/complete
  mail viewer    http://127.0.0.1:$SES_PORT/        (sent mail in the browser)
  promotions     demo codes WELCOME20 (new partners), GOLD500 (gold), VIP35 (waiting for approval)
                 curl -X POST -H 'content-type: application/json' -d '{"code":"GOLD500","tierId":"gold"}' http://127.0.0.1:$PORT/api/promotions/validate
  expiry cron    curl -X POST 'http://127.0.0.1:$PORT/_local/cron/expiry-cron?date=$(date -u +%F)'
                 (also runs daily at 06:15 UTC; make invoke FN=expiry-cron EVENT=events/expiry-cron.json)
  logs           $STATE/

Dev tokens (12 h; send as "Authorization: Bearer <token>"):
MSG
for role in sales_rep sales_manager admin; do
  printf '  %-14s %s\n' "$role" "$(target/debug/devctl token "$role")"
done
# A partner token for the first demo partner (self-service billing: /api/billing/*).
demo_partner="$(curl -s --noproxy '*' -H "Authorization: Bearer $(target/debug/devctl token admin | tail -1)" \
  "http://127.0.0.1:$PORT/api/admin/partners?tier=free&limit=1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["partnerId"])' 2>/dev/null || echo prt_demo)"
printf '  %-14s %s\n' "partner" "$(target/debug/devctl token partner "$demo_partner")"
printf '  %-14s %s\n' "" "(partner $demo_partner)"
printf '\nConsole as this partner: http://127.0.0.1:%s/dev/sign-in?role=partner&partner=%s\n' "$PORT" "$demo_partner"
