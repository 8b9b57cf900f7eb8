//! Test helper for the cross-process stampede: one OS process, configured from the environment
//! like a Lambda instance, fires N concurrent getToken requests through the handler at a common
//! start instant and prints one JSON line per answer: `{"status":…,"token":…,"ms":…}`.
//!
//! Usage: `stampede N START_AT_UNIX_MS`

use std::time::{Duration, Instant};

use futures::future::join_all;
use integration_tests::{body_json, Endpoint};
use wxinvoice::domain::clock::now_ms;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(n), Some(start_at)) = (
        args.get(1).and_then(|a| a.parse::<usize>().ok()),
        args.get(2).and_then(|a| a.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: stampede N START_AT_UNIX_MS");
        std::process::exit(2);
    };
    let app = wxinvoice::Deployment::from_env()
        .await
        .expect("configuration from the environment");
    tokio::time::sleep(Duration::from_millis(start_at.saturating_sub(now_ms()))).await;
    let requests = (0..n).map(|_| async {
        let started = Instant::now();
        let resp = Endpoint::GetToken.call().send(&app).await;
        let ms = started.elapsed().as_millis() as u64;
        let v = body_json(&resp);
        serde_json::json!({"status": resp.status().as_u16(), "token": v["access_token"], "ms": ms})
    });
    for line in join_all(requests).await {
        println!("{line}");
    }
}
