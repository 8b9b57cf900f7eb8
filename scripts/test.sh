#!/usr/bin/env bash
# `make test`: the whole suite from a fresh clone. Installs the local tools into .venv, checks
# formatting, clippy, the SAM template and the docs, starts moto's DynamoDB server, runs the unit,
# property and integration tests, then against `cargo lambda watch`: the end-to-end tests
# (including `cargo lambda invoke` of a scheduled event), schemathesis on openapi.yaml, and a
# bounded load run. Prints a summary.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
STARTED=$(date +%s)
RUN_DIR=$(mktemp -d)
trap stop_all EXIT

ensure_venv

log "supply chain: cargo deny (licences, bans, sources), one rustls, the lock file as committed"
cargo deny --log-level error check licenses bans sources
cargo tree --locked -e normal -i rustls --depth 0 >/dev/null
log "cargo fmt --check"
cargo fmt --all --check
log "cargo clippy -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings
log "cfn-lint template.yaml"
cfn-lint template.yaml
log "template, docs and layout tests: the translated CloudFormation for each option set; the docs' links, tables and configuration table; the layers of shared/"
PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/template tests/docs tests/layout | tee "$RUN_DIR/template.log"
template_passed=$(grep -oE '^[0-9]+ passed' "$RUN_DIR/template.log" | grep -oE '^[0-9]+')
log "cargo lambda build --locked --release --arm64"
cargo lambda build --locked --release --arm64 -p get-token -p get-invoice-batch -p update-status
log "sam validate --lint; sam build (docs/operator.md's deploy steps, up to sam deploy)"
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
sam validate --lint
sam build
sizes=""
for fn in GetTokenFunction:get-token GetInvoiceBatchFunction:get-invoice-batch UpdateStatusFunction:update-status; do
  artifact=".aws-sam/build/${fn%%:*}/bootstrap"
  # An aarch64 ELF executable (e_machine 0xB7 at offset 18), as provided.al2023 on arm64 runs it.
  [ "$(od -An -tx1 -j18 -N2 "$artifact" | tr -d ' ')" = "b700" ] || { log "$artifact is not an arm64 ELF"; exit 1; }
  [ -x "$artifact" ] || { log "$artifact is not executable"; exit 1; }
  bytes=$(stat -c %s "$artifact")
  sizes="$sizes ${fn##*:} $(awk -v b="$bytes" 'BEGIN { printf "%.2f MB", b / 1e6 }');"
done
grep -q 'CodeUri: GetTokenFunction' .aws-sam/build/template.yaml
log "arm64 bootstraps (sam build):$sizes"

MOTO_PORT=$(free_port)
use_local_aws "$MOTO_PORT"
start_moto "$MOTO_PORT" "$RUN_DIR/moto.log"

log "unit, simulator and integration tests (Official Accounts)"
cargo test --locked --workspace 2>&1 | tee "$RUN_DIR/tests.log"
log "integration tests again, for WeCom (the one integration test binary, tests/it)"
WECHAT_PLATFORM=work cargo test --locked --workspace --test it 2>&1 | tee -a "$RUN_DIR/tests.log"

