//! Half-failures of the token lifecycle against DynamoDB (moto) and the simulator, one fresh
//! harness per case: a lock holder SIGKILLed between WeChat issuing and the commit (another OS
//! process), commits that fail or land without an answer, a lock write whose answer is lost, the
//! Lambda deadline reached mid-refresh, an AppSecret reset, WeChat's API host down with the backup
//! host up, and a scheduled run that cannot rotate. For each: what the caller got and in how
//! long, what is stored afterwards, how long the gateway could serve a token WeChat has already
//! ended, and whether the lock is free. Prints the table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::*;
use serde_json::{json, Value};
use wxinvoice::adapters::store::faults::{Fault, Op};
use wxinvoice::domain::clock::now_ms;
use wxinvoice::token::lifecycle;
use wxinvoice::Deployment;

/// One line of the table.
struct Row {
    case: &'static str,
    caller: String,
    ms: u128,
    stored: String,
    overshoot: String,
    lock_free: bool,
}

impl Row {
    fn print(&self) {
        println!(
            "| {} | {} | {} ms | {} | {} | {} |",
            self.case,
            self.caller,
            self.ms,
            self.stored,
            self.overshoot,
            if self.lock_free { "yes" } else { "no" }
        );
    }
}

fn classic() -> bool {
    token_path() == wxinvoice::adapters::wechat::MP_PATHS.token
}

/// getToken on `app`, timed; with a Lambda deadline `budget` away (the Lambda context as the
/// runtime hands it: its deadline is what the request has).
async fn get(app: &Deployment, query: &str, budget: Option<Duration>) -> (u16, Value, u128) {
    let mut call = Endpoint::GetToken.call().query(query);
    if let Some(b) = budget {
        call = call.lambda_budget(b);
    }
    let ((status, v), ms) = timed(call.answer(app)).await;
    (status, v, ms)
}

/// An operator's rotation, timed.
async fn rotated(app: &Deployment) -> (u16, Value, u128) {
    let ((status, v), ms) = timed(rotate(app)).await;
    (status, v, ms)
}

fn caller(status: u16, v: &Value, token_was: &str) -> String {
    match v["access_token"].as_str() {
        Some(t) if t == token_was => format!("{status}, the stored token"),
        Some(_) => format!("{status}, a new token"),
        None => format!("{status}, errcode {}", v["errcode"]),
    }
}

/// When the simulator ends `token`, in the gateway's clock (ms), to its 1 s resolution.
async fn wechat_end_ms(h: &Harness, app: &Deployment, token: &str) -> u64 {
    let v = h.sim.tokens().await;
    let end = *v.ends.get(token).expect("a token the simulator issued");
    let sim_now = v.now;
    (app.tokens.clock().now_ms() as i64 + (end as i64 - sim_now as i64) * 1000) as u64
}

/// How long past WeChat's end the gateway would serve the token it stores now (`never` when it
/// reads it as dead before WeChat ends it), and the stored token itself.
async fn overshoot(h: &Harness, app: &Deployment) -> (i64, String) {
    let state = h.stored().await;
    let token = state.access_token.clone().unwrap().value;
    let gateway_end = lifecycle::token_dies_at(&state, app.tokens.timing()).unwrap();
    let wechat_end = wechat_end_ms(h, app, &token).await;
    (gateway_end as i64 - wechat_end as i64, token)
}

fn shown(overshoot_ms: i64) -> String {
    // The simulator counts whole seconds: anything under 1 s is inside its resolution.
    assert!(
        overshoot_ms < 1000,
        "a dead token could be served for {overshoot_ms} ms"
    );
    "never".into()
}

/// Once WeChat has ended the old stored token, the gateway answers one that works.
async fn after_wechat_ends(h: &Harness, app: &Deployment, old: &str) {
    let end = wechat_end_ms(h, app, old).await;
    let secs = end.saturating_sub(app.tokens.clock().now_ms()) / 1000 + 2;
    h.advance(app, secs).await;
    assert!(!h.token_works(old).await, "WeChat ended the old token");
    let (status, v, _) = get(app, "", None).await;
    let served = v["access_token"].as_str().unwrap_or_default().to_string();
    assert_eq!(status, 200, "{v}");
    assert!(
        h.token_works(&served).await,
        "the gateway serves a live token"
    );
}

