//! Property tests of request parsing: arbitrary query strings, headers, bodies (plain and base64,
//! as API Gateway sends them) and JSON values never panic, and every refusal is a 4xx in the
//! envelope.

use integration_tests::{config, event, fixture, set_body, set_query};
use lambda_http::Request;
use lambda_http::RequestExt;
use proptest::prelude::*;
use serde_json::{json, Value};
use wxinvoice::handlers::{parse_get_token, parse_invoice, GET_INVOICE_BATCH, UPDATE_STATUS};
use wxinvoice::invoice::{GetInvoiceBatchRequest, UpdateStatusRequest};

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn invoice_request(fixture: &str, query: &str, body: &str, b64: bool) -> Request {
    event(fixture, |v| {
        set_query(v, query);
        set_body(v, body);
        v["isBase64Encoded"] = json!(b64);
    })
}

/// Parses with both invoice endpoints; every refusal must be a 4xx with an errcode and errmsg.
fn check_invoice(req_for: impl Fn(&str) -> Request) {
    let cfg = config("http://127.0.0.1:9", "t", &[]);
    for (fixture, path) in [
        ("apigw-v2-get-invoice-batch.json", GET_INVOICE_BATCH),
        ("apigw-v2-update-status.json", UPDATE_STATUS),
    ] {
        let req = req_for(fixture);
        let outcome = if path == GET_INVOICE_BATCH {
            parse_invoice::<GetInvoiceBatchRequest>(&cfg, &req, path).map(|_| ())
        } else {
            parse_invoice::<UpdateStatusRequest>(&cfg, &req, path).map(|_| ())
        };
        if let Err(e) = outcome {
            let resp = e.into_response();
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
        let mut v: Value = serde_json::from_str(&fixture("apigw-v2-get-token.json")).unwrap();
        set_query(&mut v, &query);
        let req = wxinvoice::runtime::request_from_json(&v.to_string()).unwrap();
        let params = req.query_string_parameters();
        let cfg = config("http://127.0.0.1:9", "t", &[]);
        match parse_get_token(&cfg, &req) {
            Ok((_, url)) => {
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
                let origin = wxinvoice::config::origin_of(&url);
                prop_assert!(origin.is_some_and(|o| cfg.allowed_origins.contains(&o)), "{url}");
            }
            Err(e) => prop_assert!(e.into_response().status().is_client_error()),
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..300), query in "\\PC{0,40}") {
        let text = String::from_utf8_lossy(&body).into_owned();
        check_invoice(|f| invoice_request(f, &query, &text, false));
        // Base64, as API Gateway sends non-text bodies, and text wrongly flagged base64.
        let encoded = base64(&body);
        check_invoice(|f| invoice_request(f, "token=t", &encoded, true));
        check_invoice(|f| invoice_request(f, "token=t", &text, true));
    }

    #[test]
    fn hostile_headers_never_panic(
        host in "\\PC{0,30}",
        proto in prop_oneof![Just("https".to_string()), "\\PC{0,10}"],
        domain in "\\PC{0,30}",
        stage in prop_oneof![Just("$default".to_string()), "\\PC{0,10}"],
        extra in "\\PC{0,30}",
    ) {
        let mut v: Value = serde_json::from_str(&fixture("apigw-v2-get-token.json")).unwrap();
        v["headers"]["host"] = json!(host);
        v["headers"]["x-forwarded-proto"] = json!(proto);
        v["headers"]["x-forwarded-for"] = json!(extra);
        v["headers"]["origin"] = json!(extra);
        v["requestContext"]["domainName"] = json!(domain);
        v["requestContext"]["stage"] = json!(stage);
        // An event API Gateway could hand over converts, and routes on the raw path.
        if let Ok(req) = wxinvoice::runtime::request_from_json(&v.to_string()) {
            prop_assert_eq!(req.raw_http_path(), "/core/r/api/weChat/getToken");
            let cfg = config("http://127.0.0.1:9", "t", &[]);
            prop_assert!(parse_get_token(&cfg, &req).is_ok());
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let text = value.to_string();
        check_invoice(|f| invoice_request(f, "token=t", &text, false));
        check_invoice(|f| invoice_request(f, "token=t", &base64(text.as_bytes()), true));
    }
}

#[test]
fn base64_helper_matches_the_known_encoding() {
    assert_eq!(base64(b"{\"a\":1}"), "eyJhIjoxfQ==");
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"abc"), "YWJj");
}
