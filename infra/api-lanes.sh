#!/usr/bin/env bash
# `make test`'s API suite (tests/tests/api), split over lanes that each have a
# private stack: their own DynamoDB Local and SES emulator on free loopback ports.
#
# Why lanes: alone, most API tests take well under a second; on one shared
# emulator the whole suite took 45 minutes, because a test that fires hundreds of
# concurrent requests (or hundreds of transactions) takes the emulator's
# throughput from every other test running beside it. A lane runs its tests one
# at a time on its own emulator, so a heavy test slows only its own lane. Tests
# are dealt to lanes round-robin in name order, so each module's tests spread
# over every lane.
#
#   infra/api-lanes.sh [EXACT_TEST_NAME_TO_SKIP...]
#
# API_TEST_LANES (default 4) lanes; API_TEST_THREADS (default 1) test threads in
# each; API_TEST_LANE_TIMEOUT (default 2400) seconds before a lane is stopped and
# counted as failed; API_TEST_FILTER (a regex over test names) runs only those. Each lane's log is printed when it ends; the script fails
# if any lane did.
# The caller's environment (TIERDESK_RECORD_CALLS, TIERDESK_TEMPLATE, …) reaches
# every lane; DYNAMODB_ENDPOINT and SES_ENDPOINT are each lane's own.
set -euo pipefail
cd "$(dirname "$0")/.."

LANES="${API_TEST_LANES:-4}"
THREADS="${API_TEST_THREADS:-1}"
LANE_TIMEOUT="${API_TEST_LANE_TIMEOUT:-2400}"
[[ "$LANES" =~ ^[1-9][0-9]*$ ]] || { echo "api-lanes: API_TEST_LANES must be a whole number from 1" >&2; exit 2; }
SKIP=("$@")

cargo test -q -p tierdesk-tests --test api --no-run
# API_TEST_FILTER (an extended regex over test names) narrows the run by hand.
mapfile -t NAMES < <(cargo test -q -p tierdesk-tests --test api -- --list 2>/dev/null | sed -n 's/: test$//p' |
    grep -E -- "${API_TEST_FILTER:-.}" | sort)
[ "${#NAMES[@]}" -gt 0 ] || { echo "api-lanes: no tests listed" >&2; exit 1; }

WORK="$(mktemp -d -t tierdesk-lanes.XXXXXX)"
declare -a PIDS=()
cleanup() {
    # Lanes still running (an early exit): each one's process group.
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do kill -- "-$pid" 2>/dev/null || true; done
    for ((i = 0; i < LANES; i++)); do infra/stack.sh stop "$WORK/stack$i" >/dev/null 2>&1 || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# Deal the tests round-robin.
declare -a LANE_TESTS
for ((i = 0; i < LANES; i++)); do LANE_TESTS[i]=""; done
n=0
for name in "${NAMES[@]}"; do
    skip=0
    for s in "${SKIP[@]+"${SKIP[@]}"}"; do [[ "$name" == "$s" ]] && skip=1; done
    [ "$skip" = 1 ] && continue
    LANE_TESTS[n % LANES]+="$name"$'\n'
    n=$((n + 1))
done

# Ports are taken one lane at a time, each stack started before the next port is
# asked for, so two lanes never draw the same free port.
for ((i = 0; i < LANES; i++)); do
    mapfile -t mine < <(printf '%s' "${LANE_TESTS[i]}")
    # No tests (more lanes than tests): without a filter it would run them all.
    [ "${#mine[@]}" -gt 0 ] || continue
    started=0
    for attempt in 1 2 3; do
        ddb="$(infra/stack.sh freeport)"
        ses="$(infra/stack.sh freeport)"
        while [[ "$ses" == "$ddb" ]]; do ses="$(infra/stack.sh freeport)"; done
        # A free port can be taken between the ask and the bind: try fresh ones.
        if infra/stack.sh start "$WORK/stack$i" "$ddb" "$ses" >"$WORK/stack$i.log" 2>&1; then
            started=1
            break
        fi
        infra/stack.sh stop "$WORK/stack$i" >/dev/null 2>&1 || true
    done
    if [ "$started" != 1 ]; then
        echo "api-lanes: lane $i's stack did not start:" >&2
        cat "$WORK/stack$i.log" >&2
        exit 1
    fi
    # Its own process group (setsid), so a cleanup stops cargo and the tests too.
    setsid -w bash -c '
        start=$SECONDS
        timeout --kill-after=30 "$0" env DYNAMODB_ENDPOINT="$1" SES_ENDPOINT="$2" \
            cargo test -q -p tierdesk-tests --test api -- --exact --test-threads="$3" "${@:6}" >"$4" 2>&1
        rc=$?
        echo "lane $5: $(($# - 5)) tests, exit $rc, $((SECONDS - start)) s" >>"$4"
        exit $rc
    ' "$LANE_TIMEOUT" "http://127.0.0.1:$ddb" "http://127.0.0.1:$ses" "$THREADS" "$WORK/lane$i.log" "$i" "${mine[@]}" &
    PIDS[i]=$!
done

failed=0
for i in "${!PIDS[@]}"; do
    if ! wait "${PIDS[i]}"; then failed=1; fi
    unset 'PIDS[i]'
done
for ((i = 0; i < LANES; i++)); do
    [ -f "$WORK/lane$i.log" ] || continue
    # Passing lanes: the summary lines; a failing lane: its whole log.
    if grep -q "exit 0," "$WORK/lane$i.log"; then
        grep -E "^test result|^lane " "$WORK/lane$i.log" || true
    else
        cat "$WORK/lane$i.log"
    fi
done
exit "$failed"
