//! Files under `tests/fixtures/`: API Gateway events, the simulator's invoices, and tables of
//! requests with the answers expected ([`RequestCase`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use crate::{encode_uri_component, Call, Endpoint};

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The simulator's default invoices (`invoices.json`), to edit and seed it with.
pub fn seed_invoices() -> Vec<Value> {
    serde_json::from_str(&fixture("invoices.json")).expect("invoices.json is a JSON array")
}

/// One request of a table and what its answer must be.
///
/// ```json
/// {"name": "…", "method": "POST", "path": "/core/r/api/weChat/getInvoiceBatch",
///  "query": "token=t", "params": {"url": "https://…"},
///  "body": "text as sent" or {"a JSON value": "sent as its text"},
///  "expand": {"${E}": {"repeat": "e", "times": 70000, "separator": ""}},
///  "status": 400, "errcode": 72031, "errmsg_contains": "…"}
/// ```
///
/// `params` are appended to `query`, each value encoded as `encodeURIComponent` does; `expand`
/// replaces each placeholder in the query and the body by `repeat` written `times` times.
/// Without `errcode` or `errmsg_contains`, that part of the answer is not checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestCase {
    pub name: String,
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub params: serde_json::Map<String, Value>,
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub expand: BTreeMap<String, Expand>,
    pub status: u16,
    #[serde(default)]
    pub errcode: Option<i64>,
    #[serde(default)]
    pub errmsg_contains: Option<String>,
}

/// Text made by repetition, for a placeholder of a [`RequestCase`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expand {
    pub repeat: String,
    pub times: usize,
    #[serde(default)]
    pub separator: String,
}

impl RequestCase {
    /// The cases of `tests/fixtures/{name}` (a JSON array).
    pub fn load(name: &str) -> Vec<RequestCase> {
        let cases: Vec<RequestCase> =
            serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!cases.is_empty(), "{name}: no case");
        cases
    }

    fn expanded(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (placeholder, e) in &self.expand {
            let made = vec![e.repeat.as_str(); e.times].join(&e.separator);
            text = text.replace(placeholder, &made);
        }
        text
    }

    /// The query string as sent.
    pub fn query(&self) -> String {
        let mut pairs: Vec<String> = Some(self.query.clone())
            .filter(|q| !q.is_empty())
            .into_iter()
            .collect();
        for (k, v) in &self.params {
            let v = v
                .as_str()
                .unwrap_or_else(|| panic!("{}: {k}: not a string", self.name));
            pairs.push(format!("{k}={}", encode_uri_component(v)));
        }
        self.expanded(&pairs.join("&"))
    }

    /// The body as sent.
    pub fn body(&self) -> String {
        match &self.body {
            None => String::new(),
            Some(Value::String(text)) => self.expanded(text),
            Some(v) => self.expanded(&v.to_string()),
        }
    }

    /// The request: the endpoint of its path, with its method, query and body.
    pub fn call(&self) -> Call {
        let endpoint = Endpoint::from_path(&self.path)
            .unwrap_or_else(|| panic!("{}: no endpoint at {}", self.name, self.path));
        endpoint
            .call()
            .query(&self.query())
            .method(&self.method)
            .body(self.body())
    }

    /// The case and an answer, as an assertion message shows them.
    pub fn shown(&self, answer: &Value) -> String {
        let query = self.query();
        let query: String = query.chars().take(200).collect();
        let (name, method, path) = (&self.name, &self.method, &self.path);
        format!("{name} ({method} {path}?{query}): {answer}")
    }

    /// Checks an answer: the status, and the errcode and errmsg where the case gives them.
    pub fn check(&self, status: u16, answer: &Value) {
        let case = self.shown(answer);
        assert_eq!(status, self.status, "{case}");
        if let Some(errcode) = self.errcode {
            assert_eq!(answer["errcode"], errcode, "{case}");
        }
        if let Some(fragment) = &self.errmsg_contains {
            let errmsg = answer["errmsg"].as_str();
            let errmsg = errmsg.unwrap_or_else(|| panic!("no errmsg: {case}"));
            assert!(errmsg.contains(fragment.as_str()), "{case}");
        }
    }
}
