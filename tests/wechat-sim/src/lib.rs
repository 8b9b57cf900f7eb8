//! wechat-sim: a local, stateful simulator of the WeChat Official Account and WeCom APIs that an
//! e-invoice reimbursement backend uses (access tokens, JS-SDK tickets, the reimburser invoice
//! calls), with control endpoints under `/__sim/` for call counts, fault injection, seeding
//! invoices, a clock offset and reset. Behaviours that WeChat does not document are options
//! (see [`Options`]). With the feature `client`, `Client` is a typed HTTP client of a running
//! simulator, for tests.

mod api;
#[cfg(feature = "client")]
mod client;
pub mod component;
mod component_api;
mod control;
mod state;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[cfg(feature = "client")]
pub use client::{AgentSignature, CardSign, Client, Clock, JsapiSignature, Latest, Stats, Tokens};
pub use state::{Fault, Invoice, Options, SimApp};

/// The simulator's default seed: the spec's example invoice and friends.
pub const DEFAULT_INVOICES: &str = include_str!("../../fixtures/invoices.json");

/// Largest request body the simulator reads.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Shared handle on the simulator's state.
#[derive(Clone)]
pub struct Sim {
    state: Arc<Mutex<state::State>>,
}

/// A simulator serving on a local port; stops when dropped.
pub struct Running {
    pub addr: SocketAddr,
    pub sim: Sim,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// `http://127.0.0.1:PORT`, to use as `WECHAT_API_BASE`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why the connection is closed without an answer (the injected "dropped connection").
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

type Answer = Response<Full<Bytes>>;

impl Sim {
    /// A simulator with these options and invoices (a JSON array in the fixture's format).
    pub fn new(options: Options, invoices_json: &str) -> Result<Sim, String> {
        let state = state::State::new(options, invoices_json)?;
        Ok(Sim {
            state: Arc::new(Mutex::new(state)),
        })
    }

    /// Binds `addr` (port 0 for an ephemeral one) and serves in the background.
    pub async fn start(self, addr: SocketAddr) -> std::io::Result<Running> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let sim = self.clone();
        let timer = self.clone();
        let task = tokio::spawn(async move {
            tokio::join!(sim.serve(listener), timer.push_tickets());
        });
        Ok(Running {
            addr,
            sim: self,
            task,
        })
    }

    /// Starts a simulator with default options and seed on 127.0.0.1, on an ephemeral port.
    pub async fn start_default() -> Running {
        Sim::new(Options::default(), DEFAULT_INVOICES)
            .expect("default seed parses")
            .start(([127, 0, 0, 1], 0).into())
            .await
            .expect("bind 127.0.0.1:0")
    }

    async fn serve(self, listener: TcpListener) {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let sim = self.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let sim = sim.clone();
                    async move { sim.handle(req, peer.ip()).await }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    }

    /// The platform's control endpoints: `push` (a verify ticket), `authorize` (the customer's
    /// confirmation), `unauthorize` (its withdrawal); each event's push built and, with `send`,
    /// POSTed to the platform's `push_url`.
    async fn component_control(&self, action: &str, body: &[u8]) -> Answer {
        match action {
            "push" => self.component_push(body).await,
            "authorize" => self.component_authorize(body).await,
            "unauthorize" => self.component_unauthorize(body).await,
            _ => refused(
                StatusCode::NOT_FOUND,
                format!("no control endpoint component/{action}"),
            ),
        }
    }

    /// `authorize` `{"pre_auth_code", "appid", "kind": "mp"|"mini", "funcs": [1, 26], "send"}`:
    /// answers `{"auth_code", "expires_in", "info_type"}` and the push or the platform's reply.
    async fn component_authorize(&self, body: &[u8]) -> Answer {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Ask {
            pre_auth_code: String,
            appid: String,
            #[serde(default = "mp")]
            kind: String,
            funcs: Vec<u64>,
            #[serde(default)]
            send: bool,
        }
        fn mp() -> String {
            "mp".into()
        }
        let ask: Ask = match serde_json::from_slice(body) {
            Ok(a) => a,
            Err(e) => return refused(StatusCode::BAD_REQUEST, format!("component/authorize: {e}")),
        };
        let (code, info_type, push) = {
            let mut st = self.lock();
            let authorized = component_api::authorize(
                &mut st,
                &ask.pre_auth_code,
                &ask.appid,
                &ask.kind,
                ask.funcs,
            );
            match authorized {
                Err(why) => return refused(StatusCode::BAD_REQUEST, why),
                Ok((code, updated)) => {
                    let info_type = if updated {
                        "updateauthorized"
                    } else {
                        "authorized"
                    };
                    let component = st.options.component.appid.clone();
                    let xml = component_api::authorization_xml(
                        &component,
                        st.now(),
                        info_type,
                        &ask.appid,
                        Some(&code),
                    );
                    (code, info_type, st.event_push(&xml))
                }
            }
        };
        let mut answer =
            serde_json::json!({"auth_code": code, "expires_in": 3600, "info_type": info_type});
        self.deliver(&mut answer, push, ask.send).await;
        json(StatusCode::OK, &answer)
    }

