//! `lambda-bench`: a Lambda Runtime API emulator that starts function processes exactly as Lambda
//! does (a clean environment: `AWS_LAMBDA_RUNTIME_API` pointing at itself, the usual `AWS_LAMBDA_*`
//! variables, the function's own configuration; nothing from the caller's shell), hands
//! them API Gateway v2 events and measures: cold start (spawn to first answer posted), warm
//! latency (event handed over to answer posted), peak RSS, and DynamoDB requests per warm call
//! (through a counting proxy in front of moto). It runs our get-token and get-invoice-batch, a
//! Python peer (wechatpy + boto3 under awslambdaric) and a hello-world floor, prints one table and
//! writes the figures as JSON. A benchmark: nothing fails on a slow machine.
//!
//! Configured by environment (`make bench` sets it): BENCH_MOTO, BENCH_TABLE, BENCH_BIN_DIR,
//! BENCH_PYTHON, BENCH_PEER_DIR, BENCH_FIXTURES, BENCH_OUT, BENCH_ARM64_DIR, BENCH_COLD (20),
//! BENCH_WARM (5000), plus the gateway's own WECHAT_APPID, WECHAT_SECRET_ARN (a secret in moto),
//! WECHAT_API_BASE, WECHAT_ALLOW_HTTP, TOKEN_TABLE, CLAIM_TABLE, JSSDK_URL.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

type Answer = Response<Full<Bytes>>;

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set (run `make bench`)"))
}

fn env_or(k: &str, default: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Serves `handle` on an ephemeral loopback port.
async fn serve<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Answer> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let handle = handle.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

fn reply(status: StatusCode, body: Vec<u8>) -> Answer {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// One invocation's outcome.
struct Done {
    handed: Instant,
    at: Instant,
    body: Vec<u8>,
    error: bool,
}

struct Pending {
    handed: Option<Instant>,
    done: oneshot::Sender<Done>,
}

/// The Runtime API one function process talks to.
struct RuntimeApi {
    addr: SocketAddr,
    events: mpsc::Sender<(String, Vec<u8>)>,
    pending: Arc<Mutex<HashMap<String, Pending>>>,
}

impl RuntimeApi {
    async fn start() -> RuntimeApi {
        let (tx, rx) = mpsc::channel::<(String, Vec<u8>)>(16);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let pending: Arc<Mutex<HashMap<String, Pending>>> = Arc::default();
        let p = pending.clone();
        let addr = serve(move |req: Request<Incoming>| {
            let (rx, pending) = (rx.clone(), p.clone());
            async move {
                let path = req.uri().path().to_string();
                if path == "/2018-06-01/runtime/invocation/next" {
                    let Some((id, body)) = rx.lock().await.recv().await else {
                        return reply(StatusCode::GONE, vec![]);
                    };
                    if let Some(p) = pending.lock().unwrap().get_mut(&id) {
                        p.handed = Some(Instant::now());
                    }
                    let deadline = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_millis()
                        + 30_000;
                    return Response::builder()
                        .header("lambda-runtime-aws-request-id", &id)
                        .header("lambda-runtime-deadline-ms", deadline.to_string())
                        .header(
                            "lambda-runtime-invoked-function-arn",
                            "arn:aws:lambda:us-east-1:123456789012:function:bench",
                        )
                        .header(
                            "lambda-runtime-trace-id",
                            "Root=1-00000000-000000000000000000000000;Sampled=0",
                        )
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body)))
                        .unwrap();
                }
                let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
                let at = Instant::now();
                let body = req
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes().to_vec())
                    .unwrap_or_default();
                if let ["2018-06-01", "runtime", "invocation", id, kind @ ("response" | "error")] =
                    parts[..]
                {
                    if let Some(p) = pending.lock().unwrap().remove(id) {
                        let handed = p.handed.unwrap_or(at);
                        let _ = p.done.send(Done {
                            handed,
                            at,
                            body,
                            error: kind == "error",
                        });
                    }
                    return reply(StatusCode::ACCEPTED, br#"{"status":"OK"}"#.to_vec());
                }
                if path == "/2018-06-01/runtime/init/error" {
                    eprintln!(
                        "lambda-bench: init error: {}",
                        String::from_utf8_lossy(&body)
                    );
                    return reply(StatusCode::ACCEPTED, vec![]);
                }
                reply(StatusCode::NOT_FOUND, vec![])
            }
        })
        .await;
        RuntimeApi {
            addr,
            events: tx,
            pending,
        }
    }

    async fn invoke(&self, event: &[u8]) -> Done {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(
            id.clone(),
            Pending {
                handed: None,
                done: tx,
            },
        );
        self.events.send((id, event.to_vec())).await.unwrap();
        tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .expect("the function answers within 60 s")
            .expect("answer")
    }
}

