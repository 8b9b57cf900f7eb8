//! The simulator's state: apps and options, issued tokens and tickets, the invoice store, call
//! counters, injected faults and the clock offset.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::component::ComponentOptions;

/// Settings, including WeChat behaviours that are undocumented (each marked "inferred").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// The Official Account the simulator knows.
    pub appid: String,
    pub secret: String,
    /// The WeCom corp (and the secret and agentid of its one app) the simulator knows.
    pub corpid: String,
    pub corpsecret: String,
    pub agentid: String,
    /// Lifetime of access tokens and tickets, seconds (WeChat: 7200).
    pub token_ttl_secs: u64,
    /// How long a superseded `/cgi-bin/token` token keeps working (WeChat: 300 s).
    pub grace_secs: u64,
    /// Addresses allowed to fetch tokens (the account's API IP allow-list); empty: any.
    pub ip_whitelist: Vec<String>,
    /// errcode for a caller outside the allow-list: 40164 (what users observe); the newer
    /// Official Account docs say 61004.
    pub ip_whitelist_errcode: i64,
    /// `/cgi-bin/token` calls per app per day before 45009 (WeChat: 2000).
    pub daily_token_quota: u64,
    /// `stable_token` force refreshes per day (WeChat: 20) and their minimum spacing (30 s).
    pub stable_force_daily: u64,
    pub stable_force_min_interval_secs: u64,
    /// errcode for an access_token the platform never issued. Inferred: 40001 is what a community
    /// report saw for an altered token; 40014 is the other documented candidate.
    pub unknown_token_errcode: i64,
    /// WeCom `gettoken` returns the same token while it is valid (older WeCom docs; inferred for now).
    pub work_token_idempotent: bool,
    /// Setting an invoice to the status it already has succeeds (inferred; `false` answers 72024).
    pub same_status_ok: bool,
    /// errcode for any change to a reimbursed (CLOSURE) invoice (inferred: 72024; 72061 exists).
    pub closed_errcode: i64,
    /// errcode for any change to a voided (CANCEL) invoice (inferred: 72024; 72060 exists).
    pub cancelled_errcode: i64,
    /// The batch query leaves out invoices it cannot find and still answers errcode 0 (a community
    /// report); `false` fails the whole batch like the single query.
    pub batch_skips_unknown: bool,
    /// Most items in one batch call before 72031 (inferred; WeChat documents no limit). 0: none.
    pub max_batch_items: usize,
    /// WeCom batch query needs more than 200 activated members, else 48001.
    pub work_batch_allowed: bool,
    /// Size of the invoice files (`pdf_url`, `trip_pdf_url`) the simulator serves, bytes.
    pub pdf_bytes: usize,
    /// More accounts besides `appid` and `corpid`: Official Accounts, mini programs and WeCom
    /// agents, each with its own secret, tokens, tickets and quota.
    pub apps: Vec<SimApp>,
    /// errcode for an invoice another app's token asks about (inferred: WeChat answers as for
    /// a code it does not know).
    pub foreign_invoice_errcode: i64,
    /// WeCom members, userid → openid, for `/cgi-bin/user/convert_to_openid` (by default the
    /// owners of the fixture invoices).
    pub users: HashMap<String, String>,
    /// The third-party platform WeChat knows, and where it pushes its events.
    pub component: ComponentOptions,
}

/// One more account: `kind` `mp` (Official Account), `mini` (mini program) or `work` (a WeCom
/// agent of corp `appid`, told apart by its `agentid` and secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimApp {
    pub kind: String,
    pub appid: String,
    pub secret: String,
    #[serde(default)]
    pub agentid: Option<String>,
}

impl SimApp {
    /// The name tokens and invoices carry: the appid, or `corpid#agentid` for a WeCom agent.
    pub fn key(&self) -> String {
        match &self.agentid {
            Some(agent) => format!("{}#{agent}", self.appid),
            None => self.appid.clone(),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            appid: "wxa185587d4fc35145".into(),
            secret: "sim-appsecret".into(),
            corpid: "ww5im0c0rp00000001".into(),
            corpsecret: "sim-corpsecret".into(),
            agentid: "1000001".into(),
            token_ttl_secs: 7200,
            grace_secs: 300,
            ip_whitelist: Vec::new(),
            ip_whitelist_errcode: 40164,
            daily_token_quota: 2000,
            stable_force_daily: 20,
            stable_force_min_interval_secs: 30,
            unknown_token_errcode: 40001,
            work_token_idempotent: true,
            same_status_ok: true,
            closed_errcode: 72024,
            cancelled_errcode: 72024,
            batch_skips_unknown: true,
            max_batch_items: 0,
            work_batch_allowed: true,
            pdf_bytes: 24 * 1024,
            apps: Vec::new(),
            foreign_invoice_errcode: 40056,
            users: HashMap::from([
                (
                    "zhangsan".to_string(),
                    "or6qc1XNFyAhiatjzyd7aboPkLz8".to_string(),
                ),
                (
                    "lisi".to_string(),
                    "or6qc1SimAnotherUserOpenid00".to_string(),
                ),
            ]),
            component: ComponentOptions::default(),
        }
    }
}