async fn holder_killed_after_wechat_issued() -> Row {
    let h = Harness::new().await;
    let (_, first, _) = get(&h.app, "", None).await;
    let old = first["access_token"].as_str().unwrap().to_string();
    // The holder's ticket fetch hangs, so it is killed between the token and the commit.
    h.sim
        .fault(json!({"path": paths().jsapi_ticket, "latency_ms": 3000}))
        .await;
    let env = h.process_env(&[
        ("REFRESH_MARGIN_SECS", "7200"),
        ("REFRESH_AHEAD_SECS", "7200"),
        ("REFRESH_COOLDOWN_SECS", "0"),
        ("WECHAT_TIMEOUT_MS", "3000"),
    ]);
    let mut holder = tokio::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["1", &now_ms().to_string()])
        .envs(env)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // WeChat has issued the holder's token once its token call reached the simulator (which
    // answers it at once; the ticket call after it hangs).
    let issued = async {
        while h.token_calls() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::timeout(Duration::from_secs(20), issued)
        .await
        .expect("the holder fetched a token");
    holder.kill().await.unwrap(); // SIGKILL
    h.sim.clear_faults().await;
    let stored = h.stored().await;
    assert_eq!(
        stored.access_token.as_ref().unwrap().value,
        old,
        "killed before its commit"
    );
    assert!(stored.lock_owner.is_some(), "the dead holder's lease");
    let marked = stored.fetch_started_ms.is_some();
    assert_eq!(
        marked,
        classic(),
        "the fetch was marked where it ends the token"
    );
    let (ms_over, _) = overshoot(&h, &h.app).await;
    // A reader now (an instance without a cached copy): the stored token is still alive at
    // WeChat (its grace), so it is served while the dead holder's lease runs.
    let reader = h.instance(&[]);
    let (status, v, ms) = get(&reader, "", None).await;
    let got = caller(status, &v, &old);
    assert_eq!(status, 200, "{v}");
    after_wechat_ends(&h, &h.app, &old).await;
    Row {
        case: "lock holder SIGKILLed after WeChat issued, before the commit (another process)",
        caller: got,
        ms,
        stored: if marked {
            "old token, marked: read as dead at mark + 300 s".into()
        } else {
            "old token (not ended by the new one)".into()
        },
        overshoot: shown(ms_over),
        lock_free: h.stored().await.lock_owner.is_none(),
    }
}

async fn commit_always_fails() -> Row {
    let h = Harness::new().await;
    let (_, first, _) = get(&h.app, "", None).await;
    let old = first["access_token"].as_str().unwrap().to_string();
    let (app, store) = h.faulty_instance(&[
        ("REFRESH_COOLDOWN_SECS", "0"),
        ("REFRESH_LEASE_MS", "3000"),
        ("WECHAT_TIMEOUT_MS", "900"),
    ]);
    store.inject(Op::Commit, Fault::Fail, None);
    let (status, v, ms) = rotated(&app).await;
    assert_eq!(status, 200, "{v}");
    let issued = v["access_token"].as_str().unwrap().to_string();
    assert_ne!(issued, old);
    assert!(h.token_works(&issued).await, "the caller got a live token");
    assert!(store.calls(Op::Commit) > 1, "retried while the lease held");
    assert!(ms < 3500, "within the lease: {ms} ms");
    let stored = h.stored().await;
    assert_eq!(stored.access_token.as_ref().unwrap().value, old);
    let (ms_over, _) = overshoot(&h, &app).await;
    store.clear();
    after_wechat_ends(&h, &app, &old).await;
    Row {
        case: "commit fails on every try (DynamoDB errors)",
        caller: caller(status, &v, &old) + " (the one WeChat issued, not stored)",
        ms,
        stored: format!(
            "old token{}",
            if classic() {
                ", marked: read as dead at mark + 300 s"
            } else {
                ""
            }
        ),
        overshoot: shown(ms_over),
        lock_free: h.stored().await.lock_owner.is_none(),
    }
}

async fn commit_lands_without_answer() -> Row {
    let h = Harness::new().await;
    let (_, first, _) = get(&h.app, "", None).await;
    let old = first["access_token"].as_str().unwrap().to_string();
    let (app, store) = h.faulty_instance(&[("REFRESH_COOLDOWN_SECS", "0")]);
    store.inject(Op::Commit, Fault::FailAfterWrite, Some(1));
    let (status, v, ms) = rotated(&app).await;
    assert_eq!(status, 200, "{v}");
    let stored = h.stored().await;
    assert_eq!(
        stored.access_token.as_ref().unwrap().value,
        v["access_token"].as_str().unwrap()
    );
    assert_eq!(stored.version, 2, "published once");
    let (ms_over, _) = overshoot(&h, &app).await;
    Row {
        case: "commit lands, its answer is lost",
        caller: caller(status, &v, &old),
        ms,
        stored: "the new token (recognised as landed, version +1)".into(),
        overshoot: shown(ms_over),
        lock_free: stored.lock_owner.is_none(),
    }
}

