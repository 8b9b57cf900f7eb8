//! The token service against the memory store (plain and with injected faults) and the in-process
//! WeChat simulator: no moto, no Python.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wechat_sim::{Running, Sim};

use super::*;
use crate::adapters::secret::AppSecret;
use crate::adapters::store::faults::{Fault, FaultyStore, Op};
use crate::adapters::store::MemoryStore;
use crate::adapters::wechat::{Call, WeChatClient, MP_PATHS};
use crate::domain::config::{Config, Secret};
use crate::domain::state::Credential;
use crate::token::lifecycle::guaranteed_secs;

const APPID: &str = "wxa185587d4fc35145";

fn config(base: &str, overrides: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = [
        ("WECHAT_APPID", APPID),
        ("WECHAT_SECRET", "sim-appsecret"),
        ("WECHAT_API_BASE", base),
        ("WECHAT_ALLOW_HTTP", "true"),
        ("TOKEN_TABLE", "unused"),
        ("JSSDK_URL", "https://expense.example.com/"),
        ("WECHAT_TIMEOUT_MS", "500"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in overrides {
        env.insert(k.to_string(), v.to_string());
    }
    Config::from_lookup(|k| env.get(k).cloned()).unwrap()
}

struct World {
    sim: Running,
    mem: Arc<MemoryStore>,
    store: FaultyStore,
    tokens: TokenService,
    http: reqwest::Client,
}

impl World {
    async fn new(overrides: &[(&str, &str)]) -> World {
        let sim = Sim::start_default().await;
        let mem = Arc::new(MemoryStore::new());
        let store = FaultyStore::new(mem.clone());
        let config = config(&sim.base_url(), overrides);
        let wechat = WeChatClient::new(&config, AppSecret::given(Secret::new("sim-appsecret")));
        let tokens = TokenService::new(Arc::new(store.clone()), APPID, wechat, config.timing);
        World {
            sim,
            mem,
            store,
            tokens,
            http: reqwest::Client::new(),
        }
    }

    async fn stored(&self) -> TokenState {
        self.mem.load(APPID).await.unwrap()
    }

    fn token_calls(&self) -> u64 {
        self.sim.sim.calls("/cgi-bin/token")
    }

    async fn sim(&self, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.sim.base_url());
        let resp = self.http.post(url).json(&body).send().await.unwrap();
        resp.json().await.unwrap()
    }

    /// Whether WeChat (the simulator) still accepts `token`.
    async fn works_at_wechat(&self, token: &str) -> bool {
        let url = format!(
            "{}/cgi-bin/ticket/getticket?type=jsapi&access_token={token}",
            self.sim.base_url()
        );
        let v: Value = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["errcode"] == 0
    }

    /// Moves the gateway's and WeChat's clocks forward together.
    async fn advance(&self, secs: u64) {
        self.tokens.clock().advance(Duration::from_secs(secs));
        self.sim("/__sim/clock", json!({"advance_secs": secs}))
            .await;
    }

    async fn get(&self, mode: Mode) -> Result<Served, TokenError> {
        self.tokens
            .get(mode, &Deadline::after(Duration::from_secs(10)))
            .await
    }
}

fn token_of(s: &TokenState) -> String {
    s.access_token.as_ref().unwrap().value.clone()
}

#[tokio::test]
async fn contract_holds_for_the_memory_store() {
    crate::adapters::store::contract::run(&MemoryStore::new(), "contract").await;
}

#[tokio::test]
async fn an_issued_token_that_cannot_be_stored_is_served_and_the_stored_one_ends_in_time() {
    let w = World::new(&[("CACHE_TTL_SECS", "0"), ("REFRESH_LEASE_MS", "2000")]).await;
    let old = token_of(&w.get(Mode::Auto).await.unwrap().state);
    // An hour on: due for the scheduled rotation, an hour of life left.
    w.advance(3600).await;
    w.store.inject(Op::Commit, Fault::Fail, None);
    let started = Instant::now();
    let served = w.get(Mode::Scheduled).await.unwrap();
    let issued = token_of(&served.state);
    assert_eq!(served.source, Source::RefreshedUnstored);
    assert!(served.fault.is_some());
    assert_ne!(issued, old, "the caller got the token WeChat issued");
    assert!(w.works_at_wechat(&issued).await);
    assert!(w.store.calls(Op::Commit) > 1, "the commit was retried");
    assert!(
        started.elapsed() < Duration::from_secs(11),
        "within the lease"
    );
    let stored = w.stored().await;
    assert_eq!(token_of(&stored), old, "nothing was published");
    assert!(stored.lock_owner.is_none(), "the lock was released");
    let mark = stored.fetch_started_ms.expect("the fetch was marked first");
    assert_eq!(
        lifecycle::token_dies_at(&stored, w.tokens.timing()),
        Some(mark + 300_000)
    );
    // WeChat ends the old token 5 minutes after the new one was issued; the gateway never
    // serves it past that: the next reader after the mark's grace refreshes.
    w.store.clear();
    w.advance(301).await;
    assert!(!w.works_at_wechat(&old).await, "WeChat ended it");
    let served = w.get(Mode::Auto).await.unwrap();
    let now_token = token_of(&served.state);
    assert_ne!(now_token, old);
    assert!(w.works_at_wechat(&now_token).await);
    assert_eq!(served.source, Source::Refreshed);
}

#[tokio::test]
async fn a_commit_that_landed_but_answered_an_error_counts_once() {
    let w = World::new(&[]).await;
    w.store.inject(Op::Commit, Fault::FailAfterWrite, Some(1));
    let served = w.get(Mode::Auto).await.unwrap();
    assert_eq!(served.source, Source::Refreshed);
    let stored = w.stored().await;
    assert_eq!(stored.version, 1, "published once");
    assert_eq!(token_of(&stored), token_of(&served.state));
    assert_eq!(w.token_calls(), 1);
}

#[tokio::test]
async fn a_lock_whose_answer_was_lost_is_ours() {
    let w = World::new(&[]).await;
    w.store.inject(Op::TryLock, Fault::LostResponse, Some(1));
    let started = Instant::now();
    let served = w.get(Mode::Auto).await.unwrap();
    assert_eq!(served.source, Source::Refreshed);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no wait for our own lease: {:?}",
        started.elapsed()
    );
    assert_eq!(w.token_calls(), 1);
    assert!(w.stored().await.lock_owner.is_none());
}

