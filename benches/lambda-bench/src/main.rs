//! `lambda-bench`: a Lambda Runtime API emulator that starts function processes exactly as Lambda
//! does (a clean environment: `AWS_LAMBDA_RUNTIME_API` pointing at itself, the usual `AWS_LAMBDA_*`
//! variables, the function's own configuration; nothing from the caller's shell), hands
//! them API Gateway v2 events and measures: cold start (spawn to first answer posted), warm
//! latency (event handed over to answer posted), peak RSS, and DynamoDB requests per warm call
//! (through a counting proxy in front of moto). It runs our get-token and get-invoice-batch, a
//! Python peer (wechatpy + boto3 under awslambdaric), a Node.js peer (AWS SDK v3 + fetch under
//! aws-lambda-ric) and a hello-world floor, prints one table and
//! writes the figures as JSON. A benchmark: nothing fails on a slow machine.
//!
//! Configured by environment (`make bench` sets it): BENCH_MOTO, BENCH_TABLE, BENCH_BIN_DIR,
//! BENCH_PYTHON, BENCH_PEER_DIR, BENCH_NODE,
//! BENCH_NODE_PEER_DIR, BENCH_FIXTURES, BENCH_OUT, BENCH_ARM64_DIR, BENCH_COLD (20),
//! BENCH_WARM (5000), plus the gateway's own WECHAT_APPID, WECHAT_SECRET_ARN (a secret in moto),
//! WECHAT_API_BASE, WECHAT_ALLOW_HTTP, TOKEN_TABLE, CLAIM_TABLE, JSSDK_URL.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use lambda_bench::*;
use serde_json::{json, Value};

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
async fn measure(f: &Function, event: &[u8], colds: Colds, warms: usize, ddb: &Counts) -> Figures {
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
    let before = ddb.total();
    let mut warm = Vec::with_capacity(warms);
    let mut errors = 0;
    for _ in 0..warms {
        let done = api.invoke(event).await;
        if !status_ok(&done) {
            errors += 1;
        }
        warm.push(ms(done.at - done.handed));
    }
    let ddb_calls = ddb.total() - before;
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
    let ddb_count = Arc::new(Counts::default());
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
    let node = Function {
        name: "node-peer",
        program: env("BENCH_NODE"),
        args: vec![
            "node_modules/aws-lambda-ric/bin/index.mjs".into(),
            "handler.handler".into(),
        ],
        cwd: Some(PathBuf::from(env("BENCH_NODE_PEER_DIR"))),
        env: gateway_env.clone(),
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
        (&node, &token_event),
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
    let [ours, batch, floor, python, by_appid, nodejs]: [Figures; 6] =
        figures.try_into().ok().expect("six runs");

    let arm64 = std::env::var("BENCH_ARM64_DIR").ok().map(PathBuf::from);
    let size = |name: &str| {
        arm64
            .as_ref()
            .and_then(|d| std::fs::metadata(d.join(name).join("bootstrap")).ok())
            .map(|m| m.len() as f64 / 1e6)
    };
    let rows: [(&str, f64, f64, f64, f64); 8] = [
        (
            "cold start p50 (ms)",
            ours.cold_p50,
            python.cold_p50,
            nodejs.cold_p50,
            floor.cold_p50,
        ),
        (
            "cold start p90 (ms)",
            ours.cold_p90,
            python.cold_p90,
            nodejs.cold_p90,
            floor.cold_p90,
        ),
        (
            "cold start: init p50, spawn to first /next (ms)",
            ours.init_p50,
            python.init_p50,
            nodejs.init_p50,
            floor.init_p50,
        ),
        (
            "cold start: CPU time p50, all threads (ms)",
            ours.cold_cpu_p50,
            python.cold_cpu_p50,
            nodejs.cold_cpu_p50,
            floor.cold_cpu_p50,
        ),
        (
            "warm p50 (ms)",
            ours.warm_p50,
            python.warm_p50,
            nodejs.warm_p50,
            floor.warm_p50,
        ),
        (
            "warm p99 (ms)",
            ours.warm_p99,
            python.warm_p99,
            nodejs.warm_p99,
            floor.warm_p99,
        ),
        (
            "peak RSS (MB)",
            ours.rss_mb,
            python.rss_mb,
            nodejs.rss_mb,
            floor.rss_mb,
        ),
        (
            "DynamoDB requests per warm call",
            ours.ddb_per_call,
            python.ddb_per_call,
            nodejs.ddb_per_call,
            floor.ddb_per_call,
        ),
    ];
    println!("| metric (getToken) | ours | Python peer | Node.js peer | floor (hello) | Python / ours | Node.js / ours | ours / floor |");
    println!("|---|---|---|---|---|---|---|---|");
    for (metric, o, p, n, f) in rows {
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.1}x", a / b)
            } else {
                "-".into()
            }
        };
        println!(
            "| {metric} | {o:.3} | {p:.3} | {n:.3} | {f:.3} | {} | {} | {} |",
            ratio(p, o),
            ratio(n, o),
            ratio(o, f)
        );
    }
    println!(
        "| DynamoDB GetItem round trip to moto via the proxy (ms) | {ddb_rtt:.3} | | | | | | |"
    );
    println!(
        "| cold start p50 less one DynamoDB round trip (ms) | {:.3} | {:.3} | {:.3} | {:.3} | {:.1}x | {:.1}x | {:.1}x |",
        ours.cold_p50 - ddb_rtt,
        python.cold_p50 - ddb_rtt,
        nodejs.cold_p50 - ddb_rtt,
        floor.cold_p50,
        (python.cold_p50 - ddb_rtt) / (ours.cold_p50 - ddb_rtt),
        (nodejs.cold_p50 - ddb_rtt) / (ours.cold_p50 - ddb_rtt),
        (ours.cold_p50 - ddb_rtt) / floor.cold_p50
    );
    println!(
        "| getInvoiceBatch, 10 items: cold p50 / p90, warm p50 / p99 (ms), RSS (MB), DynamoDB per call | {:.1} / {:.1}, {:.3} / {:.3}, {:.1}, {:.3} | | | | | | |",
        batch.cold_p50, batch.cold_p90, batch.warm_p50, batch.warm_p99, batch.rss_mb, batch.ddb_per_call
    );
    println!(
        "| getToken for a registered app (appid=, 200 registered): cold p50 / p90, warm p50 / p99 (ms), RSS (MB), DynamoDB per call | {:.1} / {:.1}, {:.3} / {:.3}, {:.1}, {:.3} | | | | | | |",
        by_appid.cold_p50, by_appid.cold_p90, by_appid.warm_p50, by_appid.warm_p99, by_appid.rss_mb, by_appid.ddb_per_call
    );
    for name in [
        "get-token",
        "get-invoice-batch",
        "update-status",
        "bench-hello",
    ] {
        match size(name) {
            Some(mb) => println!("| arm64 bootstrap {name} (MB) | {mb:.2} | | | | | | |"),
            None => println!("| arm64 bootstrap {name} (MB) | not built | | | | | | |"),
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
        "node_peer_get_token": fig(&nodejs),
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