async fn lock_answer_lost() -> Row {
    let h = Harness::new().await;
    let (_, first, _) = get(&h.app, "", None).await;
    let old = first["access_token"].as_str().unwrap().to_string();
    let (app, store) = h.faulty_instance(&[("REFRESH_COOLDOWN_SECS", "0")]);
    store.inject(Op::TryLock, Fault::LostResponse, Some(1));
    let (status, v, ms) = rotated(&app).await;
    assert_eq!(status, 200, "{v}");
    assert_ne!(v["access_token"].as_str().unwrap(), old);
    assert!(ms < 2000, "no wait for its own lease: {ms} ms");
    let stored = h.stored().await;
    let (ms_over, _) = overshoot(&h, &app).await;
    Row {
        case: "lock write lands, its answer is lost (the SDK's retry meets our own lock)",
        caller: caller(status, &v, &old),
        ms,
        stored: "the new token".into(),
        overshoot: shown(ms_over),
        lock_free: stored.lock_owner.is_none(),
    }
}

async fn deadline_mid_refresh() -> Row {
    let h = Harness::new().await;
    let (_, first, _) = get(&h.app, "", None).await;
    let old = first["access_token"].as_str().unwrap().to_string();
    // Every request finds the token due; WeChat takes 3 s; Lambda gives the request 2 s.
    let app = h.instance(&[
        ("REFRESH_MARGIN_SECS", "7200"),
        ("REFRESH_AHEAD_SECS", "7200"),
        ("REFRESH_COOLDOWN_SECS", "0"),
        ("DYNAMODB_TIMEOUT_MS", "300"),
    ]);
    h.sim
        .fault(json!({"path": token_path(), "latency_ms": 3000, "times": 1}))
        .await;
    let (status, v, ms) = get(&app, "", Some(Duration::from_secs(2))).await;
    assert!(ms < 2000, "answered before Lambda's deadline: {ms} ms");
    // The slow call goes on at WeChat and issues a token nobody stores.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stored = h.stored().await;
    let (ms_over, _) = overshoot(&h, &app).await;
    let got = caller(status, &v, &old);
    after_wechat_ends(&h, &app, &old).await;
    Row {
        case: "Lambda deadline (2 s) reached mid-refresh, WeChat answering in 3 s",
        caller: got,
        ms,
        stored: if classic() {
            "old token, marked: read as dead at mark + 300 s".into()
        } else {
            "old token".into()
        },
        overshoot: shown(ms_over),
        lock_free: stored.lock_owner.is_none(),
    }
}

async fn secret_reset() -> Row {
    let h = Harness::new().await;
    let name = format!("wxinvoice-test/{}", uuid::Uuid::new_v4().simple());
    create_secret(&h.sdk, &name, &appsecret()).await;
    let app = h.instance(&[
        ("WECHAT_SECRET", ""),
        ("WECHAT_SECRET_ARN", name.as_str()),
        ("REFRESH_COOLDOWN_SECS", "0"),
    ]);
    let (_, first, _) = get(&app, "", None).await;
    let old = first["access_token"].as_str().unwrap().to_string();
    // The operator resets the secret at WeChat and stores the new one; the instance is warm.
    let option = if is_work() { "corpsecret" } else { "secret" };
    h.sim.set_options(json!({ option: "reset-secret" })).await;
    put_secret(&h.sdk, &name, "reset-secret").await;
    let (status, v, ms) = rotated(&app).await;
    assert_eq!(status, 200, "{v}");
    assert_ne!(v["access_token"].as_str().unwrap(), old);
    let stored = h.stored().await;
    let (ms_over, _) = overshoot(&h, &app).await;
    Row {
        case: "AppSecret reset at WeChat and in Secrets Manager, warm instance",
        caller: caller(status, &v, &old) + " (secret re-read once)",
        ms,
        stored: "the new token".into(),
        overshoot: shown(ms_over),
        lock_free: stored.lock_owner.is_none(),
    }
}

async fn api_host_down_backup_up() -> Row {
    let h = Harness::new().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let backup = h.sim.base_url();
    let app = h.instance(&[
        ("WECHAT_API_BASE", closed.as_str()),
        ("WECHAT_API_BACKUP_BASE", backup),
    ]);
    let (status, v, ms) = get(&app, "", None).await;
    assert_eq!(status, 200, "{v}");
    let token = v["access_token"].as_str().unwrap().to_string();
    // The invoice calls go to the backup too.
    let (_, v) = h
        .get_invoice_batch_on(&app, &token, batch_of(&[SEED_CODE]))
        .await;
    assert_eq!(v["errcode"], 0);
    assert_eq!(h.calls(batch_path()), 1);
    let stored = h.stored().await;
    let (ms_over, _) = overshoot(&h, &app).await;
    Row {
        case: "WeChat API host refuses connections, backup host up",
        caller: format!("{status}, a new token from the backup host; invoice query answered"),
        ms,
        stored: "the new token".into(),
        overshoot: shown(ms_over),
        lock_free: stored.lock_owner.is_none(),
    }
}