/// An injected fault for one path (or `*` for every API path).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fault {
    pub path: String,
    /// Added before answering (or before any other effect of this fault).
    pub latency_ms: Option<u64>,
    /// Answer this errcode (HTTP 200, WeChat's envelope).
    pub errcode: Option<i64>,
    pub errmsg: Option<String>,
    /// Answer this HTTP status with an HTML body.
    pub http_status: Option<u16>,
    /// Close the connection without answering.
    pub drop: bool,
    /// Answer this raw text with status 200 (e.g. garbage that is not JSON).
    pub body: Option<String>,
    /// Apply to this many calls, then disappear; absent: until cleared.
    pub times: Option<u64>,
    /// The call takes effect first, then the fault answers: WeChat acted and its answer was lost
    /// (with `latency_ms` past the caller's timeout, `drop` or `http_status`).
    pub applied: bool,
}

/// One invoice card in a user's wallet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invoice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub encrypt_code: String,
    /// The app (appid or corpid) holding the reimbursement lock, if any.
    #[serde(default)]
    pub locked_by: Option<String>,
    /// The app whose user picked it (appid, corpid or `corpid#agentid`): only that app's tokens
    /// see it. None: every app of the default accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// The card as the query APIs return it (`card_id`, `openid`, `user_info.reimburse_status`, …).
    pub card: Map<String, Value>,
}

impl Invoice {
    pub fn card_id(&self) -> &str {
        self.card
            .get("card_id")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    pub fn openid(&self) -> &str {
        self.card
            .get("openid")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    pub fn status(&self) -> &str {
        self.card
            .get("user_info")
            .and_then(|u| u.get("reimburse_status"))
            .and_then(Value::as_str)
            .unwrap_or("INVOICE_REIMBURSE_INIT")
    }
    pub fn set_status(&mut self, status: &str) {
        let ui = self
            .card
            .entry("user_info")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(ui) = ui {
            ui.insert("reimburse_status".into(), Value::String(status.into()));
        }
    }
}

/// Token families: they never invalidate each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// `/cgi-bin/token`
    Classic,
    /// `/cgi-bin/stable_token`
    Stable,
    /// WeCom `/cgi-bin/gettoken`
    Work,
    /// A third-party platform's `component_access_token` (`api_component_token`).
    Component,
}

#[derive(Debug, Clone)]
pub struct TokenRec {
    pub app: String,
    pub family: Family,
    pub expires_at: u64,
    /// Set when a newer token of the same family replaced it: works until then.
    pub superseded_until: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct TicketRec {
    pub app: String,
    pub kind: String,
    pub expires_at: u64,
}

pub struct State {
    pub options: Options,
    pub startup: (Options, Vec<Invoice>),
    pub invoices: Vec<Invoice>,
    pub tokens: HashMap<String, TokenRec>,
    pub latest: HashMap<(Family, String), String>,
    pub tickets: HashMap<String, TicketRec>,
    /// `/cgi-bin/token` calls per (app, day).
    pub quota_used: HashMap<(String, u64), u64>,
    /// `stable_token` force refreshes per (app, day), and the last one's time.
    pub stable_forced: HashMap<(String, u64), u64>,
    pub stable_last_force: HashMap<String, u64>,
    pub calls: HashMap<String, u64>,
    pub faults: Vec<Fault>,
    pub clock_offset_secs: i64,
    /// Verify tickets pushed to the platform, and when each stops being accepted.
    pub verify_tickets: HashMap<String, u64>,
    /// When the last verify ticket was pushed (simulated time), for the push timer.
    pub last_ticket_push: u64,
    /// Pre-auth codes, auth codes and the accounts' authorizations of the platform.
    pub platform: crate::component_api::Platform,
}

impl State {
    pub fn new(options: Options, invoices_json: &str) -> Result<State, String> {
        let invoices = parse_invoices(invoices_json)?;
        Ok(State::starting((options, invoices)))
    }