    /// `unauthorize` `{"appid", "send"}`: the account withdraws; its refresh token stops working.
    async fn component_unauthorize(&self, body: &[u8]) -> Answer {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Ask {
            appid: String,
            #[serde(default)]
            send: bool,
        }
        let ask: Ask = match serde_json::from_slice(body) {
            Ok(a) => a,
            Err(e) => {
                return refused(
                    StatusCode::BAD_REQUEST,
                    format!("component/unauthorize: {e}"),
                )
            }
        };
        let push = {
            let mut st = self.lock();
            if !component_api::unauthorize(&mut st, &ask.appid) {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "that account has not authorized the platform".into(),
                );
            }
            let component = st.options.component.appid.clone();
            let xml = component_api::authorization_xml(
                &component,
                st.now(),
                "unauthorized",
                &ask.appid,
                None,
            );
            st.event_push(&xml)
        };
        let mut answer = serde_json::json!({"appid": ask.appid});
        self.deliver(&mut answer, push, ask.send).await;
        json(StatusCode::OK, &answer)
    }

    /// Adds the push to `answer`, or with `send` the platform's reply to it.
    async fn deliver(
        &self,
        answer: &mut serde_json::Value,
        push: Option<component::Push>,
        send: bool,
    ) {
        let Some(push) = push else {
            answer["error"] = "component: encoding_aes_key is not 43 characters of base64".into();
            return;
        };
        if !send {
            answer["query"] = push.query.into();
            answer["body"] = push.body.into();
            return;
        }
        match self.send_push(&push).await {
            Ok((status, reply)) => {
                answer["status"] = status.into();
                answer["reply"] = reply.into();
            }
            Err(e) => answer["error"] = e.into(),
        }
    }

    /// `push` `{"info_type": "component_verify_ticket", "send": bool}`:
    /// a new verify ticket, its push built and, with `send`, POSTed to the platform's
    /// `push_url`; answers the ticket and the push (or the platform's reply).
    async fn component_push(&self, body: &[u8]) -> Answer {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Ask {
            info_type: String,
            #[serde(default)]
            send: bool,
        }
        let ask: Ask = match serde_json::from_slice(body) {
            Ok(a) => a,
            Err(e) => return refused(StatusCode::BAD_REQUEST, format!("component/push: {e}")),
        };
        if ask.info_type != "component_verify_ticket" {
            return plain(
                StatusCode::BAD_REQUEST,
                "component/push: info_type component_verify_ticket",
            );
        }
        let (ticket, built) = self.lock().verify_ticket_push();
        let Some(push) = built else {
            return plain(
                StatusCode::BAD_REQUEST,
                "component: encoding_aes_key is not 43 characters of base64",
            );
        };
        if !ask.send {
            return json(
                StatusCode::OK,
                &serde_json::json!({ "ticket": ticket, "query": push.query, "body": push.body }),
            );
        }
        match self.send_push(&push).await {
            Ok((status, reply)) => json(
                StatusCode::OK,
                &serde_json::json!({ "ticket": ticket, "status": status, "reply": reply }),
            ),
            Err(e) => refused(StatusCode::BAD_GATEWAY, e),
        }
    }

    /// POSTs a push to the platform's `push_url`: (its HTTP status, its body).
    async fn send_push(&self, push: &component::Push) -> Result<(u16, String), String> {
        let url = self.lock().options.component.push_url.clone();
        if url.is_empty() {
            return Err("component: no push_url set".into());
        }
        let sep = if url.contains('?') { '&' } else { '?' };
        let resp = reqwest::Client::new()
            .post(format!("{url}{sep}{}", push.query))
            .header("content-type", "text/xml")
            .body(push.body.clone())
            // WeChat gives the platform 5 s; the simulator waits longer, as `cargo lambda watch`
            // builds a function on its first request.
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .map_err(|e| format!("pushing to {url}: {e}"))?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await.unwrap_or_default()))
    }

    /// WeChat's timer: a verify ticket every `ticket_push_secs` of simulated time to the
    /// platform's `push_url` (moving the clock forward drives it).
    async fn push_tickets(self) {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let push = {
                let mut st = self.lock();
                let o = &st.options.component;
                let due = !o.push_url.is_empty()
                    && o.ticket_push_secs > 0
                    && st.now() >= st.last_ticket_push + o.ticket_push_secs;
                if !due {
                    continue;
                }
                st.verify_ticket_push().1
            };
            if let Some(push) = push {
                let _ = self.send_push(&push).await;
            }
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls counted so far for one API path.
    pub fn calls(&self, path: &str) -> u64 {
        self.lock().calls.get(path).copied().unwrap_or(0)
    }

    async fn handle(&self, req: Request<Incoming>, peer: IpAddr) -> Result<Answer, Dropped> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let host = req
            .headers()
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1")
            .to_string();
        let query = parse_query(req.uri().query().unwrap_or(""));
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, "body too large")),
        };
        if let Some(action) = path.strip_prefix("/__sim/component/") {
            if method == hyper::Method::POST {
                return Ok(self.component_control(action, &body).await);
            }
        }
        if let Some(rest) = path.strip_prefix("/__sim/") {
            return Ok(control::handle(self, &method, rest, &body));
        }
        // Count the call, then apply an injected fault, if any.
        let fault = {
            let mut st = self.lock();
            *st.calls.entry(path.clone()).or_insert(0) += 1;
            st.take_fault(&path)
        };
        let applied = fault
            .as_ref()
            .filter(|f| f.applied)
            .map(|_| api::handle(self, &method, &path, &query, &body, peer));
        if let Some(f) = fault {
            if let Some(ms) = f.latency_ms {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            if f.drop {
                return Err(Dropped);
            }
            if let Some(status) = f.http_status {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                return Ok(plain(status, "<html><body>injected fault</body></html>"));
            }
            if let Some(errcode) = f.errcode {
                let errmsg = f.errmsg.clone().unwrap_or_else(|| "injected fault".into());
                return Ok(json(StatusCode::OK, &api::error(errcode, &errmsg)));
            }
            if let Some(raw) = f.body {
                return Ok(Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "application/json; encoding=utf-8")
                    .body(Full::new(Bytes::from(raw)))
                    .expect("static response"));
            }
        }
        if path.starts_with(PDF_PATH) {
            let size = self.lock().options.pdf_bytes;
            return Ok(pdf(&path, req_query(&query), size));
        }
        let mut value =
            applied.unwrap_or_else(|| api::handle(self, &method, &path, &query, &body, peer));
        serve_files_here(&mut value, &host);
        Ok(json(StatusCode::OK, &value))
    }
}

