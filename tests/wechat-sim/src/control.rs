//! Control endpoints under `/__sim/`: stats, faults, invoices, clock, options, tokens, reset.

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::state::{parse_invoices, Fault, Options, State, TicketRec};
use crate::{json as answer, Answer, Sim};

pub fn handle(sim: &Sim, method: &Method, path: &str, body: &[u8]) -> Answer {
    match result(sim, method, path, body) {
        Ok(v) => answer(StatusCode::OK, &v),
        Err((status, msg)) => answer(status, &json!({ "error": msg })),
    }
}

type R = Result<Value, (StatusCode, String)>;

fn bad(msg: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, msg.to_string())
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, (StatusCode, String)> {
    serde_json::from_slice(body).map_err(bad)
}

fn result(sim: &Sim, method: &Method, path: &str, body: &[u8]) -> R {
    let mut st = sim.lock();
    match (method, path) {
        (&Method::GET, "stats") => {
            let total: u64 = st.calls.values().sum();
            Ok(json!({ "calls": st.calls, "total": total }))
        }
        (&Method::GET, "faults") => Ok(json!(st.faults)),
        (&Method::POST, "faults") => {
            let fault: Fault = parse(body)?;
            if fault.path.is_empty() {
                return Err(bad("path is required (an API path, or * for all)"));
            }
            if fault.times == Some(0) {
                return Err(bad("times must be at least 1 (omit it for until cleared)"));
            }
            st.faults.push(fault);
            Ok(json!(st.faults))
        }
        (&Method::DELETE, "faults") => {
            st.faults.clear();
            Ok(json!([]))
        }
        (&Method::GET, "invoices") => Ok(json!(st.invoices)),
        (&Method::POST, "invoices") => {
            let text = std::str::from_utf8(body).map_err(bad)?;
            st.invoices = parse_invoices(text).map_err(bad)?;
            Ok(json!({ "invoices": st.invoices.len() }))
        }
        (&Method::GET, "clock") => {
            Ok(json!({ "offset_secs": st.clock_offset_secs, "now": st.now() }))
        }
        (&Method::POST, "clock") => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Clock {
                offset_secs: Option<i64>,
                advance_secs: Option<i64>,
            }
            let c: Clock = parse(body)?;
            match (c.offset_secs, c.advance_secs) {
                (Some(o), None) => st.clock_offset_secs = o,
                (None, Some(a)) => st.clock_offset_secs += a,
                _ => return Err(bad("give exactly one of offset_secs, advance_secs")),
            }
            Ok(json!({ "offset_secs": st.clock_offset_secs, "now": st.now() }))
        }
        (&Method::GET, "options") => Ok(json!(st.options)),
        (&Method::POST, "options") => {
            // Merge the given fields into the current options.
            let patch: serde_json::Map<String, Value> = parse(body)?;
            let mut current = serde_json::to_value(&st.options).expect("options serialize");
            if let Value::Object(m) = &mut current {
                m.extend(patch);
            }
            st.options = serde_json::from_value::<Options>(current).map_err(bad)?;
            Ok(json!(st.options))
        }
        (&Method::GET, "tokens") => {
            // The latest token of each family and app, and every token and ticket ever issued.
            let latest: Vec<Value> = st
                .latest
                .iter()
                .map(|((family, app), token)| json!({ "family": family, "app": app, "access_token": token }))
                .collect();
            let tokens: Vec<&String> = st.tokens.keys().collect();
            let tickets: Vec<&String> = st.tickets.keys().collect();
            // When each token stops working (simulator clock, Unix seconds): its expiry, or the
            // end of its grace once a newer token superseded it.
            let ends: serde_json::Map<String, Value> = st
                .tokens
                .iter()
                .map(|(t, rec)| {
                    let end = rec
                        .superseded_until
                        .unwrap_or(rec.expires_at)
                        .min(rec.expires_at);
                    (t.clone(), json!(end))
                })
                .collect();
            Ok(
                json!({ "latest": latest, "tokens": tokens, "tickets": tickets, "ends": ends, "now": st.now() }),
            )
        }
        (&Method::POST, "verify/jsapi") => {
            // What the WeChat client checks in wx.config: the signature over a live jsapi ticket
            // and the page URL without its fragment.
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct V {
                url: String,
                noncestr: String,
                timestamp: u64,
                signature: String,
            }
            let v: V = parse(body)?;
            let valid = page_signed(&st, &v.url, &v.noncestr, v.timestamp, &v.signature, |rec| {
                rec.kind == "jsapi"
            });
            Ok(json!({ "valid": valid }))
        }
        (&Method::POST, "verify/agent_config") => {
            // What WeCom checks in agentConfig: the wx.config formula over a live agent_config
            // ticket of that agent (its own corp's app, or one of `apps`).
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct V {
                corpid: String,
                agentid: String,
                url: String,
                noncestr: String,
                timestamp: u64,
                signature: String,
            }
            let v: V = parse(body)?;
            let own = v.corpid == st.options.corpid && v.agentid == st.options.agentid;
            let agent = format!("{}#{}", v.corpid, v.agentid);
            let valid = page_signed(&st, &v.url, &v.noncestr, v.timestamp, &v.signature, |rec| {
                rec.kind == "agent_config" && (rec.app == agent || (own && rec.app == v.corpid))
            });
            Ok(json!({ "valid": valid }))
        }
        (&Method::POST, "verify/card_sign") => {
            // What chooseInvoice checks: SHA1 of the sorted wx_card ticket, appid (a WeCom
            // agent's corpid), timestamp, nonce and "INVOICE", for a live wx_card ticket of that app.
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct V {
                appid: String,
                timestamp: u64,
                nonce_str: String,
                sign_type: String,
                card_sign: String,
            }
            let v: V = parse(body)?;
            let now = st.now();
            let ts = v.timestamp.to_string();
            let valid = v.sign_type == "SHA1"
                && st.tickets.iter().any(|(ticket, rec)| {
                    let mut values = [
                        ticket.as_str(),
                        v.appid.as_str(),
                        ts.as_str(),
                        v.nonce_str.as_str(),
                        "INVOICE",
                    ];
                    values.sort_unstable();
                    // A WeCom agent's ticket signs with its corpid (`corpid#agentid`).
                    rec.kind == "wx_card"
                        && rec.app.split('#').next() == Some(v.appid.as_str())
                        && rec.expires_at > now
                        && sha1_hex(&values.concat()) == v.card_sign
                });
            Ok(json!({ "valid": valid }))
        }
        (&Method::POST, "reset") => {
            st.reset();
            Ok(json!({ "reset": true }))
        }
        _ => Err((
            StatusCode::NOT_FOUND,
            format!("no control endpoint {method} /__sim/{path}"),
        )),
    }
}

fn sha1_hex(s: &str) -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `signature` is the JS-SDK signature of the page `url` (without its fragment) over a
/// live ticket that `kind` accepts.
fn page_signed(
    st: &State,
    url: &str,
    noncestr: &str,
    timestamp: u64,
    signature: &str,
    kind: impl Fn(&TicketRec) -> bool,
) -> bool {
    let url = url.split('#').next().unwrap_or_default();
    let now = st.now();
    st.tickets.iter().any(|(ticket, rec)| {
        kind(rec)
            && rec.expires_at > now
            && sha1_hex(&format!(
                "jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}"
            )) == signature
    })
}