    fn starting(startup: (Options, Vec<Invoice>)) -> State {
        State {
            options: startup.0.clone(),
            invoices: startup.1.clone(),
            startup,
            tokens: HashMap::new(),
            latest: HashMap::new(),
            tickets: HashMap::new(),
            quota_used: HashMap::new(),
            stable_forced: HashMap::new(),
            stable_last_force: HashMap::new(),
            calls: HashMap::new(),
            faults: Vec::new(),
            clock_offset_secs: 0,
            verify_tickets: HashMap::new(),
            last_ticket_push: 0,
            platform: Default::default(),
        }
    }

    /// Back to the state at startup.
    pub fn reset(&mut self) {
        *self = State::starting(self.startup.clone());
    }

    /// The latest token of `family` for `app`, if still valid: (token, expires_at).
    pub fn current_token(&self, family: Family, app: &str) -> Option<(String, u64)> {
        let now = self.now();
        let token = self.latest.get(&(family, app.to_string()))?;
        let rec = self.tokens.get(token)?;
        (rec.expires_at > now).then(|| (token.clone(), rec.expires_at))
    }

    /// The simulated time, Unix seconds.
    pub fn now(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        real.saturating_add_signed(self.clock_offset_secs)
    }

    /// The fault that applies to this call, consuming one of its `times`.
    pub fn take_fault(&mut self, path: &str) -> Option<Fault> {
        let i = self
            .faults
            .iter()
            .position(|f| f.path == path || f.path == "*")?;
        let fault = self.faults[i].clone();
        if let Some(times) = self.faults[i].times.as_mut() {
            *times = times.saturating_sub(1);
            if *times == 0 {
                self.faults.remove(i);
            }
        }
        Some(fault)
    }

    /// Issues a token for `app` in `family`; the previous one of the family is superseded after
    /// `grace` seconds (or keeps its own expiry if that is sooner).
    pub fn issue_token(&mut self, family: Family, app: &str, grace: Option<u64>) -> (String, u64) {
        let now = self.now();
        let ttl = self.options.token_ttl_secs;
        let token = new_credential(family_prefix(family));
        if let Some(prev) = self.latest.get(&(family, app.to_string())).cloned() {
            if let (Some(rec), Some(grace)) = (self.tokens.get_mut(&prev), grace) {
                rec.superseded_until = Some((now + grace).min(rec.expires_at));
            }
        }
        self.tokens.insert(
            token.clone(),
            TokenRec {
                app: app.to_string(),
                family,
                expires_at: now + ttl,
                superseded_until: None,
            },
        );
        self.latest.insert((family, app.to_string()), token.clone());
        (token, ttl)
    }

    pub fn issue_ticket(&mut self, app: &str, kind: &str) -> (String, u64) {
        let now = self.now();
        let ttl = self.options.token_ttl_secs;
        let ticket = new_credential("tk");
        self.tickets.insert(
            ticket.clone(),
            TicketRec {
                app: app.into(),
                kind: kind.into(),
                expires_at: now + ttl,
            },
        );
        (ticket, ttl)
    }
}

fn family_prefix(f: Family) -> &'static str {
    match f {
        Family::Classic => "at",
        Family::Stable => "st",
        Family::Work => "wk",
        Family::Component => "cp",
    }
}

/// A random credential in WeChat's alphabet (letters, digits, `_`, `-`), about WeChat's length.
fn new_credential(prefix: &str) -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_SIM{}-{}_{}", &a[..20], &a[20..], b)
}

pub fn parse_invoices(json: &str) -> Result<Vec<Invoice>, String> {
    let invoices: Vec<Invoice> =
        serde_json::from_str(json).map_err(|e| format!("invoices: {e}"))?;
    for (i, inv) in invoices.iter().enumerate() {
        if inv.card_id().is_empty() || inv.encrypt_code.is_empty() {
            return Err(format!(
                "invoices[{i}]: card.card_id and encrypt_code are required"
            ));
        }
    }
    Ok(invoices)
}

impl State {
    /// A new verify ticket for the platform, and the push that carries it.
    pub fn verify_ticket_push(&mut self) -> (String, Option<crate::component::Push>) {
        let now = self.now();
        let ticket = format!("ticket@@@{}", uuid::Uuid::new_v4().simple());
        let o = &self.options.component;
        self.verify_tickets
            .insert(ticket.clone(), now + o.ticket_ttl_secs);
        self.last_ticket_push = now;
        let xml = crate::component::verify_ticket_xml(&o.appid, now, &ticket);
        (ticket, self.event_push(&xml))
    }

    /// The push of a decrypted event `xml`, signed now.
    pub fn event_push(&self, xml: &str) -> Option<crate::component::Push> {
        use crate::component::{push, random16};
        let nonce = fastrand::u32(100_000_000..).to_string();
        push(&self.options.component, xml, self.now(), &nonce, random16())
    }
}
