#!/usr/bin/env bash
# `make bench`: the Lambda-faithful benchmark. Builds the functions, the floor and the emulator in
# release mode, installs the Python peer into .venv and the Node.js peer into benches/node-peer,
# starts moto's DynamoDB server and the WeChat simulator, and runs lambda-bench (cold starts, warm latency, peak RSS, DynamoDB requests per
# call; arm64 bootstrap sizes when `cargo lambda build --release --arm64` has run). Prints a table
# and writes target/bench.json. A benchmark: no figure fails it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
RUN_DIR=$(mktemp -d)
trap stop_all EXIT

ensure_venv
log "installing the Python peer (awslambdaric, wechatpy, boto3) into .venv"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r benches/python-peer/requirements.txt
# The Node.js peer: aws-lambda-ric builds its native client (curl and aws-lambda-cpp) at install,
# with cmake and the autotools; on Debian as root they are installed when missing, as the browser
# test installs Chromium.
if [ ! -f benches/node-peer/node_modules/aws-lambda-ric/dist/rapid-client.node ]; then
  if ! command -v cmake >/dev/null || ! command -v autoreconf >/dev/null || ! command -v libtoolize >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "installing Debian's cmake and autotools for aws-lambda-ric's native client"
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake autoconf automake libtool make g++; } \
        >"$RUN_DIR/apt.log" 2>&1 || log "apt-get failed (see $RUN_DIR/apt.log)"
    fi
  fi
  log "installing the Node.js peer (aws-lambda-ric, AWS SDK v3) from its lockfile"
  (cd benches/node-peer && npm ci --no-audit --no-fund >"$RUN_DIR/npm.log" 2>&1) \
    || { cat "$RUN_DIR/npm.log"; exit 1; }
fi
log "release build"
cargo build --locked --release -p get-token -p get-invoice-batch -p bench-hello -p lambda-bench -p wechat-sim -p wxinvoice-admin

MOTO_PORT=$(free_port)
SIM_PORT=$(free_port)
use_local_aws "$MOTO_PORT"
start_moto "$MOTO_PORT" "$RUN_DIR/moto.log"
start wechat-sim "$RUN_DIR/wechat-sim.log" target/release/wechat-sim --port "$SIM_PORT"
wait_http "http://127.0.0.1:$SIM_PORT/__sim/stats" 30
# As deployed: the AppSecret in Secrets Manager (moto's), named by WECHAT_SECRET_ARN.
export WECHAT_APPID=wxa185587d4fc35145 WECHAT_SECRET_ARN=wxinvoice-bench/appsecret
export WECHAT_API_BASE="http://127.0.0.1:$SIM_PORT" WECHAT_ALLOW_HTTP=true TOKEN_TABLE=wxinvoice-bench
export JSSDK_URL='https://expense.example.com/invoices?from=menu' CLAIM_TABLE=wxinvoice-bench-claims
# As deployed, with a claim table: the queries read the claims holding their invoices.
"$VENV/bin/python" scripts/create_table.py "$TOKEN_TABLE" unused-audit unused-archive "$CLAIM_TABLE"
"$VENV/bin/python" - <<'PY'
import os, boto3
boto3.client("secretsmanager", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"]).create_secret(
    Name=os.environ["WECHAT_SECRET_ARN"], SecretString="sim-appsecret")
PY
# A vendor's deployment: 200 more apps registered next to the default one (the admin command),
# each known to the simulator with its own secret; one of them is measured by appid too.
log "registering 200 apps"
apps_json="["
for i in $(seq -w 0 199); do
  appid="wxbench00000000$i"
  target/release/wxinvoice-admin add --kind mp --appid "$appid" --origin https://expense.example.com \
    --jssdk-url 'https://expense.example.com/invoices?from=menu' >/dev/null 2>&1
  echo "bench-secret-$appid" | target/release/wxinvoice-admin put-secret --appid "$appid" >/dev/null
  target/release/wxinvoice-admin enable --appid "$appid" >/dev/null
  apps_json="$apps_json{\"kind\":\"mp\",\"appid\":\"$appid\",\"secret\":\"bench-secret-$appid\"},"
done
curl -fsS -X POST "$WECHAT_API_BASE/__sim/options" -d "{\"apps\":${apps_json%,}]}" >/dev/null
export BENCH_APPID=wxbench00000000100

BENCH_MOTO="$AWS_ENDPOINT_URL_DYNAMODB" BENCH_BIN_DIR="${BENCH_BIN_DIR:-$ROOT/target/release}" BENCH_PYTHON="$VENV/bin/python" \
BENCH_PEER_DIR="$ROOT/benches/python-peer" BENCH_NODE="$(command -v node)" BENCH_NODE_PEER_DIR="$ROOT/benches/node-peer" BENCH_FIXTURES="$ROOT/tests/fixtures" BENCH_OUT="$ROOT/target/bench.json" \
BENCH_ARM64_DIR="$ROOT/target/lambda" \
  target/release/lambda-bench
