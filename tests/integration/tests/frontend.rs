//! What a front end needs from getToken: the signature of its own page (`url`), the
//! chooseInvoice card_sign, and CORS for the allowed origins, checked against what WeChat (the
//! simulator) verifies.

use integration_tests::*;
use lambda_http::http::header;
use serde_json::{json, Value};
use wxinvoice::handlers::{get_invoice_batch, get_token};

/// JavaScript's encodeURIComponent.
fn encode_uri_component(s: &str) -> String {
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

async fn token(h: &Harness, query: &str) -> (u16, Value) {
    let req = event("apigw-v2-get-token.json", |v| set_query(v, query));
    let resp = get_token(&h.app, req).await.unwrap();
    (resp.status().as_u16(), body_json(&resp))
}

async fn wechat_accepts(h: &Harness, page: &str, v: &Value) -> bool {
    let check = json!({"url": page, "noncestr": v["noncestr"], "timestamp": v["timestamp"], "signature": v["signature"]});
    h.sim_post("/__sim/verify/jsapi", check).await["valid"] == true
}

#[tokio::test]
async fn signs_the_callers_page() {
    let h = Harness::new().await;
    let cases = [
        // (location.href, what wx.config is checked against)
        (
            "https://expense.example.com/invoices?a=1&b=two%20words",
            "https://expense.example.com/invoices?a=1&b=two%20words",
        ),
        (
            "https://expense.example.com/发票/列表?抬头=汉得",
            "https://expense.example.com/发票/列表?抬头=汉得",
        ),
        (
            "https://expense.example.com/app/#/invoices?id=7",
            "https://expense.example.com/app/",
        ),
        // A page whose own URL is percent-encoded: decoded once, never twice.
        (
            "https://expense.example.com/%E5%8F%91%E7%A5%A8?q=%26",
            "https://expense.example.com/%E5%8F%91%E7%A5%A8?q=%26",
        ),
        (
            "https://EXPENSE.example.com:443/x",
            "https://EXPENSE.example.com:443/x",
        ),
    ];
    for (href, signed) in cases {
        let (status, v) = token(&h, &format!("url={}", encode_uri_component(href))).await;
        assert_eq!(status, 200, "{href}: {v}");
        assert_eq!(v["url"], signed, "{href}");
        assert!(
            wechat_accepts(&h, href, &v).await,
            "WeChat accepts the signature of {href}"
        );
    }
    // Without `url`: the configured page.
    let (_, v) = token(&h, "").await;
    assert_eq!(v["url"], PAGE_URL);
    assert!(wechat_accepts(&h, PAGE_URL, &v).await);
    // A signature is only valid for the page it was made for.
    let (_, v) = token(
        &h,
        &format!(
            "url={}",
            encode_uri_component("https://expense.example.com/a")
        ),
    )
    .await;
    assert!(!wechat_accepts(&h, "https://expense.example.com/b", &v).await);
}

#[tokio::test]
async fn refuses_pages_outside_the_allowed_origins() {
    let h = Harness::with(&[(
        "ALLOWED_ORIGINS",
        "https://expense.example.com,http://localhost:8080",
    )])
    .await;
    let (status, _) = token(
        &h,
        &format!("url={}", encode_uri_component("http://localhost:8080/h5/")),
    )
    .await;
    assert_eq!(status, 200);
    for (url, fragment) in [
        (
            "https://evil.example.com/steal",
            "origin https://evil.example.com is not allowed",
        ),
        (
            "http://expense.example.com/",
            "origin http://expense.example.com is not allowed",
        ),
        (
            "https://expense.example.com.evil.example/",
            "is not allowed",
        ),
        (
            "https://expense.example.com@evil.example/",
            "is not an http(s) URL",
        ),
        ("javascript:alert(1)", "is not an http(s) URL"),
        ("/relative/page", "is not an http(s) URL"),
    ] {
        let (status, v) = token(&h, &format!("url={}", encode_uri_component(url))).await;
        assert_eq!(
            (status, v["errcode"].as_i64()),
            (400, Some(72031)),
            "{url}: {v}"
        );
        assert!(
            v["errmsg"].as_str().unwrap().contains(fragment),
            "{url}: {v}"
        );
    }
    let long = format!("https://expense.example.com/{}", "a".repeat(5000));
    let (status, _) = token(&h, &format!("url={long}")).await;
    assert_eq!(status, 400);
    assert_eq!(h.calls(h.paths().token), 1, "refusals fetch nothing");
}

#[tokio::test]
async fn card_sign_opens_choose_invoice() {
    let h = Harness::new().await;
    let (_, v) = token(&h, "").await;
    assert_eq!(v["sign_type"], "SHA1");
    let check = json!({
        "appid": v["appid"], "timestamp": v["timestamp"], "nonce_str": v["noncestr"],
        "sign_type": v["sign_type"], "card_sign": v["card_sign"],
    });
    assert_eq!(
        h.sim_post("/__sim/verify/card_sign", check.clone()).await["valid"],
        true,
        "{v}"
    );
    // The jsapi signature is not a card_sign.
    let mut wrong = check;
    wrong["card_sign"] = v["signature"].clone();
    assert_eq!(
        h.sim_post("/__sim/verify/card_sign", wrong).await["valid"],
        false
    );
    // The keys of the answer, in order.
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, TOKEN_FIELDS);
}

#[tokio::test]
async fn cors_for_the_allowed_origins_only() {
    let h = Harness::with(&[("ALLOWED_ORIGINS", "https://expense.example.com")]).await;
    let with_origin = |origin: &'static str, method: &'static str| {
        event("apigw-v2-get-invoice-batch.json", move |v| {
            v["headers"]["origin"] = json!(origin);
            set_method(v, method);
            set_query(v, "token=t");
        })
    };
    // Preflight from the allowed origin.
    let resp = get_invoice_batch(
        &h.app,
        with_origin("https://expense.example.com", "OPTIONS"),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 204);
    let hd = resp.headers();
    assert_eq!(
        hd[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://expense.example.com"
    );
    assert_eq!(hd[header::ACCESS_CONTROL_ALLOW_METHODS], "POST");
    assert_eq!(
        hd[header::ACCESS_CONTROL_ALLOW_HEADERS],
        "content-type, authorization",
        "the bearer token, behind the JWT authorizer"
    );
    // Preflight from elsewhere: no CORS headers, so the browser refuses.
    let resp = get_invoice_batch(&h.app, with_origin("https://evil.example.com", "OPTIONS"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(resp
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
    // The answer itself carries the header for the allowed origin only.
    let resp = get_invoice_batch(&h.app, with_origin("https://expense.example.com", "POST"))
        .await
        .unwrap();
    assert_eq!(
        resp.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://expense.example.com"
    );
    assert_eq!(resp.headers()[header::VARY], "Origin");
    let resp = get_invoice_batch(&h.app, with_origin("https://evil.example.com", "POST"))
        .await
        .unwrap();
    assert!(resp
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
    assert_eq!(h.sim_get("/__sim/stats").await["total"], 0);
}
