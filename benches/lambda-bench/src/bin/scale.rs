//! `lambda-scale`: the sweep and the rotation worker at a vendor's scale, on this machine (`make
//! scale`). SCALE_APPS (2000) registered apps, made due at once; one sweep (get-token, as the
//! hourly schedule invokes it) sends them to moto's SQS; SCALE_WORKERS (4) get-token processes,
//! fed as Lambda's event source mapping feeds them (ten messages per invocation, one invocation
//! per process at a time, the failed messages left for redelivery), rotate them against the
//! simulator. Then: duplicates delivered again and what they cost; the next sweep; and every app
//! made due again and swept with offsets (SCALE_SPREAD seconds, 300), for the rate over time. Every
//! AWS request the functions make goes through a counting proxy in front of moto. A benchmark:
//! it prints figures and fails on nothing but a broken run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures_util::StreamExt;
use lambda_bench::*;
use serde_json::{json, Value};
use wxinvoice::adapters::store::{DynamoStore, TokenStore};
use wxinvoice::domain::apps::{AppSettings, Kind};
use wxinvoice::domain::config::TokenApi;

/// Memory of the deployed functions (template MemorySize), for GB-seconds.
const MEMORY_GB: f64 = 0.256;

fn appid(i: usize) -> String {
    format!("wxscale{i:011}")
}

/// What the worker processes did while draining the queue.
#[derive(Default)]
struct Drain {
    invocations: u64,
    /// Sum of invocation durations (handed over to answered), ms.
    busy_ms: f64,
    messages: u64,
    failed: u64,
    /// (seconds since the drain started, messages done) per invocation.
    done_at: Vec<(f64, u64)>,
    receives: u64,
    deletes: u64,
    took: Duration,
}

struct Run {
    sqs: aws_sdk_sqs::Client,
    queue: String,
    sim: String,
    http: reqwest::Client,
    counts: Arc<Counts>,
    bin: PathBuf,
    env: Vec<(String, String)>,
}

impl Run {
    fn get_token(&self, extra: &[(&str, String)]) -> Function {
        let mut env = self.env.clone();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        Function {
            name: "get-token",
            program: self.bin.join("get-token").to_string_lossy().into_owned(),
            args: vec![],
            cwd: None,
            env,
        }
    }

    /// WeChat calls so far: in all, and token fetches (one per rotation).
    async fn wechat_calls(&self) -> (u64, u64) {
        let stats: Value = self
            .http
            .get(format!("{}/__sim/stats", self.sim))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let tokens = stats["calls"]["/cgi-bin/token"].as_u64().unwrap_or(0);
        (stats["total"].as_u64().unwrap_or(0), tokens)
    }

