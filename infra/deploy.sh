#!/usr/bin/env bash
# `make deploy`: the stack, then the web console. Needs AWS credentials (the usual
# AWS_PROFILE / AWS_DEFAULT_REGION / ... environment of the AWS CLI).
#
#   infra/deploy.sh                    sam build, sam deploy, then `web`
#   infra/deploy.sh web                build web/, upload it to the stack's bucket,
#                                      write /config.json, invalidate CloudFront
#   infra/deploy.sh config-json FILE   print the console's config.json made from the
#                                      stack outputs in FILE (describe-stacks Outputs JSON)
#
#   STACK    the stack name (default tierdesk)
#   PARAMS   more `sam deploy --parameter-overrides`, e.g. 'StripeSecretArn=arn:aws:...'
#            (needed on the first deploy; later deploys keep each parameter's previous value)
#   CONSOLE_CLIENT_ID   with an existing pool (JwtIssuer): the console's app client id
#   AWS_CLI, SAM_CLI, WEB_DIR   other aws / sam executables and app folder (the
#            template::web tests run the whole flow with recording stand-ins)
#
# The console client's redirect URLs are on the CloudFront domain, which exists only
# after the stack does, and the template cannot name it (client -> distribution ->
# API authorizer -> client is a cycle): sam deploy gets it as ConsoleDomain from the
# stack's ConsoleDomainName output, so the very first deploy runs sam deploy twice.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${STACK:-tierdesk}"
PARAMS="${PARAMS:-}"
WEB="${WEB_DIR:-$ROOT/web}"
DIST="$WEB/dist"

log() { printf 'deploy: %s\n' "$*" >&2; }
die() { printf 'deploy.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# The console is built from web/ (Vite, `npm run build` -> web/dist). Checked before
# anything is deployed, so a checkout without it changes nothing in AWS.
require_web() {
    [ -d "$WEB" ] || die "web/ does not exist: there is no web console to deploy yet (nothing was deployed)"
    [ -f "$WEB/package.json" ] || die "web/package.json is missing: web/ is not a buildable app (nothing was deployed)"
    [ -f "$WEB/package-lock.json" ] || die "web/package-lock.json is missing: npm ci needs the committed lockfile (nothing was deployed)"
    command -v npm >/dev/null 2>&1 || die "npm is not on PATH (Node 20.19+ builds the console)"
}

aws_cli() { "$AWS" "$@"; }

# The stack's outputs as describe-stacks JSON ([{"OutputKey":..,"OutputValue":..}]),
# or nothing when the stack does not exist yet. Any other failure (credentials,
# network) stops the deploy: taken for "no stack", it would reset ConsoleDomain.
stack_outputs() {
    local err
    err="$(mktemp)"
    if aws_cli cloudformation describe-stacks --stack-name "$STACK" \
        --query 'Stacks[0].Outputs' --output json 2>"$err"; then
        rm -f "$err"
        return 0
    fi
    if grep -q "does not exist" "$err"; then
        rm -f "$err"
        return 0
    fi
    cat "$err" >&2
    rm -f "$err"
    die "could not read the outputs of stack $STACK"
}

# output <outputs json file> <key>: one output's value, empty when absent.
output() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
text = open(sys.argv[1]).read().strip()
outs = json.loads(text) if text and text != "null" else []
print(next((o["OutputValue"] for o in outs if o["OutputKey"] == sys.argv[2]), ""))
EOF
}

