//! The refresh lock against the real store: single flight across independent clients, recovery
//! from a crashed holder, and fencing of a holder whose lease ran out.

use futures::future::join_all;
use integration_tests::*;
use serde_json::json;
use wxinvoice::adapters::store::faults::{Fault, Op};
use wxinvoice::adapters::store::{Credential, Lock, Update};
use {wxinvoice::domain::clock::now_ms, wxinvoice::token::Mode};

#[tokio::test]
async fn many_concurrent_refreshes_fetch_exactly_once() {
    let h = Harness::new().await;
    // Slow WeChat, so every caller arrives while the first refresh is in flight.
    h.sim
        .fault(json!({"path": token_path(), "latency_ms": 400}))
        .await;
    // 8 independent instances (own DynamoDB and HTTP clients) × 6 concurrent requests each.
    let apps: Vec<_> = (0..8).map(|_| h.instance(&[])).collect();
    let d = deadline();
    let mut tasks = Vec::new();
    for app in &apps {
        for _ in 0..6 {
            tasks.push(app.tokens.get(Mode::Auto, &d));
        }
    }
    let results = join_all(tasks).await;
    let tokens: Vec<String> = results
        .into_iter()
        .map(|r| {
            r.expect("every caller gets a token")
                .state
                .access_token
                .unwrap()
                .value
        })
        .collect();
    assert_eq!(tokens.len(), 48);
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "every caller got the same token"
    );
    assert_eq!(h.token_calls(), 1, "exactly one token fetch");
    assert_eq!(h.ticket_calls(), 2);
    let stored = h.stored().await;
    assert_eq!(stored.access_token.unwrap().value, tokens[0]);
    assert_eq!(stored.version, 1);
}

#[tokio::test]
async fn concurrent_rotations_share_one_fetch() {
    let h = Harness::new().await;
    h.sim
        .fault(json!({"path": token_path(), "latency_ms": 400}))
        .await;
    let apps: Vec<_> = (0..5).map(|_| h.instance(&[])).collect();
    let d = deadline();
    let results = join_all(apps.iter().map(|a| a.tokens.get(Mode::Rotate, &d))).await;
    let tokens: Vec<String> = results
        .into_iter()
        .map(|r| r.unwrap().state.access_token.unwrap().value)
        .collect();
    assert!(tokens.iter().all(|t| t == &tokens[0]));
    assert_eq!(h.token_calls(), 1, "one rotation for all");
}

#[tokio::test]
async fn a_crashed_holder_delays_refresh_by_at_most_the_lease() {
    let h = Harness::with(&[
        ("REFRESH_LEASE_MS", "1500"),
        ("WECHAT_TIMEOUT_MS", "400"),
        ("REFRESH_WAIT_MS", "3000"),
    ])
    .await;
    let store = h.app.tokens.store();
    // A holder takes the lock and dies.
    assert!(matches!(
        store
            .try_lock(&appid(), "crashed", now_ms(), 1500)
            .await
            .unwrap(),
        Lock::Acquired(_)
    ));
    let started = std::time::Instant::now();
    let served = h
        .app
        .tokens
        .get(Mode::Auto, &deadline())
        .await
        .expect("the next caller refreshes after the lease");
    let waited = started.elapsed().as_millis();
    assert!(served.state.access_token.is_some());
    assert!(
        (1000..3000).contains(&waited),
        "waited {waited} ms for a 1500 ms lease"
    );
    assert_eq!(h.token_calls(), 1);
    assert!(store.load(&appid()).await.unwrap().lock_owner.is_none());
}

#[tokio::test]
async fn a_holder_whose_lease_ran_out_cannot_overwrite_newer_state() {
    let h = Harness::new().await;
    let store = h.app.tokens.store();
    let cred = |v: &str| Credential {
        value: v.into(),
        expires_at_ms: now_ms() + 7_200_000,
    };
    // A takes a short lease and stalls past it.
    assert!(matches!(
        store.try_lock(&appid(), "A", now_ms(), 50).await.unwrap(),
        Lock::Acquired(_)
    ));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // B takes over and publishes.
    assert!(matches!(
        store
            .try_lock(&appid(), "B", now_ms(), 10_000)
            .await
            .unwrap(),
        Lock::Acquired(_)
    ));
    let b = Update {
        access_token: Some(cred("from-B")),
        jsapi_ticket: Some(cred("ticket-B")),
        refreshed_at_ms: now_ms(),
        ..Update::default()
    };
    assert!(store.commit(&appid(), "B", &b).await.unwrap().is_some());
    // A wakes up and tries to publish its older fetch: refused, B's state stays.
    let a = Update {
        access_token: Some(cred("from-A")),
        refreshed_at_ms: now_ms(),
        ..Update::default()
    };
    assert!(store.commit(&appid(), "A", &a).await.unwrap().is_none());
    let state = store.load(&appid()).await.unwrap();
    assert_eq!(state.access_token.unwrap().value, "from-B");
    assert_eq!(state.version, 1);
    // A's release does not free a lock it no longer holds.
    assert!(matches!(
        store
            .try_lock(&appid(), "C", now_ms(), 10_000)
            .await
            .unwrap(),
        Lock::Acquired(_)
    ));
    store.release(&appid(), "A", false).await.unwrap();
    assert!(matches!(
        store
            .try_lock(&appid(), "D", now_ms(), 10_000)
            .await
            .unwrap(),
        Lock::Held(_)
    ));
}