#[tokio::test]
async fn a_failed_fetch_releases_the_lock_and_clears_only_a_mark_that_issued_nothing() {
    let w = World::new(&[("REFRESH_COOLDOWN_SECS", "0")]).await;
    let old = token_of(&w.get(Mode::Auto).await.unwrap().state);
    // WeChat answers an errcode: nothing was issued, the mark goes.
    w.sim(
        "/__sim/faults",
        json!({"path": "/cgi-bin/token", "errcode": 45009, "times": 1}),
    )
    .await;
    let e = w.get(Mode::Rotate).await.unwrap_err();
    assert!(
        matches!(&e, TokenError::WeChat(WeChatError::Api(b)) if b.errcode == 45009),
        "{e:?}"
    );
    let stored = w.stored().await;
    assert_eq!(
        (stored.lock_owner.as_deref(), stored.fetch_started_ms),
        (None, None)
    );
    // WeChat times out: it may have issued, the mark stays and ends the old token early.
    w.sim(
        "/__sim/faults",
        json!({"path": "/cgi-bin/token", "latency_ms": 1500, "times": 1}),
    )
    .await;
    let e = w.get(Mode::Rotate).await.unwrap_err();
    // Answered 504.
    assert!(
        matches!(e, TokenError::WeChat(WeChatError::Timeout(_))),
        "{e:?}"
    );
    let stored = w.stored().await;
    assert!(stored.lock_owner.is_none());
    assert!(stored.fetch_started_ms.is_some());
    assert_eq!(token_of(&stored), old);
}

