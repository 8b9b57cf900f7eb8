//! Test harness of the gateway: a WeChat simulator on an ephemeral port (and a client of it), a
//! fresh table in moto's DynamoDB server (`AWS_ENDPOINT_URL_DYNAMODB`, started by the test
//! command), an `Deployment` wired to both, one method per endpoint, and the fixtures.
//!
//! - [`gateway`]: every call into the gateway's handlers (`Endpoint`, `Call`, the endpoint methods
//!   of [`Harness`], direct invocations); the only file that names the handler module.
//! - [`harness`]: [`Harness`] (simulator, table, app instances, what the table and the simulator
//!   hold).
//! - [`config`]: [`TestConfig`], the gateway's configuration in tests; [`Platform`].
//! - [`aws`]: moto (tables, bucket, secrets).
//! - [`fixtures`]: files under `tests/fixtures/`, and [`RequestCase`] tables read from them.

pub mod aws;
pub mod config;
pub mod fixtures;
pub mod gateway;
pub mod harness;

use std::future::Future;
use std::time::Instant;

use serde_json::{json, Value};

pub use aws::*;
pub use config::*;
pub use fixtures::*;
pub use gateway::*;
pub use harness::*;

pub const SEED_CARD: &str = "pIKi3wcA2zJYhWaAUWmf3aMNd_r0";
pub const SEED_CODE: &str = "O/mPnGTpBu22a1szmK2ogzhFPBh9eYzv2p70L8yzyykBoTdEGnOi8TSuvAUzX8XrOHONZv9BQ5sPsgyjLQjJMCy433SEqFIQys8K/CgLWKRMh42topKL2kjiQeB0IIwo";
pub const CODE2: &str = "SIMencryptCode02sameCardIdAsTheSpecExample+/=";
pub const OPENID: &str = "or6qc1XNFyAhiatjzyd7aboPkLz8";
pub const PAGE_URL: &str = "https://expense.example.com/invoices?from=menu";

/// getToken's fields: the spec's, then chooseInvoice's.
pub const TOKEN_FIELDS: [&str; 10] = [
    "access_token",
    "expires_in",
    "appid",
    "timestamp",
    "noncestr",
    "jsapi_ticket",
    "url",
    "signature",
    "card_sign",
    "sign_type",
];

/// Whether the suite runs for WeCom (`WECHAT_PLATFORM=work`).
pub fn is_work() -> bool {
    Platform::current() == Platform::Work
}

/// AppID (Official Account) or corpid (WeCom) of the simulator's app.
pub fn appid() -> String {
    Platform::current().appid().to_string()
}

pub fn appsecret() -> String {
    Platform::current().secret().to_string()
}

/// The simulator path that issues access tokens on this platform.
pub fn token_path() -> &'static str {
    Platform::current().token_path()
}

/// WeChat's API paths on this platform.
pub fn paths() -> &'static wxinvoice::adapters::wechat::Paths {
    Platform::current().paths()
}

/// The batch query path on this platform.
pub fn batch_path() -> &'static str {
    paths().invoice_batch
}

/// A URL of the simulator that needs a valid access_token (the jsapi ticket).
pub fn jsapi_ticket_url(token: &str) -> String {
    if is_work() {
        format!("{}?access_token={token}", paths().jsapi_ticket)
    } else {
        format!("{}?type=jsapi&access_token={token}", paths().jsapi_ticket)
    }
}

/// A request's deadline as Lambda's 20 s timeout gives it.
pub fn deadline() -> wxinvoice::domain::deadline::Deadline {
    wxinvoice::domain::deadline::Deadline::after(std::time::Duration::from_millis(19_500))
}

/// Invoices of the spec example's card_id, by encrypt_code, as the API bodies list them.
pub fn refs(codes: &[&str]) -> Value {
    Value::Array(
        codes
            .iter()
            .map(|c| json!({"card_id": SEED_CARD, "encrypt_code": c}))
            .collect(),
    )
}

/// A query body (getInvoiceBatch) asking for these invoices of the spec example's card_id.
pub fn batch_of(codes: &[&str]) -> Value {
    json!({ "item_list": refs(codes) })
}

/// The access_token of a getToken answer (panics, naming none, when there is none).
pub fn access_token(answer: &Value) -> String {
    let token = answer["access_token"].as_str();
    let errcode = &answer["errcode"];
    token
        .unwrap_or_else(|| panic!("no access_token in the answer (errcode {errcode})"))
        .to_string()
}

/// `f`'s output and how long it took, in ms.
pub async fn timed<T>(f: impl Future<Output = T>) -> (T, u128) {
    let started = Instant::now();
    let out = f.await;
    (out, started.elapsed().as_millis())
}

/// JavaScript's encodeURIComponent.
pub fn encode_uri_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An answer as an assertion message may show it: credentials (tokens, tickets, signatures)
/// masked, so a failing test prints none.
pub fn shown(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        for k in ["access_token", "jsapi_ticket", "signature", "card_sign"] {
            if let Some(x) = m.get_mut(k) {
                *x = Value::from("***");
            }
        }
    }
    v
}