async fn scheduled_run_cannot_rotate() -> Row {
    let h = Harness::new().await;
    let (_, first, _) = get(&h.app, "", None).await;
    let old = first["access_token"].as_str().unwrap().to_string();
    let app = h.instance(&[
        ("REFRESH_AHEAD_SECS", "7200"),
        ("REFRESH_COOLDOWN_SECS", "0"),
    ]);
    h.sim
        .fault(json!({"path": token_path(), "errcode": 40164,
        "errmsg": "invalid ip 1.2.3.4 ipv6 ::ffff:1.2.3.4, not in whitelist"}))
        .await;
    let (answer, ms) = timed(h.schedule_on(&app)).await;
    let err = answer.expect_err("the invocation fails");
    assert!(err.contains("WeChat errcode 40164"), "{err}");
    assert!(!err.contains(&old), "no token in the error");
    // Readers keep getting the stored token.
    let (status, v, _) = get(&app, "", None).await;
    assert_eq!(v["access_token"].as_str(), Some(old.as_str()), "{v}");
    let stored = h.stored().await;
    let (ms_over, _) = overshoot(&h, &app).await;
    Row {
        case: "scheduled run, token fetch answered 40164 (IP allow-list)",
        caller: format!("invocation failed: \"{err}\"; readers: {status}, the stored token"),
        ms,
        stored: "old token, unchanged".into(),
        overshoot: shown(ms_over),
        lock_free: stored.lock_owner.is_none(),
    }
}

#[tokio::test]
async fn partial_failure_matrix() {
    let rows = vec![
        holder_killed_after_wechat_issued().await,
        commit_always_fails().await,
        commit_lands_without_answer().await,
        lock_answer_lost().await,
        deadline_mid_refresh().await,
        secret_reset().await,
        api_host_down_backup_up().await,
        scheduled_run_cannot_rotate().await,
    ];
    println!("| case | caller got | in | stored afterwards | dead token served past its end at WeChat | lock free |");
    println!("|---|---|---|---|---|---|");
    for row in &rows {
        row.print();
    }
    for row in &rows {
        assert!(row.lock_free, "{}: lock left held", row.case);
    }
}

/// The longest invoice request: every DynamoDB operation just inside DYNAMODB_TIMEOUT_MS, every
/// WeChat call just inside WECHAT_TIMEOUT_MS, and WeChat reporting the token dead, so the request
/// checks the token, posts, replaces the token (lock, mark, token and both tickets, commit) and
/// posts again: about 21.5 s of work at the default timings. Lambda gives it 20 s; it must answer
/// before Lambda's deadline, in the envelope.
#[tokio::test]
async fn every_dependency_slow_the_answer_still_beats_the_lambda_timeout() {
    let h = Harness::new().await;
    let (_, first, _) = get(&h.app, "", None).await;
    let token = first["access_token"].as_str().unwrap().to_string();
    let (app, store) = h.faulty_instance(&[("REFRESH_COOLDOWN_SECS", "0")]);
    for op in [
        Op::Load,
        Op::TryLock,
        Op::MarkFetch,
        Op::Commit,
        Op::Release,
    ] {
        store.inject(op, Fault::Slow(Duration::from_millis(1900)), None);
    }
    h.sim
        .fault(json!({"path": batch_path(), "latency_ms": 2400, "errcode": 40001, "times": 1}))
        .await;
    h.sim.fault(json!({"path": "*", "latency_ms": 2400})).await;
    let lambda_timeout = Duration::from_secs(20);
    let call = Endpoint::GetInvoiceBatch
        .call()
        .query(&format!("token={token}"));
    let call = call
        .body(batch_of(&[SEED_CODE]))
        .lambda_budget(lambda_timeout);
    let started = Instant::now();
    let resp = call.send(&app).await;
    let took = started.elapsed();
    let v = body_json(&resp);
    println!(
        "every dependency slow: answered {} errcode {} in {} ms (Lambda timeout {} ms)",
        resp.status().as_u16(),
        v["errcode"],
        took.as_millis(),
        lambda_timeout.as_millis()
    );
    assert!(
        took < lambda_timeout - Duration::from_millis(400),
        "answered in {took:?}"
    );
    assert!(v["errcode"].is_i64(), "{v}");
    assert!(
        matches!(resp.status().as_u16(), 200 | 503 | 504),
        "{}",
        resp.status()
    );
    // The lock is not left held.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(h.stored().await.lock_owner.is_none());
}

#[tokio::test]
async fn store_contract_holds_for_dynamodb() {
    let sdk = aws().await;
    let table = create_table(&sdk).await;
    let config = TestConfig::new("http://127.0.0.1:9", &table).build();
    let store = Arc::new(wxinvoice::adapters::aws::dynamo_store(&config, &sdk));
    wxinvoice::adapters::store::contract::run(store.as_ref(), "contract").await;
}
