# Shared by dev.sh and test.sh: the project's virtualenv, free ports, starting and stopping the
# local services (moto's DynamoDB server, the WeChat simulator, cargo lambda watch).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
PIDS=()

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs requirements-dev.txt into .venv once (again when the file changes).
ensure_venv() {
  local stamp="$VENV/.requirements"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
  if ! cmp -s "$ROOT/requirements-dev.txt" "$stamp"; then
    log "installing cargo-lambda, moto and cfn-lint into .venv"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/requirements-dev.txt"
    cp "$ROOT/requirements-dev.txt" "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
  # cargo-lambda finds zig through this Python (ziglang comes with cargo-lambda).
  export CARGO_ZIGBUILD_PYTHON_PATH="$VENV/bin/python"
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http URL SECONDS: until anything answers HTTP at URL.
wait_http() {
  local url=$1 secs=${2:-60} i=0
  while ! curl -s -o /dev/null "$url"; do
    i=$((i + 1))
    if [ "$i" -gt $((secs * 5)) ]; then
      log "nothing answers at $url after ${secs}s"
      return 1
    fi
    sleep 0.2
  done
}

# start NAME LOGFILE CMD...: runs CMD in the background in its own process group.
start() {
  local name=$1 logfile=$2
  shift 2
  setsid "$@" >"$logfile" 2>&1 &
  PIDS+=("$!")
  log "$name started (pid $!, log $logfile)"
}

stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -INT -- "-$pid" 2>/dev/null || true
  done
  sleep 0.5
  for pid in "${PIDS[@]}"; do
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  PIDS=()
}

# moto serves DynamoDB, S3 and Secrets Manager on one port. Dummy credentials for it; the SDK never looks for real ones.
use_local_aws() {
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$1" AWS_ENDPOINT_URL_S3="http://127.0.0.1:$1"
  export AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$1" AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$1"
  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
  export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  # Registered apps' secrets locally: the functions' default prefix, named for the admin command.
  export APP_SECRET_PREFIX=wxinvoice/apps/
}

start_moto() {
  local port=$1 logfile=$2
  start moto "$logfile" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port"
  wait_http "http://127.0.0.1:$port/" 60
}

# Registers apps in the simulator and in the deployment (the admin command, target/debug), as a
# vendor serving several customers runs it; each app's secret goes to (moto's) Secrets Manager.
# Reads lines "kind appid agentid|none origin|-" on stdin; $1 is the simulator's base URL.
register_apps() {
  local sim=$1 apps kind appid agent origin args
  apps=$(cat)
  local sim_apps
  sim_apps=$(echo "$apps" | awk 'BEGIN { printf "[" } { if (NR > 1) printf ","; agent = ($3 == "none") ? "null" : "\"" $3 "\""; printf "{\"kind\":\"%s\",\"appid\":\"%s\",\"secret\":\"demo-secret-%s-%s\",\"agentid\":%s}", $1, $2, $2, $3, agent } END { printf "]" }')
  curl -fsS -X POST "$sim/__sim/options" -d "{\"apps\":$sim_apps}" >/dev/null
  while read -r kind appid agent origin; do
    args=(--kind "$kind" --appid "$appid")
    [ "$agent" != none ] && args+=(--agentid "$agent")
    [ "$origin" != - ] && args+=(--origin "$origin" --jssdk-url "$origin/invoices")
    # Registered disabled until its secret is stored (add says so on stderr), then enabled.
    target/debug/wxinvoice-admin add "${args[@]}" >/dev/null 2>&1
    args=(--appid "$appid")
    [ "$agent" != none ] && args+=(--agentid "$agent")
    echo "demo-secret-$appid-$agent" | target/debug/wxinvoice-admin put-secret "${args[@]}" >/dev/null
    target/debug/wxinvoice-admin enable "${args[@]}" >/dev/null
  done <<<"$apps"
}

# The example pages (examples/h5): npm ci and the esbuild bundles of oa.ts and wecom.ts.
build_examples() {
  command -v npm >/dev/null || { log "npm is missing: the example pages are not built"; return 0; }
  (cd "$ROOT/examples" && npm ci --silent --no-audit --no-fund && npm run --silent build)
}

# Points a copy of the example pages' config.js at a gateway ($2), and the WeCom page at an
# agent ($3 corpid, $4 agentid).
configure_examples() {
  sed -i -e "s|^  api: \"\",|  api: \"$2\",|" \
    -e "s|^  wecom: { appid: \"\", agentid: \"\" },|  wecom: { appid: \"$3\", agentid: \"$4\" },|" "$1"
  grep -q "api: \"$2\"" "$1" && grep -q "agentid: \"$4\"" "$1"
}
