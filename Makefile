# Tierdesk — the two commands are `make run` and `make test`; both install what
# they need (see README). Variables can be overridden: `make run PORT=3100`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PORT     ?= 3000
DDB_PORT ?= 8000
SES_PORT ?= 8005
STRIPE_PORT ?= 12111
TABLE    ?= tierdesk-local
STATE    ?= .stack
ROLE     ?= admin
PARTNER  ?=
EVENT    ?= events/tiers-public-catalog.json
# Optional: the function (crate name) the event must go to, e.g. FN=expiry-cron.
FN       ?=
# `make deploy`: the CloudFormation stack's name, and more `sam deploy` parameter
# overrides (the first deploy needs StripeSecretArn=...; later ones keep previous values).
STACK    ?= tierdesk
PARAMS   ?=
# Lambda crates under functions/ that `make build` packages.
FUNCTIONS ?= tiers partners billing stripe-webhook expiry-cron promotions quotes usage experiments analytics signup
export PORT DDB_PORT SES_PORT STRIPE_PORT TABLE STATE STACK PARAMS

.PHONY: help run stop test lint fmt build bench deploy deploy-web token invoke

help:
	@echo "make run | stop | test | lint | build | bench | deploy [STACK=..] [PARAMS=..] | deploy-web | token ROLE=.. [PARTNER=..] | invoke EVENT=.. [FN=..]"

run: ## start emulators, create + seed the table, serve the API on 127.0.0.1:$(PORT)
	@infra/run.sh

stop: ## stop everything `make run` started
	@infra/run.sh stop

test: ## lint, then every test against a private stack on free ports
	@infra/test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	"$$(infra/stack.sh venv-bin cfn-lint)" template.yaml
	infra/openapi-lint.sh
	SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 "$$(infra/stack.sh venv-bin sam)" validate --lint --template template.yaml
	infra/web.sh check

fmt:
	cargo fmt --all

build: ## arm64 Lambda bootstraps under target/lambda/<function>/
	@# cargo-lambda finds zig (pip package `ziglang`) through the venv's python3.
	PATH="$$(dirname "$$(infra/stack.sh venv-bin cargo-lambda)"):$$PATH" \
	  cargo-lambda lambda build --release --arm64 $(addprefix -p ,$(FUNCTIONS))

bench: ## DynamoDB calls per route, cold init, binary size, loopback load
	@infra/bench.sh

deploy: ## needs AWS credentials; see README "Deployment": sam build, sam deploy, then the web console (infra/deploy.sh)
	@infra/deploy.sh

deploy-web: ## only the web console: build web/, upload, config.json, invalidate CloudFront
	@infra/deploy.sh web

token: ## a dev token for ROLE (and PARTNER); the token is the last line
	@cargo run -q -p devtools --bin devctl -- token $(ROLE) $(PARTNER)

invoke: ## feed an events/*.json through its function in-process against the local stack (FN=expiry-cron checks the target)
	@TABLE_NAME=$(TABLE) DYNAMODB_ENDPOINT=http://127.0.0.1:$(DDB_PORT) SES_ENDPOINT=http://127.0.0.1:$(SES_PORT) \
	  AWS_EC2_METADATA_DISABLED=true cargo run -q -p devtools --bin devctl -- invoke $(EVENT) $(FN)
