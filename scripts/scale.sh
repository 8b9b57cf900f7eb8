#!/usr/bin/env bash
# `make scale`: the sweep and the rotation worker at a vendor's scale on this machine. Builds
# get-token, the simulator and lambda-scale in release mode, starts moto (DynamoDB, SQS, Secrets
# Manager) and the simulator, and runs lambda-scale: SCALE_APPS (2000) apps due at once, drained by
# SCALE_WORKERS (4) worker processes; duplicates; the next sweep; offsets over SCALE_SPREAD (300) s.
# Prints figures; a benchmark, not a test.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
RUN_DIR=$(mktemp -d)
trap stop_all EXIT

ensure_venv
log "release build"
cargo build --locked --release -p get-token -p wechat-sim -p lambda-bench

MOTO_PORT=$(free_port)
SIM_PORT=$(free_port)
use_local_aws "$MOTO_PORT"
start_moto "$MOTO_PORT" "$RUN_DIR/moto.log"
# SQS in a moto of its own (moto's SQS scans every message it holds on each call).
SQS_PORT=$(free_port)
start_moto "$SQS_PORT" "$RUN_DIR/moto-sqs.log"
start wechat-sim "$RUN_DIR/wechat-sim.log" target/release/wechat-sim --port "$SIM_PORT"
wait_http "http://127.0.0.1:$SIM_PORT/__sim/stats" 30
export WECHAT_APPID=wxa185587d4fc35145 WECHAT_SECRET_ARN=wxinvoice-scale/appsecret
export WECHAT_API_BASE="http://127.0.0.1:$SIM_PORT" WECHAT_ALLOW_HTTP=true TOKEN_TABLE=wxinvoice-scale
export JSSDK_URL='https://expense.example.com/invoices'
"$VENV/bin/python" scripts/create_table.py "$TOKEN_TABLE"
"$VENV/bin/python" - <<'PY'
import os, boto3
boto3.client("secretsmanager", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"]).create_secret(
    Name=os.environ["WECHAT_SECRET_ARN"], SecretString="sim-appsecret")
PY
BENCH_MOTO="$AWS_ENDPOINT_URL_DYNAMODB" BENCH_MOTO_SQS="http://127.0.0.1:$SQS_PORT" BENCH_BIN_DIR="$ROOT/target/release" target/release/lambda-scale