#[tokio::test]
async fn the_deadline_bounds_a_request_whose_store_is_slow() {
    let w = World::new(&[]).await;
    w.store
        .inject(Op::Load, Fault::Slow(Duration::from_secs(5)), None);
    let started = Instant::now();
    let e = w
        .tokens
        .get(Mode::Auto, &Deadline::after(Duration::from_millis(800)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    // Answered 503.
    assert_eq!(e, TokenError::Expired("reading the token store"), "{e:?}");
    assert!(
        took >= Duration::from_millis(750) && took < Duration::from_millis(1000),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_deadline_reached_mid_refresh_answers_504_and_leaves_the_lock_free() {
    let w = World::new(&[]).await;
    w.sim(
        "/__sim/faults",
        json!({"path": "/cgi-bin/ticket/getticket", "latency_ms": 3000}),
    )
    .await;
    let started = Instant::now();
    let e = w
        .tokens
        .get(Mode::Auto, &Deadline::after(Duration::from_millis(700)))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(900));
    // Answered 503 or 504.
    assert!(
        matches!(
            e,
            TokenError::WeChat(WeChatError::Timeout(_) | WeChatError::NoTime)
                | TokenError::Expired(_)
                | TokenError::Unavailable(_)
        ),
        "{e:?}"
    );
    let stored = w.stored().await;
    assert!(stored.lock_owner.is_none(), "released before answering");
}

#[tokio::test]
async fn a_scheduled_run_waits_for_the_holder_instead_of_reporting_success() {
    let w = World::new(&[("REFRESH_AHEAD_SECS", "7200")]).await;
    w.get(Mode::Auto).await.unwrap();
    w.advance(120).await; // out of the cooldown: the scheduled rotation is due
                          // Someone else holds the lock and never publishes.
    let now = w.tokens.clock().now_ms();
    w.mem.try_lock(APPID, "other", now, 60_000).await.unwrap();
    let e = w
        .tokens
        .get(
            Mode::Scheduled,
            &Deadline::after(Duration::from_millis(600)),
        )
        .await;
    let served = e.expect("the stored token is alive");
    assert_eq!(served.source, Source::StoredAfterFault);
    assert!(served.fault.is_some(), "the rotation did not happen");
}

#[tokio::test]
async fn the_backup_host_mends_a_down_host_for_reads_and_only_an_unsent_status_change() {
    let backup = Sim::start_default().await;
    let primary = Sim::start_default().await;
    // The primary answers 503 to everything (a host that is up but failing).
    reqwest::Client::new()
        .post(format!("{}/__sim/faults", primary.base_url()))
        .json(&json!({"path": "*", "http_status": 503}))
        .send()
        .await
        .unwrap();
    let cfg = config(
        &primary.base_url(),
        &[("WECHAT_API_BACKUP_BASE", &backup.base_url())],
    );
    let wechat = WeChatClient::new(&cfg, AppSecret::given(Secret::new("sim-appsecret")));
    let d = Deadline::after(Duration::from_secs(5));
    let issued = wechat.fetch_access_token(false, &d).await.unwrap();
    assert_eq!(backup.sim.calls("/cgi-bin/token"), 1);
    let path = MP_PATHS.update_status_batch;
    let body = bytes::Bytes::from_static(
        br#"{"openid":"x","reimburse_status":"INVOICE_REIMBURSE_LOCK","invoice_list":[]}"#,
    );
    let e = wechat
        .post(path, &issued.value, body.clone(), Call::Change, &d)
        .await
        .unwrap_err();
    assert!(matches!(e, WeChatError::Unreachable(_)), "{e:?}");
    assert_eq!(
        backup.sim.calls(path),
        0,
        "a status change that left is never resent"
    );
    // A primary that cannot be connected to at all: even a status change goes to the backup.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let cfg = config(&closed, &[("WECHAT_API_BACKUP_BASE", &backup.base_url())]);
    let wechat = WeChatClient::new(&cfg, AppSecret::given(Secret::new("sim-appsecret")));
    let issued = wechat.fetch_access_token(false, &d).await.unwrap();
    let r = wechat
        .post(path, &issued.value, body, Call::Change, &d)
        .await;
    assert!(!matches!(r, Err(WeChatError::NotSent(_))), "{r:?}");
    assert_eq!(backup.sim.calls(path), 1);
}

#[test]
fn guaranteed_lifetime_is_until_rotation_plus_grace() {
    let t = Timing::default();
    let now = 1_000_000_000;
    let state = |left_ms: u64| TokenState {
        access_token: Some(Credential {
            value: "x".into(),
            expires_at_ms: now + left_ms,
        }),
        ..TokenState::default()
    };
    // 7200 − 3900 (rotate ahead) + 300 (grace) = 3600: the token lives one schedule period.
    assert_eq!(guaranteed_secs(&state(7_200_000), &t, now, true), 3600);
    // Past the rotation point: only the grace is guaranteed.
    assert_eq!(guaranteed_secs(&state(3_000_000), &t, now, true), 300);
    // Never beyond expiry.
    assert_eq!(guaranteed_secs(&state(120_000), &t, now, true), 120);
    assert_eq!(guaranteed_secs(&TokenState::default(), &t, now, true), 0);
    // Stable and WeCom tokens are not ended by a newer one: their whole remaining life.
    assert_eq!(guaranteed_secs(&state(7_200_000), &t, now, false), 7200);
    // A fetch mark ends it at mark + grace, whatever the platform.
    let mut marked = state(7_200_000);
    marked.fetch_started_ms = Some(now - 60_000);
    assert_eq!(guaranteed_secs(&marked, &t, now, true), 240);
    assert_eq!(guaranteed_secs(&marked, &t, now, false), 240);
}

#[tokio::test]
async fn the_wechat_client_follows_no_redirect() {
    // A host that answers every call with a redirect to the real (simulated) WeChat.
    let sim = Sim::start_default().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let target = format!("{}/cgi-bin/token", sim.base_url());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = conn.write_all(answer.as_bytes()).await;
        }
    });
    let cfg = config(&format!("http://{addr}"), &[]);
    let wechat = WeChatClient::new(&cfg, AppSecret::given(Secret::new("sim-appsecret")));
    let e = wechat
        .fetch_access_token(false, &Deadline::after(Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert_eq!(e, WeChatError::Unreachable("HTTP 302".into()));
    assert_eq!(
        sim.sim.calls("/cgi-bin/token"),
        0,
        "the redirect was not followed"
    );
}