/// A control request refused, with why.
fn refused(status: StatusCode, why: String) -> Answer {
    json(status, &serde_json::json!({ "error": why }))
}

/// Where WeChat serves invoice files (`pdf_url`, `trip_pdf_url`); the simulator serves them too.
const FILES_BASE: &str = "https://mp.weixin.qq.com";
const PDF_PATH: &str = "/intp/invoice/";

/// Points the invoice file links of an answer at the simulator (which serves them under the same
/// paths), as reached by the caller.
fn serve_files_here(value: &mut serde_json::Value, host: &str) {
    match value {
        serde_json::Value::String(s)
            if s.starts_with(FILES_BASE) && s[FILES_BASE.len()..].starts_with(PDF_PATH) =>
        {
            *s = format!("http://{host}{}", &s[FILES_BASE.len()..]);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| serve_files_here(v, host)),
        serde_json::Value::Object(m) => m.values_mut().for_each(|v| serve_files_here(v, host)),
        _ => {}
    }
}

fn req_query(q: &std::collections::HashMap<String, String>) -> String {
    let mut pairs: Vec<_> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort();
    pairs.join("&")
}

/// A PDF of `size` bytes (at least its header and trailer) whose content depends on the link, so
/// each invoice's file has its own digest.
fn pdf(path: &str, query: String, size: usize) -> Answer {
    let head = format!("%PDF-1.4\n% wechat-sim invoice file {path}?{query}\n");
    let tail = "\n%%EOF\n";
    let mut body = head.into_bytes();
    let fill = size.saturating_sub(body.len() + tail.len());
    body.extend(std::iter::repeat_n(b'%', fill));
    body.extend_from_slice(tail.as_bytes());
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/pdf")
        .body(Full::new(Bytes::from(body)))
        .expect("static response")
}

pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Answer {
    Response::builder()
        .status(status)
        // WeChat's own content type.
        .header("content-type", "application/json; encoding=utf-8")
        .body(Full::new(Bytes::from(value.to_string())))
        .expect("static response")
}

pub(crate) fn plain(status: StatusCode, text: &'static str) -> Answer {
    Response::builder()
        .status(status)
        .header("content-type", "text/html")
        .body(Full::new(Bytes::from_static(text.as_bytes())))
        .expect("static response")
}

/// Query string to pairs, percent-decoded (last value wins).
fn parse_query(q: &str) -> std::collections::HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'+' {
            out.push(b' ');
        } else if let (b'%', Some(Some(hi)), Some(Some(lo))) = (
            b,
            bytes.get(i + 1).map(|&c| hex(c)),
            bytes.get(i + 2).map(|&c| hex(c)),
        ) {
            out.push(hi << 4 | lo);
            i += 2;
        } else {
            out.push(b);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