    /// One sweep, as the hourly schedule invokes it, on a fresh process. It sends one batch at a
    /// time: moto's SQS slows down with concurrent sends (and with every message it holds).
    async fn sweep(&self, spread: u64) -> Value {
        let f = self.get_token(&[
            ("ROTATION_SPREAD_SECS", spread.to_string()),
            ("SCHEDULE_CONCURRENCY", "1".to_string()),
        ]);
        let api = RuntimeApi::start().await;
        let mut child = f.spawn(&api);
        let done = api
            .invoke(br#"{"source":"scheduler","action":"refresh"}"#)
            .await;
        let _ = child.kill().await;
        assert!(
            !done.error,
            "sweep failed: {}",
            String::from_utf8_lossy(&done.body)
        );
        serde_json::from_slice(&done.body).unwrap()
    }

    /// Drains the queue with `workers` get-token processes until `expected` messages were done
    /// (or nothing is left after the delays).
    async fn drain(&self, workers: usize, expected: u64, quiet_after: Duration) -> Drain {
        let f = self.get_token(&[]);
        let started = Instant::now();
        let done_count = Arc::new(AtomicU64::new(0));
        let results = futures_util::stream::iter(0..workers)
            .map(|_| {
                let (f, done_count) = (&f, done_count.clone());
                async move {
                    let api = RuntimeApi::start().await;
                    let mut child = f.spawn(&api);
                    let mut d = Drain::default();
                    let mut idle_since = Instant::now();
                    loop {
                        if done_count.load(Ordering::Relaxed) >= expected
                            || idle_since.elapsed() > quiet_after
                        {
                            break;
                        }
                        d.receives += 1;
                        let out = self
                            .sqs
                            .receive_message()
                            .queue_url(&self.queue)
                            .max_number_of_messages(10)
                            .wait_time_seconds(1)
                            .send()
                            .await
                            .unwrap();
                        let messages = out.messages.unwrap_or_default();
                        if messages.is_empty() {
                            continue;
                        }
                        idle_since = Instant::now();
                        let records: Vec<Value> = messages
                            .iter()
                            .map(|m| {
                                json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(),
                                       "body": m.body(), "attributes": {}, "messageAttributes": {},
                                       "md5OfBody": "", "eventSource": "aws:sqs",
                                       "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:rotation",
                                       "awsRegion": "us-east-1"})
                            })
                            .collect();
                        let event = json!({ "Records": records }).to_string();
                        let answer = api.invoke(event.as_bytes()).await;
                        d.invocations += 1;
                        d.busy_ms += ms(answer.at - answer.handed);
                        let v: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
                        let failed: Vec<&str> = v["batchItemFailures"]
                            .as_array()
                            .map(|a| a.iter().filter_map(|f| f["itemIdentifier"].as_str()).collect())
                            .unwrap_or_default();
                        assert!(!answer.error, "worker failed: {}", String::from_utf8_lossy(&answer.body));
                        // As the event source mapping does: delete what succeeded.
                        let entries: Vec<_> = messages
                            .iter()
                            .filter(|m| !failed.contains(&m.message_id().unwrap_or("")))
                            .enumerate()
                            .map(|(i, m)| {
                                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                                    .id(i.to_string())
                                    .receipt_handle(m.receipt_handle().unwrap_or(""))
                                    .build()
                                    .unwrap()
                            })
                            .collect();
                        let ok = entries.len() as u64;
                        if !entries.is_empty() {
                            d.deletes += 1;
                            self.sqs
                                .delete_message_batch()
                                .queue_url(&self.queue)
                                .set_entries(Some(entries))
                                .send()
                                .await
                                .unwrap();
                        }
                        d.messages += messages.len() as u64;
                        d.failed += failed.len() as u64;
                        done_count.fetch_add(ok, Ordering::Relaxed);
                        d.done_at.push((started.elapsed().as_secs_f64(), ok));
                    }
                    let _ = child.kill().await;
                    d
                }
            })
            .buffer_unordered(workers)
            .collect::<Vec<Drain>>()
            .await;
        let mut all = Drain {
            took: started.elapsed(),
            ..Drain::default()
        };
        for d in results {
            all.invocations += d.invocations;
            all.busy_ms += d.busy_ms;
            all.messages += d.messages;
            all.failed += d.failed;
            all.receives += d.receives;
            all.deletes += d.deletes;
            all.done_at.extend(d.done_at);
        }
        all.done_at.sort_by(|a, b| a.0.total_cmp(&b.0));
        all
    }
}

/// DynamoDB and SQS requests made through the proxy since `before`, by operation.
fn delta(now: &HashMap<String, u64>, before: &HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut d: Vec<(String, u64)> = now
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    d.sort();
    d
}

