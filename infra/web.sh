#!/usr/bin/env bash
# The console (web/): install its npm packages, build it, check it, test it.
#   infra/web.sh build    npm ci when node_modules is missing or older than the
#                         lockfile, then generate the API types and build web/dist
#   infra/web.sh check    tsc --noEmit (types generated from infra/openapi.yaml),
#                         eslint, and the unit tests (vitest)
#   infra/web.sh e2e      the browser tests (web/e2e, Playwright driving Debian's
#                         Chromium) against a private stack; screenshots of every
#                         screen at 1280 and 390 px in $CARGO_TARGET_DIR/screenshots
set -euo pipefail
cd "$(dirname "$0")/.."

npm_ci() {
    command -v npm >/dev/null 2>&1 || { echo "web.sh: npm is not on PATH (Node 20.19+ is needed)" >&2; exit 1; }
    # node_modules/.package-lock.json is npm's record of what it installed.
    if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
        echo "console: npm ci (first run, or the lockfile changed)..." >&2
        (cd web && npm ci --no-audit --no-fund --loglevel=error) >&2
    fi
}

case "${1:-}" in
    build)
        npm_ci
        (cd web && npm run -s gen >/dev/null && npx vite build --logLevel warn) >&2
        ;;
    check)
        npm_ci
        (cd web && npm run -s gen >/dev/null && npx tsc --noEmit && npx eslint . && npx vitest run --reporter=dot)
        ;;
    e2e)
        shift
        exec infra/web-e2e.sh "$@"
        ;;
    *)
        echo "usage: infra/web.sh build | check | e2e [pytest args]" >&2
        exit 2
        ;;
esac