/// A function under test: how to start its process.
struct Function {
    name: &'static str,
    program: String,
    args: Vec<String>,
    cwd: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl Function {
    fn spawn(&self, api: &RuntimeApi) -> tokio::process::Child {
        let mut cmd = tokio::process::Command::new(&self.program);
        // Lambda's environment, not the caller's shell: a host's SSL_CERT_*, HOME, AWS_PROFILE
        // and the like would change what the function does at init.
        cmd.args(&self.args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "en_US.UTF-8")
            .env("TZ", ":UTC")
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", self.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", self.name),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd.spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", self.program))
    }
}

fn status_ok(done: &Done) -> bool {
    !done.error && serde_json::from_slice::<Value>(&done.body).is_ok_and(|v| v["statusCode"] == 200)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Peak resident set of a process, MB (VmHWM).
fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU time (ms) a process has used so far, summed over its threads (`/proc/PID/task/*/schedstat`,
/// nanosecond resolution, unlike the clock ticks of `/proc/PID/stat`).
fn cpu_ms(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return f64::NAN;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e6
}

struct Figures {
    cold_p50: f64,
    cold_p90: f64,
    /// Spawn to the first `/next`: what Lambda reports as Init Duration.
    init_p50: f64,
    /// CPU time the process used up to its first answer (all threads): the cold start's own
    /// work, without the time spent waiting on DynamoDB or the emulator.
    cold_cpu_p50: f64,
    warm_p50: f64,
    warm_p99: f64,
    rss_mb: f64,
    ddb_per_call: f64,
}

/// Cold-start samples of one function.
#[derive(Default)]
struct Colds {
    total: Vec<f64>,
    init: Vec<f64>,
    cpu: Vec<f64>,
}

/// One cold start: a fresh process, one event.
async fn cold_start(f: &Function, event: &[u8], into: &mut Colds) {
    let api = RuntimeApi::start().await;
    let started = Instant::now();
    let invocation = api.invoke(event);
    let mut child = f.spawn(&api);
    let done = invocation.await;
    assert!(
        status_ok(&done),
        "{}: cold answer {}",
        f.name,
        String::from_utf8_lossy(&done.body)
    );
    into.total.push(ms(done.at - started));
    into.init.push(ms(done.handed - started));
    into.cpu.push(cpu_ms(child.id().unwrap()));
    let _ = child.kill().await;
}

/// Warm figures of one long-lived process, with the cold starts measured before.
async fn measure(
    f: &Function,
    event: &[u8],
    colds: Colds,
    warms: usize,
    ddb: &AtomicU64,
) -> Figures {
    let Colds {
        total: mut cold,
        mut init,
        cpu: mut cold_cpu,
    } = colds;
    let api = RuntimeApi::start().await;
    let mut child = f.spawn(&api);
    let pid = child.id().unwrap();
    for _ in 0..20 {
        api.invoke(event).await; // warm up
    }
    let before = ddb.load(Ordering::Relaxed);
    let mut warm = Vec::with_capacity(warms);
    let mut errors = 0;
    for _ in 0..warms {
        let done = api.invoke(event).await;
        if !status_ok(&done) {
            errors += 1;
        }
        warm.push(ms(done.at - done.handed));
    }
    let ddb_calls = ddb.load(Ordering::Relaxed) - before;
    let rss = peak_rss_mb(pid);
    let _ = child.kill().await;
    assert_eq!(errors, 0, "{}: {errors} failed warm invocations", f.name);
    for v in [&mut cold, &mut init, &mut cold_cpu, &mut warm] {
        v.sort_by(f64::total_cmp);
    }
    Figures {
        cold_p50: percentile(&cold, 0.5),
        cold_p90: percentile(&cold, 0.9),
        init_p50: percentile(&init, 0.5),
        cold_cpu_p50: percentile(&cold_cpu, 0.5),
        warm_p50: percentile(&warm, 0.5),
        warm_p99: percentile(&warm, 0.99),
        rss_mb: rss,
        ddb_per_call: ddb_calls as f64 / warms as f64,
    }
}

/// A proxy in front of moto that counts DynamoDB requests.
async fn counting_proxy(moto: String, count: Arc<AtomicU64>) -> SocketAddr {
    let http = reqwest::Client::new();
    serve(move |req: Request<Incoming>| {
        let (http, moto, count) = (http.clone(), moto.clone(), count.clone());
        async move {
            count.fetch_add(1, Ordering::Relaxed);
            let method = req.method().clone();
            let uri = req
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            let headers = req.headers().clone();
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let mut fwd = http.request(method, format!("{moto}{uri}")).body(body);
            for (k, v) in headers
                .iter()
                .filter(|(k, _)| *k != "host" && *k != "content-length")
            {
                fwd = fwd.header(k, v);
            }
            match fwd.send().await {
                Ok(resp) => {
                    let mut out = Response::builder().status(resp.status());
                    for (k, v) in resp
                        .headers()
                        .iter()
                        .filter(|(k, _)| *k != "content-length" && *k != "transfer-encoding")
                    {
                        out = out.header(k, v);
                    }
                    let body = resp.bytes().await.unwrap_or_default();
                    out.body(Full::new(body)).unwrap()
                }
                Err(_) => reply(StatusCode::BAD_GATEWAY, vec![]),
            }
        }
    })
    .await
}

fn event(fixtures: &str, name: &str, query: &str, body: Option<String>) -> Vec<u8> {
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{fixtures}/{name}")).unwrap())
            .unwrap();
    v["rawQueryString"] = json!(query);
    v.as_object_mut().unwrap().remove("queryStringParameters");
    if let Some(b) = body {
        v["body"] = json!(b);
    }
    v.to_string().into_bytes()
}

#[tokio::main]
async fn main() {
    let (colds, warms) = (env_or("BENCH_COLD", 20), env_or("BENCH_WARM", 5000));
    let bin = PathBuf::from(env("BENCH_BIN_DIR"));
    let fixtures = env("BENCH_FIXTURES");
    let ddb_count = Arc::new(AtomicU64::new(0));
    let proxy = counting_proxy(env("BENCH_MOTO"), ddb_count.clone()).await;
    let gateway_env: Vec<(String, String)> = [
        "WECHAT_APPID",
        "WECHAT_SECRET_ARN",
        "WECHAT_API_BASE",
        "WECHAT_ALLOW_HTTP",
        "TOKEN_TABLE",
        "CLAIM_TABLE",
        "JSSDK_URL",
    ]
    .iter()
    .map(|k| (k.to_string(), env(k)))
    .chain([
        (
            "AWS_ENDPOINT_URL_DYNAMODB".to_string(),
            format!("http://{proxy}"),
        ),
        // Secrets Manager is moto's too, not counted as DynamoDB.
        (
            "AWS_ENDPOINT_URL_SECRETS_MANAGER".to_string(),
            env("BENCH_MOTO"),
        ),
        (
            "RUST_LOG".into(),
            std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "info".into()),
        ),
    ])
    .collect();
    let rust = |name: &'static str| Function {
        name,
        program: bin.join(name).to_string_lossy().into_owned(),
        args: vec![],
        cwd: None,
        env: gateway_env.clone(),
    };
    let get_token = rust("get-token");
    let batch_fn = rust("get-invoice-batch");
    let hello = Function {
        env: vec![],
        ..rust("bench-hello")
    };
    let peer = Function {
        name: "python-peer",
        program: env("BENCH_PYTHON"),
        args: vec!["-m".into(), "awslambdaric".into(), "handler.handler".into()],
        cwd: Some(PathBuf::from(env("BENCH_PEER_DIR"))),
        env: gateway_env.clone(),
    };

    // The token is stored before anything is measured: one getToken through the emulator.
    let token_event = event(&fixtures, "apigw-v2-get-token.json", "type=auto", None);
    let api = RuntimeApi::start().await;
    let mut child = get_token.spawn(&api);
    let first = api.invoke(&token_event).await;
    let _ = child.kill().await;
    let answer: Value = serde_json::from_slice(&first.body).unwrap();
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or("{}")).unwrap();
    let token = body["access_token"]
        .as_str()
        .expect("getToken answered a token")
        .to_string();
    // A registered app's token too, stored the same way: then measured by `appid`.
    let app_event = event(
        &fixtures,
        "apigw-v2-get-token.json",
        &format!("type=auto&appid={}", env("BENCH_APPID")),
        None,
    );
    let mut child = get_token.spawn(&api);
    let first = api.invoke(&app_event).await;
    let _ = child.kill().await;
    assert!(
        status_ok(&first),
        "getToken for the registered app answered"
    );
    let invoices: Vec<Value> = serde_json::from_str::<Vec<Value>>(
        &std::fs::read_to_string(format!("{fixtures}/invoices.json")).unwrap(),
    )
    .unwrap()
    .iter()
    .cycle()
    .take(10)
    .map(|i| json!({"card_id": i["card"]["card_id"], "encrypt_code": i["encrypt_code"]}))
    .collect();
    let batch_event = event(
        &fixtures,
        "apigw-v2-get-invoice-batch.json",
        &format!("token={token}"),
        Some(json!({ "item_list": invoices }).to_string()),
    );

    // One DynamoDB round trip to moto through the proxy: the part of a cold start spent waiting on
    // this emulator (a real DynamoDB answers GetItem in single-digit ms, over TLS).
    let http = reqwest::Client::new();
    let mut rtt = Vec::new();
    for _ in 0..21 {
        let started = Instant::now();
        http.post(format!("http://{proxy}/"))
            .header("x-amz-target", "DynamoDB_20120810.GetItem")
            .header("content-type", "application/x-amz-json-1.0")
            .header("authorization", "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
            .body(json!({"TableName": env("TOKEN_TABLE"), "Key": {"pk": {"S": env("WECHAT_APPID")}}, "ConsistentRead": true}).to_string())
            .send()
            .await
            .unwrap();
        rtt.push(ms(started.elapsed()));
    }
    rtt.sort_by(f64::total_cmp);
    let ddb_rtt = percentile(&rtt, 0.5);

    eprintln!("lambda-bench: {colds} cold starts and {warms} warm invocations per function");
    let runs = [
        (&get_token, &token_event),
        (&batch_fn, &batch_event),
        (&hello, &token_event),
        (&peer, &token_event),
        (&get_token, &app_event),
    ];
    // Cold starts interleaved, one of each function per round, so that a change in the
    // machine's speed during the run touches every function alike.
    let mut samples: Vec<Colds> = runs.iter().map(|_| Colds::default()).collect();
    for _ in 0..colds {
        for ((f, event), into) in runs.iter().zip(samples.iter_mut()) {
            cold_start(f, event, into).await;
        }
    }
    let mut figures = Vec::new();
    for ((f, event), colds) in runs.iter().zip(samples) {
        figures.push(measure(f, event, colds, warms, &ddb_count).await);
    }
    let [ours, batch, floor, python, by_appid]: [Figures; 5] =
        figures.try_into().ok().expect("five runs");

    let arm64 = std::env::var("BENCH_ARM64_DIR").ok().map(PathBuf::from);
    let size = |name: &str| {
        arm64
            .as_ref()
            .and_then(|d| std::fs::metadata(d.join(name).join("bootstrap")).ok())
            .map(|m| m.len() as f64 / 1e6)
    };
    let rows: [(&str, &str, f64, f64, f64); 8] = [
        (
            "cold start p50 (ms)",
            "getToken",
            ours.cold_p50,
            python.cold_p50,
            floor.cold_p50,
        ),
        (
            "cold start p90 (ms)",
            "getToken",
            ours.cold_p90,
            python.cold_p90,
            floor.cold_p90,
        ),
        (
            "cold start: init p50, spawn to first /next (ms)",
            "getToken",
            ours.init_p50,
            python.init_p50,
            floor.init_p50,
        ),
        (
            "cold start: CPU time p50, all threads (ms)",
            "getToken",
            ours.cold_cpu_p50,
            python.cold_cpu_p50,
            floor.cold_cpu_p50,
        ),
        (
            "warm p50 (ms)",
            "getToken",
            ours.warm_p50,
            python.warm_p50,
            floor.warm_p50,
        ),
        (
            "warm p99 (ms)",
            "getToken",
            ours.warm_p99,
            python.warm_p99,
            floor.warm_p99,
        ),
        (
            "peak RSS (MB)",
            "getToken",
            ours.rss_mb,
            python.rss_mb,
            floor.rss_mb,
        ),
        (
            "DynamoDB requests per warm call",
            "getToken",
            ours.ddb_per_call,
            python.ddb_per_call,
            floor.ddb_per_call,
        ),
    ];
    println!("| metric | ours | Python peer | floor (hello) | peer / ours | ours / floor |");
    println!("|---|---|---|---|---|---|");
    for (metric, _, o, p, f) in rows {
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.1}x", a / b)
            } else {
                "-".into()
            }
        };
        println!(
            "| {metric} | {o:.3} | {p:.3} | {f:.3} | {} | {} |",
            ratio(p, o),
            ratio(o, f)
        );
    }
    println!("| DynamoDB GetItem round trip to moto via the proxy (ms) | {ddb_rtt:.3} | | | | |");
    println!(
        "| cold start p50 less one DynamoDB round trip (ms) | {:.3} | {:.3} | {:.3} | {:.1}x | {:.1}x |",
        ours.cold_p50 - ddb_rtt,
        python.cold_p50 - ddb_rtt,
        floor.cold_p50,
        (python.cold_p50 - ddb_rtt) / (ours.cold_p50 - ddb_rtt),
        (ours.cold_p50 - ddb_rtt) / floor.cold_p50
    );
    println!(
        "| getInvoiceBatch, 10 items: cold p50 / p90, warm p50 / p99 (ms), RSS (MB), DynamoDB per call | {:.1} / {:.1}, {:.3} / {:.3}, {:.1}, {:.3} | | | | |",
        batch.cold_p50, batch.cold_p90, batch.warm_p50, batch.warm_p99, batch.rss_mb, batch.ddb_per_call
    );
    println!(
        "| getToken for a registered app (appid=, 200 registered): cold p50 / p90, warm p50 / p99 (ms), RSS (MB), DynamoDB per call | {:.1} / {:.1}, {:.3} / {:.3}, {:.1}, {:.3} | | | | |",
        by_appid.cold_p50, by_appid.cold_p90, by_appid.warm_p50, by_appid.warm_p99, by_appid.rss_mb, by_appid.ddb_per_call
    );
    for name in [
        "get-token",
        "get-invoice-batch",
        "update-status",
        "bench-hello",
    ] {
        match size(name) {
            Some(mb) => println!("| arm64 bootstrap {name} (MB) | {mb:.2} | | | | |"),
            None => println!("| arm64 bootstrap {name} (MB) | not built | | | | |"),
        }
    }
    let fig = |f: &Figures| {
        json!({"cold_p50_ms": f.cold_p50, "cold_p90_ms": f.cold_p90, "init_p50_ms": f.init_p50,
               "cold_cpu_p50_ms": f.cold_cpu_p50, "warm_p50_ms": f.warm_p50,
               "warm_p99_ms": f.warm_p99, "peak_rss_mb": f.rss_mb, "dynamodb_requests_per_warm_call": f.ddb_per_call})
    };
    let out = json!({
        "cold_starts": colds, "warm_invocations": warms,
        "get_token": fig(&ours), "get_invoice_batch_10": fig(&batch), "get_token_by_appid": fig(&by_appid), "python_peer_get_token": fig(&python),
        "hello_floor": fig(&floor),
        "dynamodb_round_trip_ms": ddb_rtt,
        "arm64_bootstrap_mb": {
            "get-token": size("get-token"), "get-invoice-batch": size("get-invoice-batch"),
            "update-status": size("update-status"), "bench-hello": size("bench-hello"),
        },
    });
    let path = env("BENCH_OUT");
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    eprintln!("lambda-bench: figures written to {path}");
}
