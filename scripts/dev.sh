#!/usr/bin/env bash
# `make dev`: the whole gateway on this machine. Installs the local tools into .venv, starts
# moto's DynamoDB server and creates the table, starts the WeChat simulator (unless real WeChat
# credentials are configured), runs `cargo lambda watch` on port 9000 with the rotation queue's
# event source mapping (moto's SQS, scripts/rotation_poller.py), and one hourly sweep.
# Ctrl-C stops everything it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
trap stop_all EXIT
trap 'exit 130' INT TERM

ensure_venv
RUN_DIR="$ROOT/.dev"
mkdir -p "$RUN_DIR"
PORT=${PORT:-9000}
SIM_PORT=${SIM_PORT:-9100}
MOTO_PORT=${MOTO_PORT:-5055}
export TOKEN_TABLE=${TOKEN_TABLE:-wxinvoice-tokens}
export AUDIT_TABLE=${AUDIT_TABLE:-wxinvoice-audit} ARCHIVE_BUCKET=${ARCHIVE_BUCKET:-wxinvoice-archive}
export CLAIM_TABLE=${CLAIM_TABLE:-wxinvoice-claims}
export JSSDK_URL=${JSSDK_URL:-http://www.hand.com}
# The example page (examples/h5, served on port 8080) may be signed and call the API.
export ALLOWED_ORIGINS=${ALLOWED_ORIGINS:-http://www.hand.com,http://localhost:8080,http://127.0.0.1:8080}
export RUST_LOG=${RUST_LOG:-info}

if [ -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]; then
  use_local_aws "$MOTO_PORT"
  start_moto "$MOTO_PORT" "$RUN_DIR/moto.log"
fi
"$VENV/bin/python" scripts/create_table.py "$TOKEN_TABLE" "$AUDIT_TABLE" "$ARCHIVE_BUCKET" "$CLAIM_TABLE"
# The rotation queue, as deployed: the sweep sends the registered apps due to it, get-token rotates
# them as its worker. A short spread locally, so the demo apps rotate within half a minute.
if [ -z "${ROTATION_QUEUE_URL:-}" ]; then
  ROTATION_QUEUE_URL=$("$VENV/bin/python" -c 'import boto3, os; print(boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"]).create_queue(QueueName="wxinvoice-rotation", Attributes={"VisibilityTimeout": "120"})["QueueUrl"])')
  export ROTATION_QUEUE_URL
fi
export ROTATION_SPREAD_SECS=${ROTATION_SPREAD_SECS:-30}

log "building the functions and the simulator"
cargo build --locked -p get-token -p get-invoice-batch -p update-status -p wechat-sim -p wxinvoice-admin

if [ -z "${WECHAT_SECRET:-}" ] && [ -z "${WECHAT_SECRET_ARN:-}" ]; then
  export WECHAT_APPID=${WECHAT_APPID:-wxa185587d4fc35145}
  export WECHAT_SECRET=sim-appsecret
  export WECHAT_API_BASE="http://127.0.0.1:$SIM_PORT" WECHAT_ALLOW_HTTP=true
  start wechat-sim "$RUN_DIR/wechat-sim.log" target/debug/wechat-sim --port "$SIM_PORT" \
    --appid "$WECHAT_APPID" --secret "$WECHAT_SECRET"
  wait_http "$WECHAT_API_BASE/__sim/stats" 30
  # More apps next to the default one, as a vendor serving several customers runs it: a second
  # Official Account, a mini program and a WeCom corp with two agents, each with its own secret
  # (in moto's Secrets Manager, put there by the admin command) and known to the simulator.
  register_apps "$WECHAT_API_BASE" <<'APPS'
mp wxd00000000000000b none https://b.example.com
mini wxd00000000000000m none -
work wwd00000000000000c 1000002 http://localhost:8080
work wwd00000000000000c 1000003 http://localhost:8080
APPS
  log "registered apps (wxinvoice-admin list):"
  target/debug/wxinvoice-admin list
else
  log "real WeChat credentials configured: no simulator (WECHAT_API_BASE=${WECHAT_API_BASE:-https://api.weixin.qq.com})"
fi

# The gateway answers CORS itself, for ALLOWED_ORIGINS only, as the SAM template configures it.
H5_PORT=${H5_PORT:-8080}
# The example pages (built on clients/web with esbuild), as deployed: a copy whose config.js
# names this gateway, and for the WeCom page the demo corp's agent 1000002.
build_examples
rm -rf "$RUN_DIR/h5" && cp -r examples/h5 "$RUN_DIR/h5"
configure_examples "$RUN_DIR/h5/config.js" "http://127.0.0.1:$PORT" wwd00000000000000c 1000002
start "examples/h5" "$RUN_DIR/h5.log" "$VENV/bin/python" -m http.server "$H5_PORT" --bind 127.0.0.1 --directory "$RUN_DIR/h5"
start "cargo lambda watch" "$RUN_DIR/watch.log" cargo lambda watch --disable-cors -A 127.0.0.1 -P "$PORT"
wait_http "http://127.0.0.1:$PORT/" 300
start "rotation poller" "$RUN_DIR/rotation.log" "$VENV/bin/python" -u scripts/rotation_poller.py \
  "$ROTATION_QUEUE_URL" "http://127.0.0.1:$PORT/2015-03-31/functions/get-token/invocations"
log "hourly sweep (the registered apps go to the rotation queue; see $RUN_DIR/rotation.log)"
cargo lambda invoke get-token -A 127.0.0.1 -P "$PORT" --data-file tests/fixtures/schedule-event.json
echo
cat <<HELP
wxinvoice is running on http://127.0.0.1:$PORT (Ctrl-C stops everything)

  curl 'http://127.0.0.1:$PORT/core/r/api/weChat/getToken'
  TOKEN=\$(curl -s 'http://127.0.0.1:$PORT/core/r/api/weChat/getToken' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -X POST "http://127.0.0.1:$PORT/core/r/api/weChat/getInvoiceBatch?token=\$TOKEN" \\
       -H 'content-type: application/json' -d @tests/fixtures/examples/get-invoice-batch.json
  curl -X POST "http://127.0.0.1:$PORT/core/r/api/weChat/updateStatus?token=\$TOKEN" \\
       -H 'content-type: application/json' -d @tests/fixtures/examples/update-status.json

More apps of this deployment (registered above; \`target/debug/wxinvoice-admin list\`):
  curl 'http://127.0.0.1:$PORT/core/r/api/weChat/getToken?appid=wxd00000000000000b'   # a second Official Account
  curl 'http://127.0.0.1:$PORT/core/r/api/weChat/getToken?appid=wxd00000000000000m'                                      # a mini program: the token only
  curl 'http://127.0.0.1:$PORT/core/r/api/weChat/getToken?appid=wwd00000000000000c&agentid=1000002'                      # WeCom, agent 1000002
  curl 'http://127.0.0.1:$PORT/core/r/api/weChat/getToken?appid=wwd00000000000000c&agentid=1000003'                      # WeCom, agent 1000003
  (the invoice endpoints take the same appid / agentid, with that app's token)

Example pages: http://127.0.0.1:$H5_PORT/index.html (Official Account), http://localhost:$H5_PORT/wecom.html
  (WeCom, agent 1000002); the JS-SDKs only work inside WeChat and WeCom
Operator rotation (AWS credentials only, deployed): cargo lambda invoke get-token -A 127.0.0.1 -P $PORT --data-ascii '{"action":"rotate"}'
Mode: EXPOSE_ACCESS_TOKEN=${EXPOSE_ACCESS_TOKEN:-true} (the spec's: getToken hands out the access_token; the SAM template defaults to false)
Simulator: ${WECHAT_API_BASE:-none}/__sim/stats    Logs: $RUN_DIR/
HELP
tail -n 0 -f "$RUN_DIR/watch.log"
