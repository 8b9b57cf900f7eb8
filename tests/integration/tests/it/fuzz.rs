//! Property tests of request parsing: arbitrary query strings, headers, bodies (plain and base64,
//! as API Gateway sends them) and JSON values never panic, and every refusal is a 4xx in the
//! envelope.

use base64::Engine;
use integration_tests::{check_get_token, check_invoice, Call, Endpoint, TestConfig};
use lambda_http::RequestExt;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Base64 as API Gateway encodes a non-text body.
fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The configuration the checks run with (nothing is called).
fn config() -> wxinvoice::domain::config::Config {
    TestConfig::new("http://127.0.0.1:9", "t").build()
}

/// The request to `endpoint` with this query and body (flagged base64 or not).
fn invoice_request(endpoint: Endpoint, query: &str, body: &str, b64: bool) -> Call {
    endpoint.call().query(query).body(body).base64(b64)
}

/// Checks with both invoice endpoints; every refusal must be a 4xx with an errcode and errmsg.
fn check_both(call_for: impl Fn(Endpoint) -> Call) {
    let cfg = config();
    for endpoint in [Endpoint::GetInvoiceBatch, Endpoint::UpdateStatus] {
        let req = call_for(endpoint).request();
        if let Err(resp) = check_invoice(&cfg, &req, endpoint) {
            assert!(resp.status().is_client_error(), "{}", resp.status());
            let v: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
            assert!(v["errcode"].is_i64() && v["errmsg"].is_string(), "{v}");
        }
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
        prop_oneof![
            Just("INVOICE_REIMBURSE_LOCK"),
            Just("card_id"),
            Just("encrypt_code"),
            Just("")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("item_list".to_string()),
            Just("invoice_list".to_string()),
            Just("card_id".to_string()),
            Just("encrypt_code".to_string()),
            Just("openid".to_string()),
            Just("reimburse_status".to_string()),
            "\\PC{0,12}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn get_token_query_never_panics(query in "\\PC{0,80}") {
        let req = Endpoint::GetToken.call().query(&query).try_request().unwrap();
        let params = req.query_string_parameters();
        let cfg = config();
        match check_get_token(&cfg, &req) {
            Ok(url) => {
                // Accepted only with at most one `type` (auto or manual) and one `url` of an
                // allowed origin, which is what gets signed.
                let all: Vec<(&str, &str)> = params.iter().collect();
                prop_assert!(all.len() <= 2, "{query}");
                for (k, v) in &all {
                    match *k {
                        "type" => prop_assert!(*v == "auto" || *v == "manual", "{query}"),
                        "url" => prop_assert_eq!(v.split('#').next().unwrap(), url.as_str()),
                        _ => prop_assert!(false, "{query}"),
                    }
                }
                let origin = wxinvoice::domain::origin::origin_of(&url);
                prop_assert!(origin.is_some_and(|o| cfg.allowed_origins.contains(&o)), "{url}");
            }
            Err(resp) => prop_assert!(resp.status().is_client_error()),
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..300), query in "\\PC{0,40}") {
        let text = String::from_utf8_lossy(&body).into_owned();
        check_both(|e| invoice_request(e, &query, &text, false));
        // Base64, as API Gateway sends non-text bodies, and text wrongly flagged base64.
        let encoded = base64(&body);
        check_both(|e| invoice_request(e, "token=t", &encoded, true));
        check_both(|e| invoice_request(e, "token=t", &text, true));
    }

    #[test]
    fn hostile_headers_never_panic(
        host in "\\PC{0,30}",
        proto in prop_oneof![Just("https".to_string()), "\\PC{0,10}"],
        domain in "\\PC{0,30}",
        stage in prop_oneof![Just("$default".to_string()), "\\PC{0,10}"],
        extra in "\\PC{0,30}",
    ) {
        let call = Endpoint::GetToken.call().edit(|v| {
            v["headers"]["host"] = json!(host);
            v["headers"]["x-forwarded-proto"] = json!(proto);
            v["headers"]["x-forwarded-for"] = json!(extra);
            v["headers"]["origin"] = json!(extra);
            v["requestContext"]["domainName"] = json!(domain);
            v["requestContext"]["stage"] = json!(stage);
        });
        // An event API Gateway could hand over converts, and routes on the raw path.
        if let Ok(req) = call.try_request() {
            prop_assert_eq!(req.raw_http_path(), "/core/r/api/weChat/getToken");
            let cfg = config();
            prop_assert!(check_get_token(&cfg, &req).is_ok());
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let text = value.to_string();
        check_both(|e| invoice_request(e, "token=t", &text, false));
        check_both(|e| invoice_request(e, "token=t", &base64(text.as_bytes()), true));
    }
}