# config.json, the console's contract (web/ fetches /config.json at start).
config_json() {
    [ $# -eq 1 ] || usage
    [ -f "$1" ] || die "no such file: $1"
    python3 - "$1" <<'EOF'
import json, os, sys
text = open(sys.argv[1]).read().strip()
outs = {o["OutputKey"]: o["OutputValue"] for o in (json.loads(text) if text and text != "null" else [])}

def need(key, hint=""):
    value = outs.get(key, "")
    if not value:
        sys.exit(f"deploy.sh: error: the stack has no output {key}{hint}")
    return value

domain = need("ConsoleDomainName")
authority = need("ConsoleAuthority")
client_id = outs.get("ConsoleClientId") or os.environ.get("CONSOLE_CLIENT_ID", "")
if not client_id:
    sys.exit("deploy.sh: error: no ConsoleClientId output (the stack uses an existing pool, JwtIssuer): "
             "set CONSOLE_CLIENT_ID to that pool's public console client")
config = {
    "auth": "cognito",
    "authority": authority,
    "clientId": client_id,
    # Exactly the console client's CallbackURLs / LogoutURLs (template.yaml).
    "redirectUri": f"https://{domain}/auth/callback",
    "postLogoutRedirectUri": f"https://{domain}/",
}
# Cognito's discovery document has no end_session_endpoint: sign-out is the hosted
# UI's /logout on this domain (client_id, logout_uri).
if outs.get("CognitoDomain"):
    config["cognitoDomain"] = outs["CognitoDomain"]
print(json.dumps(config, indent=2))
EOF
}

sam_deploy() {
    local console_domain="$1"
    SAM_CLI_TELEMETRY=0 "$SAM" deploy --stack-name "$STACK" --resolve-s3 \
        --capabilities CAPABILITY_IAM --no-confirm-changeset --no-fail-on-empty-changeset \
        --parameter-overrides "ConsoleDomain=\"$console_domain\" $PARAMS"
}

deploy_stack() {
    local outputs before after
    SAM="${SAM_CLI:-$("$ROOT/infra/stack.sh" venv-bin sam)}"
    # sam build runs cargo-lambda (rust-cargolambda) per function; it needs it on PATH.
    (
        cd "$ROOT"
        PATH="$(dirname "$("$ROOT/infra/stack.sh" venv-bin cargo-lambda)"):$PATH" SAM_CLI_TELEMETRY=0 "$SAM" build
    )
    outputs="$(mktemp)"
    stack_outputs >"$outputs"
    before="$(output "$outputs" ConsoleDomainName)"
    (cd "$ROOT" && sam_deploy "$before")
    stack_outputs >"$outputs"
    after="$(output "$outputs" ConsoleDomainName)"
    rm -f "$outputs"
    [ -n "$after" ] || die "stack $STACK has no ConsoleDomainName output after sam deploy"
    if [ "$before" != "$after" ]; then
        log "the console's domain is now known ($after): deploying again so the console client redirects there"
        (cd "$ROOT" && sam_deploy "$after")
    fi
}

deploy_web() {
    local outputs config bucket distribution url invalidation
    log "building the console (npm ci, npm run build in web/)"
    (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error && npm run build)
    [ -f "$DIST/index.html" ] || die "npm run build did not produce web/dist/index.html"

    outputs="$(mktemp)"
    config="$(mktemp)"
    stack_outputs >"$outputs"
    bucket="$(output "$outputs" WebBucketName)"
    distribution="$(output "$outputs" DistributionId)"
    url="$(output "$outputs" ConsoleUrl)"
    [ -n "$bucket" ] && [ -n "$distribution" ] ||
        die "stack $STACK has no WebBucketName/DistributionId output: deploy the stack first (make deploy)"
    config_json "$outputs" >"$config"

    # Hashed files first (a new index.html must never name an asset not uploaded yet);
    # they never change under their name, so browsers and CloudFront keep them a year.
    # Old assets stay: a page loaded before this deploy may still fetch its chunks.
    if [ -d "$DIST/assets" ]; then
        aws_cli s3 sync "$DIST/assets" "s3://$bucket/assets" --only-show-errors \
            --cache-control "public, max-age=31536000, immutable"
    fi
    # index.html and the other unhashed files: revalidated on every load.
    aws_cli s3 sync "$DIST" "s3://$bucket" --only-show-errors --delete \
        --exclude "assets/*" --exclude "config.json" --cache-control "no-cache"
    aws_cli s3 cp "$config" "s3://$bucket/config.json" --only-show-errors \
        --cache-control "no-cache" --content-type "application/json"
    invalidation="$(aws_cli cloudfront create-invalidation --distribution-id "$distribution" \
        --paths "/*" --query 'Invalidation.Id' --output text)"
    rm -f "$outputs" "$config"
    log "uploaded web/dist to s3://$bucket, wrote config.json, invalidation $invalidation (a few minutes)"
    printf 'Console: %s\n' "$url"
}

main() {
    local cmd="${1:-all}"
    [ $# -le 1 ] || [ "$cmd" = config-json ] || usage
    case "$cmd" in
        all)
            require_web
            AWS="${AWS_CLI:-$("$ROOT/infra/stack.sh" venv-bin aws)}"
            deploy_stack
            deploy_web
            ;;
        web)
            require_web
            AWS="${AWS_CLI:-$("$ROOT/infra/stack.sh" venv-bin aws)}"
            deploy_web
            ;;
        config-json)
            shift
            config_json "$@"
            ;;
        -h | --help | help) usage ;;
        *) usage ;;
    esac
}

main "$@"
