//! The hourly sweep and the rotation worker, against moto's DynamoDB and SQS and the simulator:
//! the sweep finds the due apps in its index and sends them to the queue; get-token, as the
//! queue's worker, rotates each under its own lock; a duplicate costs one read; a failure is
//! reported for its message alone.

use integration_tests::*;
use serde_json::{json, Value};
use wxinvoice::adapters::store::faults::Op;
use wxinvoice::adapters::store::TokenStore;
use wxinvoice::adapters::wechat::MP_PATHS;
use wxinvoice::domain::apps;

const ORIGIN: &str = "https://b.example.com";

fn app_name(i: usize) -> String {
    format!("wxsweep{i:011}")
}

/// A harness whose sweep sends to a fresh queue, without offsets (the messages are visible at
/// once); its URL.
async fn with_queue() -> (Harness, String) {
    let sdk = aws().await;
    let queue = create_queue(&sdk).await;
    let h = Harness::with(&[
        ("ROTATION_QUEUE_URL", &queue),
        ("ROTATION_SPREAD_SECS", "0"),
    ])
    .await;
    (h, queue)
}

fn mp_calls(h: &Harness) -> u64 {
    h.calls(MP_PATHS.token) + h.calls(MP_PATHS.jsapi_ticket)
}

fn failures(v: &Value) -> Vec<String> {
    v["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures")
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_sweep_queues_due_apps_and_the_worker_rotates_each_once() {
    let (h, queue) = with_queue().await;
    let n = 25;
    for i in 0..n {
        h.register_app("mp", &app_name(i), None, &[ORIGIN]).await;
    }
    let v = h.schedule().await.unwrap();
    assert_eq!(
        v["apps"],
        json!({"due": n, "queued": n, "refreshed": 0, "listed": true}),
        "{v}"
    );
    for i in 0..n {
        let issued = h.sim.issued_to(&app_name(i)).await;
        assert!(
            issued.is_none(),
            "the sweep calls WeChat for no registered app"
        );
    }
    let before = mp_calls(&h);
    let messages = receive_all(&h.sdk, &queue).await;
    assert_eq!(messages.len(), n);
    let mut named: Vec<String> = messages
        .iter()
        .map(|(_, body)| {
            serde_json::from_str::<Value>(body).unwrap()["app"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    named.sort();
    let want: Vec<String> = (0..n).map(|i| apps::key(&app_name(i), None)).collect();
    assert_eq!(named, want, "one message per due app");

    // The worker, as the event source mapping delivers them (ten at a time), on another instance
    // whose reads are counted.
    let (worker, store) = h.faulty_instance(&[
        ("ROTATION_QUEUE_URL", &queue),
        ("ROTATION_SPREAD_SECS", "0"),
    ]);
    for batch in messages.chunks(10) {
        let v = invoke(&worker, &sqs_event(batch)).await.unwrap();
        assert_eq!(failures(&v), Vec::<String>::new(), "{v}");
    }
    for i in 0..n {
        assert!(
            h.sim.issued_to(&app_name(i)).await.is_some(),
            "app {i} rotated"
        );
    }
    let per_app = (mp_calls(&h) - before) as f64 / n as f64;
    assert_eq!(per_app, 3.0, "a token and two tickets per app");
    let reads = store.calls(Op::Load);
    assert_eq!(reads, n as u32, "one read per rotation: {reads}");

    // Delivered again (SQS delivers at least once): one read each, nothing else.
    let (locks, calls) = (store.calls(Op::TryLock), mp_calls(&h));
    let v = invoke(&worker, &sqs_event(&messages[..10])).await.unwrap();
    assert_eq!(failures(&v), Vec::<String>::new(), "{v}");
    assert_eq!(store.calls(Op::Load), reads + 10);
    assert_eq!(store.calls(Op::TryLock), locks, "no lock taken");
    assert_eq!(mp_calls(&h), calls, "WeChat not called");

    // The next sweep: every app rotated, nothing due, nothing sent.
    let v = h.schedule().await.unwrap();
    assert_eq!(
        v["apps"],
        json!({"due": 0, "queued": 0, "refreshed": 0, "listed": false}),
        "{v}"
    );
    assert!(receive_all(&h.sdk, &queue).await.is_empty());
    // Each app's due time is in the index: 75 minutes (the hour, the margin, the spread of
    // 0) before its credentials end.
    let state = h.store().load(&want[0]).await.unwrap();
    let end = state.access_token.unwrap().expires_at_ms;
    assert_eq!(state.due_ms, Some(end - 3_900_000));
}

#[tokio::test]
async fn a_failed_rotation_and_a_bad_message_are_reported_alone() {
    let (h, queue) = with_queue().await;
    for i in 0..3 {
        h.register_app("mp", &app_name(i), None, &[ORIGIN]).await;
    }
    h.schedule().await.unwrap();
    let mut messages = receive_all(&h.sdk, &queue).await;
    assert_eq!(messages.len(), 3);
    // One app's secret was reset at WeChat.
    let mut sim_apps = h.sim.options().await.apps;
    let broken = sim_apps
        .iter_mut()
        .find(|a| a.appid == app_name(1))
        .unwrap();
    broken.secret = "reset-at-wechat".into();
    h.sim.set_options(json!({ "apps": sim_apps })).await;
    messages.push(("garbage".into(), "{\"app\":1}".into()));
    let v = h.invoke(&sqs_event(&messages)).await.unwrap();
    let key = apps::key(&app_name(1), None);
    let broken_id = messages
        .iter()
        .find(|(_, b)| b.contains(&key))
        .map(|(id, _)| id.clone())
        .unwrap();
    let mut failed = failures(&v);
    failed.sort();
    let mut want = vec![broken_id, "garbage".to_string()];
    want.sort();
    assert_eq!(failed, want, "{v}");
    assert!(h.sim.issued_to(&app_name(0)).await.is_some());
    assert!(h.sim.issued_to(&app_name(2)).await.is_some());
    // Still due: the next sweep sends it again.
    let v = h.schedule().await.unwrap();
    assert_eq!(v["apps"]["due"], 1, "{v}");
}

#[tokio::test]
async fn apps_registered_before_the_index_are_entered_by_the_first_sweep() {
    let h = Harness::new().await;
    for i in 0..3 {
        h.register_app("mp", &app_name(i), None, &[ORIGIN]).await;
    }
    // As an older version left them: no due time, no marker.
    let ddb = aws_sdk_dynamodb::Client::new(&h.sdk);
    for i in 0..3 {
        ddb.update_item()
            .table_name(&h.table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(apps::key(&app_name(i), None)),
            )
            .update_expression("REMOVE sweep, due_ms")
            .send()
            .await
            .unwrap();
    }
    assert_eq!(h.store().due_apps(u64::MAX).await.unwrap(), None);
    let v = h.schedule().await.unwrap();
    assert_eq!(
        v["apps"],
        json!({"due": 3, "queued": 0, "refreshed": 3, "listed": true}),
        "{v}"
    );
    let due = h.store().due_apps(u64::MAX).await.unwrap().unwrap();
    assert_eq!(due.len(), 3, "each app back in the index with its due time");
}

#[tokio::test]
async fn a_sweep_failing_for_many_apps_names_a_few_and_counts_the_rest() {
    let h = Harness::new().await;
    for i in 0..12 {
        h.register_app("mp", &app_name(i), None, &[ORIGIN]).await;
    }
    // Every registered app's secret was reset at WeChat.
    let mut sim_apps = h.sim.options().await.apps;
    for a in sim_apps.iter_mut() {
        a.secret = "reset-at-wechat".into();
    }
    h.sim.set_options(json!({ "apps": sim_apps })).await;
    let err = h.schedule().await.unwrap_err();
    assert!(err.contains("failed for 12 of 12 due apps"), "{err}");
    assert!(err.ends_with("; and 2 more"), "{err}");
    assert_eq!(err.matches("app#wxsweep").count(), 10, "{err}");
}
