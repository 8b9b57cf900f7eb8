//! A bounded load run over loopback against a running gateway (`make test` runs it against
//! `cargo lambda watch`): N getToken requests, then M invoice requests (getInvoiceBatch and
//! updateStatus alternating), C at a time. Prints p50/p99/max per endpoint; exits non-zero if any
//! request failed. A benchmark, not a timing test: no figure fails the run.
//!
//! Usage: `load URL [TOKEN_REQUESTS] [INVOICE_REQUESTS] [CONCURRENCY]` (10000 2000 32)

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use integration_tests::{CODE2, OPENID, SEED_CARD, SEED_CODE};
use serde_json::{json, Value};

#[derive(Clone, Copy)]
enum Call {
    Token,
    Batch,
    Update,
}

async fn one(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    call: Call,
) -> (Duration, Result<(), String>) {
    let started = Instant::now();
    let req = match call {
        Call::Token => http.get(format!("{base}/core/r/api/weChat/getToken")),
        Call::Batch => http
            .post(format!(
                "{base}/core/r/api/weChat/getInvoiceBatch?token={token}"
            ))
            .json(
                &json!({"item_list": [{"card_id": SEED_CARD, "encrypt_code": SEED_CODE},
                                        {"card_id": SEED_CARD, "encrypt_code": CODE2}]}),
            ),
        Call::Update => http
            .post(format!(
                "{base}/core/r/api/weChat/updateStatus?token={token}"
            ))
            .json(
                &json!({"openid": OPENID, "reimburse_status": "INVOICE_REIMBURSE_INIT",
                          "invoice_list": [{"card_id": SEED_CARD, "encrypt_code": CODE2}]}),
            ),
    };
    let outcome = async {
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.map_err(|e| e.to_string())?;
        let ok = status == 200
            && match call {
                Call::Token => v["access_token"].is_string(),
                _ => v["errcode"] == 0,
            };
        if ok {
            Ok(())
        } else {
            Err(format!("{status} {v}"))
        }
    }
    .await;
    (started.elapsed(), outcome)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn run(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    calls: Vec<Call>,
    concurrency: usize,
    name: &str,
) -> usize {
    let started = Instant::now();
    let results: Vec<_> = stream::iter(calls)
        .map(|c| one(http, base, token, c))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = started.elapsed();
    let mut times: Vec<Duration> = results.iter().map(|(d, _)| *d).collect();
    times.sort();
    let errors: Vec<&String> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().err())
        .collect();
    println!(
        "load: {name}: {} requests, concurrency {concurrency}, {} errors, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {:.0} req/s",
        results.len(),
        errors.len(),
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        percentile(&times, 1.0),
        results.len() as f64 / wall.as_secs_f64()
    );
    for e in errors.iter().take(3) {
        println!("load:   error: {e}");
    }
    errors.len()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(base) = args.get(1).map(|b| b.trim_end_matches('/').to_string()) else {
        eprintln!("usage: load URL [TOKEN_REQUESTS] [INVOICE_REQUESTS] [CONCURRENCY]");
        std::process::exit(2);
    };
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (tokens, invoices, concurrency) = (arg(2, 10_000), arg(3, 2_000), arg(4, 32));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut errors = run(
        &http,
        &base,
        "",
        vec![Call::Token; tokens],
        concurrency,
        "getToken",
    )
    .await;
    let answer: Value = http
        .get(format!("{base}/core/r/api/weChat/getToken"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("getToken answers")
        .json()
        .await
        .unwrap();
    let token = answer["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let calls = (0..invoices)
        .map(|i| {
            if i % 2 == 0 {
                Call::Batch
            } else {
                Call::Update
            }
        })
        .collect();
    errors += run(&http, &base, &token, calls, concurrency, "invoices").await;
    if errors > 0 {
        std::process::exit(1);
    }
}
