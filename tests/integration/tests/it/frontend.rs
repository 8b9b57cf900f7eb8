//! What a front end needs from getToken: the signature of its own page (`url`), the
//! chooseInvoice card_sign, and CORS for the allowed origins, checked against what WeChat (the
//! simulator) verifies.

use integration_tests::*;
use lambda_http::http::header;
use wechat_sim::CardSign;

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
        let (status, v) = h
            .get_token(&format!("url={}", encode_uri_component(href)))
            .await;
        assert_eq!(status, 200, "{href}: {v}");
        assert_eq!(v["url"], signed, "{href}");
        assert!(
            h.wechat_accepts(href, &v).await,
            "WeChat accepts the signature of {href}"
        );
    }
    // Without `url`: the configured page.
    let (_, v) = h.get_token("").await;
    assert_eq!(v["url"], PAGE_URL);
    assert!(h.wechat_accepts(PAGE_URL, &v).await);
    // A signature is only valid for the page it was made for.
    let (_, v) = h
        .get_token(&format!(
            "url={}",
            encode_uri_component("https://expense.example.com/a")
        ))
        .await;
    assert!(!h.wechat_accepts("https://expense.example.com/b", &v).await);
}

#[tokio::test]
async fn refuses_pages_outside_the_allowed_origins() {
    let h = Harness::with(&[(
        "ALLOWED_ORIGINS",
        "https://expense.example.com,http://localhost:8080",
    )])
    .await;
    let (status, _) = h
        .get_token(&format!(
            "url={}",
            encode_uri_component("http://localhost:8080/h5/")
        ))
        .await;
    assert_eq!(status, 200);
    // Other origins, URLs that are not http(s), one too long (`tests/fixtures/refused-pages.json`).
    for case in RequestCase::load("refused-pages.json") {
        let (status, v) = h.answer(case.call()).await;
        case.check(status, &v);
    }
    assert_eq!(h.calls(paths().token), 1, "refusals fetch nothing");
}

#[tokio::test]
async fn card_sign_opens_choose_invoice() {
    let h = Harness::new().await;
    let (_, v) = h.get_token("").await;
    assert_eq!(v["sign_type"], "SHA1");
    let field = |k: &str| v[k].as_str().unwrap_or_default();
    let check = CardSign {
        appid: field("appid"),
        timestamp: v["timestamp"].as_u64().unwrap_or_default(),
        nonce_str: field("noncestr"),
        sign_type: field("sign_type"),
        card_sign: field("card_sign"),
    };
    assert!(h.sim.verify_card_sign(&check).await, "{v}");
    // The jsapi signature is not a card_sign.
    let wrong = CardSign {
        card_sign: field("signature"),
        ..check
    };
    assert!(!h.sim.verify_card_sign(&wrong).await);
    // The keys of the answer, in order.
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, TOKEN_FIELDS);
}

#[tokio::test]
async fn cors_for_the_allowed_origins_only() {
    let h = Harness::with(&[("ALLOWED_ORIGINS", "https://expense.example.com")]).await;
    let with_origin = |origin: &str, method: &str| {
        let call = Endpoint::GetInvoiceBatch.call().header("origin", origin);
        h.send(call.method(method).query("token=t"))
    };
    // Preflight from the allowed origin.
    let resp = with_origin("https://expense.example.com", "OPTIONS").await;
    assert_eq!(resp.status(), 204);
    let hd = resp.headers();
    assert_eq!(
        hd[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://expense.example.com"
    );
    assert_eq!(hd[header::ACCESS_CONTROL_ALLOW_METHODS], "POST");
    assert_eq!(
        hd[header::ACCESS_CONTROL_ALLOW_HEADERS],
        "content-type, authorization, idempotency-key",
        "the bearer token, behind the JWT authorizer; status changes' keys"
    );
    // Preflight from elsewhere: no CORS headers, so the browser refuses.
    let resp = with_origin("https://evil.example.com", "OPTIONS").await;
    assert_eq!(resp.status(), 204);
    assert!(resp
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
    // The answer itself carries the header for the allowed origin only.
    let resp = with_origin("https://expense.example.com", "POST").await;
    assert_eq!(
        resp.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://expense.example.com"
    );
    assert_eq!(resp.headers()[header::VARY], "Origin");
    let resp = with_origin("https://evil.example.com", "POST").await;
    assert!(resp
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
    assert_eq!(h.sim.stats().await.total, 0);
}