#[tokio::test]
async fn while_one_instance_refreshes_others_serve_the_valid_stored_token() {
    // Everything is due for the scheduled run, but readers still see a valid token.
    let h = Harness::new().await;
    let first = h.served_token(&h.app).await;
    h.sim
        .fault(json!({"path": token_path(), "latency_ms": 600}))
        .await;
    let scheduler = h.instance(&[
        ("REFRESH_AHEAD_SECS", "7200"),
        ("REFRESH_COOLDOWN_SECS", "0"),
    ]);
    let reader = h.instance(&[]);
    let sched = tokio::spawn(async move {
        scheduler
            .tokens
            .get(Mode::Scheduled, &deadline())
            .await
            .map(|s| s.source)
    });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let started = std::time::Instant::now();
    let served = reader.tokens.get(Mode::Auto, &deadline()).await.unwrap();
    assert_eq!(served.state.access_token.unwrap().value, first);
    assert!(
        started.elapsed().as_millis() < 300,
        "the reader did not wait for WeChat"
    );
    assert_eq!(
        sched.await.unwrap().unwrap(),
        wxinvoice::token::Source::Refreshed
    );
}

/// At least 3 OS processes and 50 concurrent requests hit an expired token at once.
#[tokio::test]
async fn stampede_across_processes_fetches_once() {
    const PROCESSES: usize = 4;
    const PER_PROCESS: usize = 15;
    let h = Harness::new().await;
    let old = h.served_token(&h.app).await;
    // Expire the stored token and ticket.
    aws_sdk_dynamodb::Client::new(&h.sdk)
        .update_item()
        .table_name(&h.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(appid()))
        .update_expression("SET access_token_expires_ms = :past, jsapi_ticket_expires_ms = :past")
        .expression_attribute_values(
            ":past",
            aws_sdk_dynamodb::types::AttributeValue::N((now_ms() - 1).to_string()),
        )
        .send()
        .await
        .unwrap();
    // A slow WeChat widens the window in which everyone finds the token expired.
    h.sim
        .fault(json!({"path": token_path(), "latency_ms": 300}))
        .await;
    let start_at = now_ms() + 2000;
    let env = h.process_env(&[]);
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
                .args([PER_PROCESS.to_string(), start_at.to_string()])
                .envs(env.iter().cloned())
                .output()
        })
        .collect();
    let outputs = join_all(children).await;
    let mut answers = Vec::new();
    for out in outputs {
        let out = out.expect("stampede process runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            answers.push(serde_json::from_str::<serde_json::Value>(line).unwrap());
        }
    }
    assert_eq!(answers.len(), PROCESSES * PER_PROCESS);
    let first = answers[0]["token"].as_str().unwrap().to_string();
    assert_ne!(first, old);
    for a in &answers {
        assert_eq!(a["status"], 200, "{a}");
        assert_eq!(
            a["token"],
            first.as_str(),
            "every request got the same new token"
        );
    }
    assert_eq!(
        h.token_calls(),
        2,
        "the first fetch, then exactly one for the stampede"
    );
    let slowest = answers
        .iter()
        .map(|a| a["ms"].as_u64().unwrap())
        .max()
        .unwrap();
    // The documented bound: REFRESH_WAIT_MS (5 s) for waiters.
    assert!(slowest < 5000, "slowest answer {slowest} ms");
    println!(
        "stampede: {PROCESSES} processes, {} requests, {} token fetch, slowest {slowest} ms",
        answers.len(),
        h.token_calls() - 1
    );
}

#[tokio::test]
async fn a_rotation_asked_while_another_lands_shares_it() {
    let h = Harness::new().await;
    h.served_token(&h.app).await;
    let before = h.token_calls();
    // B asked at the same moment as A, but its read of the store is slow: it comes back after A's
    // rotation was published, and finds it is the rotation it asked for.
    let (slow, store) = h.faulty_instance(&[]);
    store.inject(
        Op::Load,
        Fault::Slow(std::time::Duration::from_millis(800)),
        Some(1),
    );
    let d = deadline();
    let (a, b) = tokio::join!(
        h.app.tokens.get(Mode::Rotate, &d),
        slow.tokens.get(Mode::Rotate, &d)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(h.token_calls() - before, 1, "one rotation for both");
    assert_eq!(a.state.access_token, b.state.access_token);
}