log "end-to-end through cargo lambda watch"
SIM_PORT=$(free_port)
PORT=$(free_port)
H5_PORT=$(free_port)
export WECHAT_APPID=wxa185587d4fc35145 WECHAT_SECRET=sim-appsecret
export WECHAT_API_BASE="http://127.0.0.1:$SIM_PORT" WECHAT_ALLOW_HTTP=true TOKEN_TABLE=wxinvoice-e2e
export AUDIT_TABLE=wxinvoice-e2e-audit ARCHIVE_BUCKET=wxinvoice-e2e-archive CLAIM_TABLE=wxinvoice-e2e-claims
export JSSDK_URL='https://expense.example.com/invoices?from=menu' RUST_LOG=info
export ALLOWED_ORIGINS="https://expense.example.com,http://127.0.0.1:$H5_PORT"
"$VENV/bin/python" scripts/create_table.py "$TOKEN_TABLE" "$AUDIT_TABLE" "$ARCHIVE_BUCKET" "$CLAIM_TABLE"
cargo build --locked -p get-token -p get-invoice-batch -p update-status -p wechat-sim -p wxinvoice-admin
start wechat-sim "$RUN_DIR/wechat-sim.log" target/debug/wechat-sim --port "$SIM_PORT"
wait_http "$WECHAT_API_BASE/__sim/stats" 30
# The deployment is also a third-party platform: its secrets (the simulator's platform) in moto's
# Secrets Manager, as deployed.
COMPONENT_SECRET_ARN=$(curl -fsS "$WECHAT_API_BASE/__sim/options" | "$VENV/bin/python" -c '
import boto3, json, os, sys
c = json.load(sys.stdin)["component"]
secret = {"component_appid": c["appid"], "component_appsecret": c["secret"], "token": c["token"], "encoding_aes_key": c["encoding_aes_key"]}
sm = boto3.client("secretsmanager", endpoint_url=os.environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"])
print(sm.create_secret(Name="wxinvoice-e2e/component", SecretString=json.dumps(secret))["ARN"])')
export COMPONENT_SECRET_ARN
# The rotation queue and its event source mapping, as `make dev` runs them (no offsets: the test
# waits for the rotation).
ROTATION_QUEUE_URL=$("$VENV/bin/python" -c 'import boto3, os; print(boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"]).create_queue(QueueName="wxinvoice-e2e-rotation")["QueueUrl"])')
export ROTATION_QUEUE_URL ROTATION_SPREAD_SECS=0
start "cargo lambda watch" "$RUN_DIR/watch.log" cargo lambda watch --ignore-changes --disable-cors -A 127.0.0.1 -P "$PORT"
wait_http "http://127.0.0.1:$PORT/" 300
start "rotation poller" "$RUN_DIR/rotation.log" "$VENV/bin/python" -u scripts/rotation_poller.py \
  "$ROTATION_QUEUE_URL" "http://127.0.0.1:$PORT/2015-03-31/functions/get-token/invocations"
if ! WXINVOICE_E2E_URL="http://127.0.0.1:$PORT" \
  cargo test --locked --workspace --test it -- --ignored e2e:: --test-threads=1 2>&1 | tee -a "$RUN_DIR/tests.log"; then
  log "cargo lambda watch log:"
  tail -n 50 "$RUN_DIR/watch.log"
  exit 1
fi

log "schemathesis on openapi.yaml (zero 5xx, answers conform to the schema)"
PYTHONPATH=tests SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONDONTWRITEBYTECODE=1 \
  st run openapi.yaml --url "http://127.0.0.1:$PORT" --checks not_a_server_error,response_schema_conformance \
  --mode all --max-examples 100 --seed 1 --request-timeout 20 --no-color | tee "$RUN_DIR/schemathesis.log"
schemathesis=$(grep -E '^ +[0-9]+ generated' "$RUN_DIR/schemathesis.log" | sed -E 's/^ +//')

log "load: 10000 getToken and 2000 invoice requests, 32 at a time, over loopback"
cargo run --locked -q -p integration-tests --bin load -- "http://127.0.0.1:$PORT" 10000 2000 32 | tee "$RUN_DIR/load.log"

log "front-end package (clients/web): npm ci, build, unit tests, types against openapi.yaml, npm pack's files"
web="did not run"
if command -v npm >/dev/null; then
  (cd clients/web && npm ci --silent --no-audit --no-fund && npm run --silent build \
    && npm run --silent check-types && npm run --silent check-pack && npm test) 2>&1 | tee "$RUN_DIR/web.log"
  web_passed=$(awk '/^# pass / { print $3 }' "$RUN_DIR/web.log")
  web_failed=$(awk '/^# fail / { print $3 }' "$RUN_DIR/web.log")
  if [ -z "$web_passed" ] || [ "${web_failed:-1}" != 0 ]; then
    log "the front-end package's checks failed"
    exit 1
  fi
  web="$web_passed passed"
else
  log "THE FRONT-END PACKAGE'S TESTS DID NOT RUN: npm is missing"
fi

log "browser: the example pages (examples/h5, on @wxinvoice/web) in headless Chromium, with jweixin and @wecom/jssdk"
browser="did not run"
if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi wenquanyi; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's chromium and a CJK font"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei; } \
      >"$RUN_DIR/apt.log" 2>&1 || log "apt-get failed (see $RUN_DIR/apt.log)"
  fi
fi
if [ -x /usr/bin/chromium ] && command -v npm >/dev/null; then
  (cd tests/browser && npm ci --silent --no-audit --no-fund)
  build_examples
  # A WeCom agent and a mini program registered next to the own Official Account, the agent's
  # pages on the example pages' origin.
  register_apps "$WECHAT_API_BASE" <<APPS
work wwe2e0000000000c 1000002 http://127.0.0.1:$H5_PORT
mini wxe2e00000000000m none -
APPS
  # Deployed as a user would: the pages with their config.js naming the gateway and the agent.
  cp -r examples/h5 "$RUN_DIR/h5"
  configure_examples "$RUN_DIR/h5/config.js" "http://127.0.0.1:$PORT" wwe2e0000000000c 1000002
  start "examples/h5 server" "$RUN_DIR/h5.log" "$VENV/bin/python" -m http.server "$H5_PORT" --bind 127.0.0.1 --directory "$RUN_DIR/h5"
  wait_http "http://127.0.0.1:$H5_PORT/index.html" 30
  API="http://127.0.0.1:$PORT" SIM="$WECHAT_API_BASE" H5="http://127.0.0.1:$H5_PORT" SHOT="$ROOT/target/h5-example.png" \
    EXAMPLES="$ROOT/examples" WEB="$ROOT/clients/web" WECOM_CORP=wwe2e0000000000c WECOM_AGENT=1000002 \
    MINI_APPID=wxe2e00000000000m node tests/browser/h5.mjs | tee "$RUN_DIR/browser.log"
  browser=$(grep -E '^browser: [0-9]+ passed' "$RUN_DIR/browser.log" | sed 's/^browser: //')
  browser_passed=$(echo "$browser" | sed -E 's/ passed.*//')
else
  log "THE BROWSER TEST DID NOT RUN: /usr/bin/chromium or npm is missing and could not be installed"
fi

read -r passed failed < <(awk '/^test result:/ {
  for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i }
} END { print p + 0, f + 0 }' "$RUN_DIR/tests.log")
echo
passed=$((passed + ${browser_passed:-0} + ${template_passed:-0} + ${web_passed:-0}))
echo "fmt, clippy and cfn-lint clean; arm64 bootstraps:$sizes"
echo "schemathesis: $schemathesis; browser: $browser (target/h5-example.png); front-end package: $web"
grep '^load:' "$RUN_DIR/load.log" | grep -v 'error:'
echo "wall time $(( $(date +%s) - STARTED )) s"
echo "summary: $passed passed, $failed failed"