fn per(ops: &[(String, u64)], n: u64) -> String {
    ops.iter()
        .map(|(op, c)| {
            let op = op.rsplit('.').next().unwrap_or(op);
            format!("{op} {:.2}", *c as f64 / n.max(1) as f64)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn total(ops: &[(String, u64)], prefix: &str) -> u64 {
    ops.iter()
        .filter(|(op, _)| op.starts_with(prefix))
        .map(|(_, c)| c)
        .sum()
}

#[tokio::main]
async fn main() {
    let n = env_or("SCALE_APPS", 2000);
    let workers = env_or("SCALE_WORKERS", 4);
    let spread = env_or("SCALE_SPREAD", 300) as u64;
    let moto = env("BENCH_MOTO");
    // SQS in a moto server of its own: one moto's SQS scans every message it holds on each call,
    // and would slow DynamoDB's answers down with it.
    let moto_sqs = env("BENCH_MOTO_SQS");
    let table = env("TOKEN_TABLE");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto)
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .endpoint_url(&moto_sqs)
            .build(),
    );
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);

    // The queue as the template makes it, with a short visibility timeout for a failed message.
    let dlq = sqs
        .create_queue()
        .queue_name("wxinvoice-scale-dlq")
        .send()
        .await
        .unwrap();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(dlq.queue_url().unwrap())
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let queue = sqs
        .create_queue()
        .queue_name("wxinvoice-scale-rotation")
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "30",
        )
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}).to_string(),
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();

    // N apps, one secret they share (each app would have its own; the secret is read once per
    // process either way), each known to the simulator.
    let prefix = env("APP_SECRET_PREFIX");
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(format!("{prefix}scale"))
        .secret_string("scale-secret")
        .send()
        .await
        .unwrap();
    let sim = env("WECHAT_API_BASE");
    let http = reqwest::Client::new();
    let sim_apps: Vec<Value> = (0..n)
        .map(|i| json!({"kind": "mp", "appid": appid(i), "secret": "scale-secret"}))
        .collect();
    http.post(format!("{sim}/__sim/options"))
        .body(json!({ "apps": sim_apps }).to_string())
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let store = DynamoStore::new(ddb.clone(), &table);
    let registering = Instant::now();
    futures_util::stream::iter(0..n)
        .map(|i| {
            let store = &store;
            async move {
                let settings = AppSettings {
                    kind: Kind::Mp,
                    appid: appid(i),
                    agentid: None,
                    token_api: TokenApi::Classic,
                    secret_name: "scale".into(),
                    origins: vec!["https://expense.example.com".into()],
                    jssdk_url: Some("https://expense.example.com/invoices".into()),
                    enabled: true,
                    authorization: None,
                };
                store.put_app(&settings).await.unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    eprintln!(
        "lambda-scale: {n} apps registered in {:.1} s",
        registering.elapsed().as_secs_f64()
    );

    let counts = Arc::new(Counts::default());
    let proxy = counting_proxy(moto.clone(), counts.clone()).await;
    let sqs_proxy = counting_proxy(moto_sqs.clone(), counts.clone()).await;
    let env_keys = [
        "WECHAT_APPID",
        "WECHAT_SECRET_ARN",
        "WECHAT_API_BASE",
        "WECHAT_ALLOW_HTTP",
        "TOKEN_TABLE",
        "JSSDK_URL",
        "APP_SECRET_PREFIX",
    ];
    let mut gateway_env: Vec<(String, String)> =
        env_keys.iter().map(|k| (k.to_string(), env(k))).collect();
    gateway_env.extend([
        (
            "AWS_ENDPOINT_URL_DYNAMODB".to_string(),
            format!("http://{proxy}"),
        ),
        (
            "AWS_ENDPOINT_URL_SQS".to_string(),
            format!("http://{sqs_proxy}"),
        ),
        // moto answers in tens of milliseconds where DynamoDB answers in a few, and slower
        // under four workers' load: a longer bound than DynamoDB needs, and a lease to match.
        ("DYNAMODB_TIMEOUT_MS".to_string(), "10000".to_string()),
        ("REFRESH_LEASE_MS".to_string(), "40000".to_string()),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER".to_string(), moto.clone()),
        ("ROTATION_QUEUE_URL".to_string(), queue.clone()),
        (
            "SCHEDULE_CONCURRENCY".to_string(),
            env_or("SCHEDULE_CONCURRENCY", 10).to_string(),
        ),
        ("RUST_LOG".to_string(), "warn".to_string()),
    ]);
    let run = Run {
        sqs: sqs.clone(),
        queue: queue.clone(),
        sim: sim.clone(),
        http: http.clone(),
        counts: counts.clone(),
        bin: PathBuf::from(env("BENCH_BIN_DIR")),
        env: gateway_env,
    };

    // 1. Every app due at once (never rotated), swept without offsets: the drain at full rate.
    let before = (run.counts.by_op(), run.wechat_calls().await);
    let sweep_started = Instant::now();
    let swept = run.sweep(0).await;
    let sweep_ms = ms(sweep_started.elapsed());
    let sweep_ops = delta(&run.counts.by_op(), &before.0);
    let queued = swept["apps"]["queued"].as_u64().unwrap_or(0);
    println!("## lambda-scale: {n} registered apps, {workers} worker processes\n");
    println!(
        "sweep 1 (every app due, no offsets): {} in {sweep_ms:.0} ms; its AWS requests: {}",
        swept["apps"],
        per(&sweep_ops, 1)
    );
    let before = (run.counts.by_op(), run.wechat_calls().await);
    let drained = run.drain(workers, queued, Duration::from_secs(10)).await;
    let ops = delta(&run.counts.by_op(), &before.0);
    let after = run.wechat_calls().await;
    let (wechat, rotated) = (after.0 - before.1 .0, after.1 - before.1 .1);
    println!(
        "drain: {rotated} apps rotated (token fetches at WeChat), {} messages handled, {} failed deliveries, in {:.1} s = {:.0} rotations/s; {} invocations, {:.1} GB-s (at {MEMORY_GB} GB)",
        drained.messages,
        drained.failed,
        drained.took.as_secs_f64(),
        rotated as f64 / drained.took.as_secs_f64(),
        drained.invocations,
        drained.busy_ms / 1000.0 * MEMORY_GB
    );
    println!(
        "per rotation: WeChat calls {:.2}; AWS requests by the worker: {}",
        wechat as f64 / rotated.max(1) as f64,
        per(&ops, rotated)
    );
    println!("per rotation: the event source mapping's SQS requests: ReceiveMessage {:.2}, DeleteMessageBatch {:.2}", drained.receives as f64 / rotated.max(1) as f64, drained.deletes as f64 / rotated.max(1) as f64);

    // 2. Duplicates: a tenth of the messages delivered again.
    let dups = (n / 10).max(10);
    futures_util::stream::iter(
        (0..dups)
            .collect::<Vec<_>>()
            .chunks(10)
            .map(<[usize]>::to_vec)
            .collect::<Vec<_>>(),
    )
    .map(|chunk| {
        let (sqs, queue) = (&sqs, &queue);
        async move {
            let entries: Vec<_> = chunk
                .iter()
                .map(|i| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(json!({"app": format!("app#{}", appid(*i))}).to_string())
                        .build()
                        .unwrap()
                })
                .collect();
            sqs.send_message_batch()
                .queue_url(queue)
                .set_entries(Some(entries))
                .send()
                .await
                .unwrap();
        }
    })
    .buffer_unordered(8)
    .collect::<Vec<()>>()
    .await;
    let before = (run.counts.by_op(), run.wechat_calls().await);
    let drained = run
        .drain(workers, dups as u64, Duration::from_secs(5))
        .await;
    let ops = delta(&run.counts.by_op(), &before.0);
    let wechat = run.wechat_calls().await.0 - before.1 .0;
    println!(
        "duplicates: {} delivered again, each: WeChat calls {:.2}; AWS requests: {}",
        drained.messages,
        wechat as f64 / drained.messages.max(1) as f64,
        per(&ops, drained.messages)
    );

    // 3. The next sweep: nothing due.
    let before = run.counts.by_op();
    let swept = run.sweep(0).await;
    let ops = delta(&run.counts.by_op(), &before);
    println!("sweep 2 (an hour later, nothing due): {}; its AWS requests: {} (the own app's refresh included)", swept["apps"], per(&ops, 1));

    // 4. Every app due again, swept with offsets: the rate over time.
    let soon = wxinvoice::domain::clock::now_ms() + 20 * 60_000;
    futures_util::stream::iter(0..n)
        .map(|i| {
            let (ddb, table) = (&ddb, &table);
            async move {
                ddb.update_item()
                    .table_name(table)
                    .key("pk", AttributeValue::S(format!("app#{}", appid(i))))
                    .update_expression("SET access_token_expires_ms = :e, jsapi_ticket_expires_ms = :e, wx_card_ticket_expires_ms = :e, due_ms = :z")
                    .expression_attribute_values(":e", AttributeValue::N(soon.to_string()))
                    .expression_attribute_values(":z", AttributeValue::N("0".into()))
                    .send()
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let before = run.counts.by_op();
    let swept = run.sweep(spread).await;
    let sweep_ops = delta(&run.counts.by_op(), &before);
    let queued = swept["apps"]["queued"].as_u64().unwrap_or(0);
    println!(
        "sweep 3 (every app due again, offsets within {spread} s): {}; SendMessageBatch {}",
        swept["apps"],
        total(&sweep_ops, "AmazonSQS.SendMessageBatch")
    );
    let tokens = run.wechat_calls().await.1;
    let before = run.counts.by_op();
    let drained = run
        .drain(workers, queued, Duration::from_secs(spread + 10))
        .await;
    let rotated = run.wechat_calls().await.1 - tokens;
    let ops = delta(&run.counts.by_op(), &before);
    println!(
        "drain with offsets: {rotated} rotated (token fetches at WeChat), {} messages handled, {} failed deliveries, in {:.1} s; per rotation, AWS requests by the worker: {}",
        drained.messages,
        drained.failed,
        drained.took.as_secs_f64(),
        per(&ops, rotated)
    );
    let bucket = (spread / 12).max(5) as f64;
    let mut buckets: Vec<u64> = vec![0; (drained.took.as_secs_f64() / bucket) as usize + 1];
    for (t, k) in &drained.done_at {
        buckets[(*t / bucket) as usize] += k;
    }
    println!("\n| seconds after the sweep | rotations | per second |\n|---|---|---|");
    for (i, b) in buckets.iter().enumerate() {
        println!(
            "| {:.0}–{:.0} | {b} | {:.1} |",
            i as f64 * bucket,
            (i + 1) as f64 * bucket,
            *b as f64 / bucket
        );
    }
}
