//! The Lambda Runtime API emulator the benchmarks share: function processes started as Lambda
//! starts them, events handed over and answers collected, and a proxy in front of moto that
//! counts the AWS requests a function makes, by operation.

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
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

pub type Answer = Response<Full<Bytes>>;

pub fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set (run `make bench`)"))
}

pub fn env_or(k: &str, default: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Serves `handle` on an ephemeral loopback port.
pub async fn serve<F, Fut>(handle: F) -> SocketAddr
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

pub fn reply(status: StatusCode, body: Vec<u8>) -> Answer {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// One invocation's outcome.
pub struct Done {
    pub handed: Instant,
    pub at: Instant,
    pub body: Vec<u8>,
    pub error: bool,
}

pub struct Pending {
    handed: Option<Instant>,
    done: oneshot::Sender<Done>,
}

/// The Runtime API one function process talks to.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    events: mpsc::Sender<(String, Vec<u8>)>,
    pending: Arc<Mutex<HashMap<String, Pending>>>,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
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

    pub async fn invoke(&self, event: &[u8]) -> Done {
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
pub struct Function {
    pub name: &'static str,
    pub program: String,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(String, String)>,
}

impl Function {
    pub fn spawn(&self, api: &RuntimeApi) -> tokio::process::Child {
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

pub fn status_ok(done: &Done) -> bool {
    !done.error && serde_json::from_slice::<Value>(&done.body).is_ok_and(|v| v["statusCode"] == 200)
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Peak resident set of a process, MB (VmHWM).
pub fn peak_rss_mb(pid: u32) -> f64 {
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
pub fn cpu_ms(pid: u32) -> f64 {
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

/// A proxy in front of moto that counts DynamoDB requests.
/// AWS requests through the proxy: in all, and by operation (the `x-amz-target` header, as
/// `DynamoDB_20120810.GetItem` or `AmazonSQS.SendMessageBatch`).
#[derive(Default)]
pub struct Counts {
    total: AtomicU64,
    by_op: Mutex<HashMap<String, u64>>,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub fn by_op(&self) -> HashMap<String, u64> {
        self.by_op.lock().unwrap().clone()
    }

    fn count(&self, op: &str) {
        self.total.fetch_add(1, Ordering::Relaxed);
        *self
            .by_op
            .lock()
            .unwrap()
            .entry(op.to_string())
            .or_default() += 1;
    }
}

/// A proxy in front of moto that counts the requests made through it.
pub async fn counting_proxy(moto: String, count: Arc<Counts>) -> SocketAddr {
    let http = reqwest::Client::new();
    serve(move |req: Request<Incoming>| {
        let (http, moto, count) = (http.clone(), moto.clone(), count.clone());
        async move {
            let op = req
                .headers()
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("other")
                .to_string();
            count.count(&op);
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
