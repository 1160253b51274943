#!/usr/bin/env bash
# `make test`: lint, then every test against a private emulator stack on free
# loopback ports. The stack is torn down on exit, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."

infra/stack.sh install
STATE_DIR="$(mktemp -d -t tierdesk-test.XXXXXX)"
cleanup() { infra/stack.sh stop "$STATE_DIR" || true; rm -rf "$STATE_DIR"; }
trap cleanup EXIT

DDB_PORT="$(infra/stack.sh freeport)"
SES_PORT="$(infra/stack.sh freeport)"
while [[ "$SES_PORT" == "$DDB_PORT" ]]; do SES_PORT="$(infra/stack.sh freeport)"; done
infra/stack.sh start "$STATE_DIR" "$DDB_PORT" "$SES_PORT"

export DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT" SES_ENDPOINT="http://127.0.0.1:$SES_PORT"
export TIERDESK_TEMPLATE="$PWD/template.yaml" AWS_EC2_METADATA_DISABLED=true

echo "== lint" >&2
cargo fmt --all -- --check
cargo clippy -q --workspace --all-targets -- -D warnings
"$(infra/stack.sh venv-bin cfn-lint)" template.yaml

echo "== tests" >&2
cargo test -q --workspace
