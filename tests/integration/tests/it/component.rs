//! A third-party platform's authorization-event URL: WeChat's pushes (the simulator's, encrypted
//! with its own implementation of WeChat's crypto) checked, opened and acted on; bad signatures,
//! replays and garbage refused without a change.

use integration_tests::*;
use lambda_http::Body;
use serde_json::{json, Value};
use wxinvoice::Deployment;

const EVENTS: &str = "/core/r/api/weChat/component/events";

/// The platform's secret in (moto's) Secrets Manager, as the simulator's platform has it; an
/// instance of the gateway configured with it.
async fn platform(h: &Harness) -> Deployment {
    let arn = platform_secret(h).await;
    h.instance(&[("COMPONENT_SECRET_ARN", &arn)])
}

async fn platform_secret(h: &Harness) -> String {
    let o = h.sim.options().await.component;
    let secret = json!({
        "component_appid": o.appid,
        "component_appsecret": o.secret,
        "token": o.token,
        "encoding_aes_key": o.encoding_aes_key,
    });
    let name = format!("wxinvoice/{}/component", h.table);
    create_secret(&h.sdk, &name, &secret.to_string()).await
}

/// The push `query` + `body` sent to the events URL: (status, body text).
async fn deliver(app: &Deployment, query: &str, body: &str) -> (u16, String) {
    let call = Endpoint::GetToken
        .call()
        .path(EVENTS)
        .method("POST")
        .query(query)
        .body(body);
    let resp = call.send(app).await;
    let text = match resp.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        Body::Empty => String::new(),
        _ => String::new(),
    };
    (resp.status().as_u16(), text)
}

fn field<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_verify_ticket_push_is_kept_and_nothing_else_gets_in() {
    let h = Harness::new().await;
    let app = platform(&h).await;
    let store = app.store().clone();

    let first = h.sim.component_push(false).await;
    let (status, reply) = deliver(&app, field(&first, "query"), field(&first, "body")).await;
    assert_eq!((status, reply.as_str()), (200, "success"));
    let kept = store
        .verify_ticket()
        .await
        .unwrap()
        .expect("the ticket is kept");
    assert_eq!(kept.0, field(&first, "ticket"));

    // WeChat's retry of the same push: success, nothing changes.
    let again = deliver(&app, field(&first, "query"), field(&first, "body")).await;
    assert_eq!(again, (200, "success".to_string()));
    assert_eq!(store.verify_ticket().await.unwrap().unwrap(), kept);

    // A later push replaces it; the earlier one delivered late does not bring it back.
    // (WeChat pushes every 10 minutes; 200 s keeps the push within our 300-s window.)
    h.sim.advance_clock(200).await;
    let second = h.sim.component_push(false).await;
    assert_eq!(
        deliver(&app, field(&second, "query"), field(&second, "body"))
            .await
            .0,
        200
    );
    let newer = store.verify_ticket().await.unwrap().unwrap();
    assert_eq!(newer.0, field(&second, "ticket"));
    assert!(newer.1 > kept.1);
    assert_eq!(
        deliver(&app, field(&first, "query"), field(&first, "body"))
            .await
            .0,
        200
    );
    assert_eq!(
        store.verify_ticket().await.unwrap().unwrap(),
        newer,
        "the older stays out"
    );

    // Refused, and nothing changes: a signature that does not match, garbage, a missing or an
    // unknown parameter, another method, a deployment that is no platform. (A replay outside the
    // window: the next test.)
    let q = field(&second, "query");
    let forged = q.replace("msg_signature=", "msg_signature=0");
    let stale_app = h.instance(&[]); // no platform: 404
    let cases: Vec<(&str, String, String, u16)> = vec![
        (
            "forged signature",
            forged,
            field(&second, "body").into(),
            400,
        ),
        ("garbage body", q.into(), "<xml>nonsense</xml>".into(), 400),
        (
            "no msg_signature",
            q.split("&msg_signature").next().unwrap().into(),
            field(&second, "body").into(),
            400,
        ),
        (
            "unknown parameter",
            format!("{q}&x=1"),
            field(&second, "body").into(),
            400,
        ),
    ];
    for (name, query, body, want) in cases {
        let (status, text) = deliver(&app, &query, &body).await;
        assert_eq!(status, want, "{name}: {text}");
        assert!(
            !text.contains(&newer.0),
            "{name}: the ticket is never echoed"
        );
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        assert!(
            v["errcode"].as_i64().is_some_and(|c| c != 0),
            "{name}: {text}"
        );
    }
    let (status, _) = deliver(&stale_app, q, field(&second, "body")).await;
    assert_eq!(status, 404, "not a platform: no such endpoint");
    let get = Endpoint::GetToken
        .call()
        .path(EVENTS)
        .method("GET")
        .query(q);
    assert_eq!(get.send(&app).await.status().as_u16(), 405);
    assert_eq!(store.verify_ticket().await.unwrap().unwrap(), newer);
}

#[tokio::test]
async fn a_push_signed_outside_the_window_is_a_replay() {
    let h = Harness::new().await;
    let app = platform(&h).await;
    // WeChat signs with its own clock: an hour behind ours, the push is a captured old one.
    h.sim.advance_clock(-3600).await;
    let old = h.sim.component_push(false).await;
    let (status, text) = deliver(&app, field(&old, "query"), field(&old, "body")).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("replay"), "{text}");
    assert_eq!(
        app.store().verify_ticket().await.unwrap(),
        None,
        "nothing kept"
    );
}

#[tokio::test]
async fn the_platforms_token_waits_for_a_verify_ticket_then_is_fetched_once_and_kept() {
    use std::time::Duration;
    use wxinvoice::adapters::wechat::COMPONENT_TOKEN_PATH;
    use wxinvoice::domain::deadline::Deadline;
    use wxinvoice::token::Mode;
    let h = Harness::new().await;
    let arn = platform_secret(&h).await;
    let a = h.instance(&[("COMPONENT_SECRET_ARN", &arn)]);
    let b = h.instance(&[("COMPONENT_SECRET_ARN", &arn)]);
    assert!(
        h.instance(&[]).component_tokens().is_none(),
        "not a platform"
    );
    let deadline = || Deadline::after(Duration::from_secs(15));
    let tokens_a = a.component_tokens().unwrap();
    let tokens_b = b.component_tokens().unwrap();

    // No verify ticket yet: a clear error, nothing asked of WeChat.
    let err = tokens_a.get(Mode::Auto, &deadline()).await.unwrap_err();
    assert!(err.to_string().contains("component_verify_ticket"), "{err}");
    assert_eq!(h.calls(COMPONENT_TOKEN_PATH), 0);

    // WeChat pushes one; two instances ask at once: one fetch, under the lock.
    let push = h.sim.component_push(false).await;
    assert_eq!(
        deliver(&a, field(&push, "query"), field(&push, "body"))
            .await
            .0,
        200
    );
    let (da, db) = (deadline(), deadline());
    let (ra, rb) = tokio::join!(tokens_a.get(Mode::Auto, &da), tokens_b.get(Mode::Auto, &db));
    let token = |r: &wxinvoice::token::Served| r.access_token().unwrap().to_string();
    let (ta, tb) = (token(&ra.unwrap()), token(&rb.unwrap()));
    assert_eq!(ta, tb, "both serve the one token");
    assert_eq!(h.calls(COMPONENT_TOKEN_PATH), 1, "single flight");
    let component = h.sim.options().await.component.appid;
    assert_eq!(
        h.sim.issued_to(&component).await.as_deref(),
        Some(ta.as_str())
    );
    // Kept in the token table: a new instance serves it without asking WeChat.
    let c = h.instance(&[("COMPONENT_SECRET_ARN", &arn)]);
    let tc = c.component_tokens().unwrap();
    assert_eq!(token(&tc.get(Mode::Auto, &deadline()).await.unwrap()), ta);
    assert_eq!(h.calls(COMPONENT_TOKEN_PATH), 1);

    // The schedule rotates it once it falls due, and says so.
    h.advance(&a, 7200 - 3000).await;
    tokens_a.clock().advance(Duration::from_secs(7200 - 3000));
    let v = h.schedule_on(&a).await.unwrap();
    assert_eq!(v["component"]["source"], "refreshed", "{v}");
    assert_eq!(h.calls(COMPONENT_TOKEN_PATH), 2);

    // The ticket expired at WeChat (no push for 12 hours): WeChat's 61005 comes back as it is.
    h.sim.advance_clock(13 * 3600).await;
    tokens_a.clock().advance(Duration::from_secs(13 * 3600));
    let err = tokens_a.get(Mode::Auto, &deadline()).await.unwrap_err();
    assert!(err.to_string().contains("61005"), "{err}");
}

/// The platform ready (a verify ticket kept) and a pre-auth code for one customer.
async fn pre_auth_code(h: &Harness, app: &Deployment) -> String {
    use std::time::Duration;
    use wxinvoice::domain::deadline::Deadline;
    let push = h.sim.component_push(false).await;
    assert_eq!(
        deliver(app, field(&push, "query"), field(&push, "body"))
            .await
            .0,
        200
    );
    let platform = app.component_tokens().unwrap();
    let deadline = Deadline::after(Duration::from_secs(10));
    let served = platform
        .get(wxinvoice::token::Mode::Auto, &deadline)
        .await
        .unwrap();
    let token = served.access_token().unwrap();
    let component = h.sim.options().await.component.appid;
    let v = h
        .sim
        .post(
            &format!("/cgi-bin/component/api_create_preauthcode?component_access_token={token}"),
            &json!({"component_appid": component}),
        )
        .await;
    v["pre_auth_code"]
        .as_str()
        .expect("a pre-auth code")
        .to_string()
}

#[tokio::test]
async fn an_account_that_authorizes_the_platform_is_served_like_a_registered_one() {
    use wxinvoice::adapters::wechat::AUTHORIZER_TOKEN_PATH;
    let h = Harness::new().await;
    let app = platform(&h).await;
    let customer = "wxcu5t0mer0000001";
    // The customer follows the link and grants sets 1 and 26; WeChat pushes `authorized`.
    let code = pre_auth_code(&h, &app).await;
    let auth = h
        .sim
        .component_authorize(&code, customer, "mp", &[1, 26], false)
        .await;
    let (status, reply) = deliver(&app, field(&auth, "query"), field(&auth, "body")).await;
    assert_eq!((status, reply.as_str()), (200, "success"));
    let settings = h.store_app(customer).await;
    assert!(settings.enabled && settings.secret_name.is_empty());
    assert_eq!(
        settings.authorization.as_ref().unwrap().permissions,
        [1, 26]
    );
    let stored = app.store().load(&format!("app#{customer}")).await.unwrap();
    let refresh = stored
        .refresh_token
        .clone()
        .expect("the refresh token is kept");

    // getToken for it: its token (issued through the platform), a signature WeChat accepts.
    let (status, v) = h.get_token_on(&app, &format!("appid={customer}")).await;
    assert_eq!(status, 200, "{}", shown(&v));
    assert_eq!(
        h.sim.issued_to(customer).await.as_deref(),
        v["access_token"].as_str()
    );
    let page = v["url"].as_str().unwrap();
    assert!(
        h.wechat_accepts(page, &v).await,
        "WeChat accepts the authorizer's signature"
    );
    // Its invoices, with its token.
    let mut seed = seed_invoices();
    seed[1]["app"] = json!(customer);
    h.sim.set_invoices(&seed).await;
    let token = v["access_token"].as_str().unwrap();
    let invoice = json!({"card_id": SEED_CARD, "encrypt_code": CODE2});
    let query = Endpoint::GetInvoiceInfo
        .call()
        .query(&format!("appid={customer}&token={token}"))
        .body(&invoice);
    let (_, q) = app_answer(&app, query).await;
    assert_eq!(q["errcode"], 0, "{q}");

    // Two hours on: refreshed through the platform with the refresh token (unchanged).
    let refreshes = h.calls(AUTHORIZER_TOKEN_PATH);
    h.advance(&app, 7200).await;
    app.component_tokens()
        .unwrap()
        .clock()
        .advance(std::time::Duration::from_secs(7200));
    let renewed = app.registered_runtime(settings.clone(), &stored);
    // No AppSecret: what it seals (archive work) is keyed on the platform's component secret.
    let deadline = wxinvoice::domain::deadline::Deadline::after(std::time::Duration::from_secs(5));
    let keyed = renewed.wechat.app_secret(&deadline).await.unwrap();
    assert_eq!(keyed.expose(), h.sim.options().await.component.secret);
    renewed
        .tokens
        .clock()
        .advance(std::time::Duration::from_secs(7200));
    let push = h.sim.component_push(false).await; // the platform's ticket, 2 h on
    deliver(&app, field(&push, "query"), field(&push, "body")).await;
    let (status, v2) = h.get_token_on(&app, &format!("appid={customer}")).await;
    assert_eq!(status, 200, "{}", shown(&v2));
    assert!(v2["access_token"] != v["access_token"], "a new token");
    assert_eq!(h.calls(AUTHORIZER_TOKEN_PATH), refreshes + 1);
    let after = app.store().load(&format!("app#{customer}")).await.unwrap();
    assert_eq!(after.refresh_token.as_ref(), Some(&refresh));

    // An account that leaves out set 26 is refused, and WeChat told `success` (nothing to retry).
    let code = pre_auth_code(&h, &app).await;
    let other = "wxn0invo1ce000001";
    let auth = h
        .sim
        .component_authorize(&code, other, "mp", &[1, 2], false)
        .await;
    assert_eq!(
        deliver(&app, field(&auth, "query"), field(&auth, "body"))
            .await
            .0,
        200
    );
    let none = app.store().load(&format!("app#{other}")).await.unwrap();
    assert!(none.settings.is_none(), "not registered");

    // The customer withdraws: the app is disabled, its trail kept; the push again changes nothing.
    let gone = h.sim.component_unauthorize(customer, false).await;
    assert_eq!(
        deliver(&app, field(&gone, "query"), field(&gone, "body"))
            .await
            .0,
        200
    );
    let settings = h.store_app(customer).await;
    assert!(!settings.enabled && settings.authorization.is_some());
    let fresh = h.instance(&[]);
    let (status, v) = h.get_token_on(&fresh, &format!("appid={customer}")).await;
    assert_eq!((status, v["errcode"].as_i64()), (403, Some(40013)), "{v}");
    assert_eq!(
        deliver(&app, field(&gone, "query"), field(&gone, "body"))
            .await
            .0,
        200
    );
    assert!(!h.store_app(customer).await.enabled);
}

async fn app_answer(app: &Deployment, call: Call) -> (u16, Value) {
    call.answer(app).await
}

#[tokio::test]
async fn the_vendors_link_and_the_customers_return_register_the_account() {
    let h = Harness::new().await;
    let app = platform(&h).await;
    let push = h.sim.component_push(false).await;
    deliver(&app, field(&push, "query"), field(&push, "body")).await;
    let get = |path: &str, query: String| {
        let call = Endpoint::GetToken.call().path(path).query(&query);
        call.answer(&app)
    };
    let authorize = "/core/r/api/weChat/component/authorize";
    let back = "https://expense.example.com/wx/authorized?tenant=7";
    let (status, v) = get(
        authorize,
        format!("redirect_uri={}&auth_type=1", encode_uri_component(back)),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let pc = url::Url::parse(v["pc_url"].as_str().unwrap()).unwrap();
    assert_eq!(pc.host_str(), Some("mp.weixin.qq.com"));
    let param = |u: &url::Url, k: &str| {
        u.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param(&pc, "redirect_uri").as_deref(), Some(back));
    assert_eq!(param(&pc, "auth_type").as_deref(), Some("1"));
    let mobile = url::Url::parse(v["mobile_url"].as_str().unwrap()).unwrap();
    assert_eq!(mobile.fragment(), Some("wechat_redirect"));
    assert_eq!(param(&mobile, "pre_auth_code"), param(&pc, "pre_auth_code"));
    // Refused: another site to return to, a bad auth_type, no redirect at all.
    for (query, name) in [
        (
            format!(
                "redirect_uri={}",
                encode_uri_component("https://evil.example.com/x")
            ),
            "another origin",
        ),
        (
            format!("redirect_uri={}&auth_type=6", encode_uri_component(back)),
            "auth_type 6",
        ),
        (String::new(), "no redirect_uri"),
    ] {
        let (status, v) = get(authorize, query).await;
        assert_eq!(status, 400, "{name}: {v}");
    }

    // The customer confirms on WeChat's page and is sent back with the code.
    let customer = "wxcu5t0mer0000002";
    let pre = param(&pc, "pre_auth_code").unwrap();
    let auth = h
        .sim
        .component_authorize(&pre, customer, "mini", &[18, 26], false)
        .await;
    let code = field(&auth, "auth_code");
    let (status, v) = get(
        "/core/r/api/weChat/component/authorized",
        format!("auth_code={}", encode_uri_component(code)),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["appid"].as_str(), v["kind"].as_str()),
        (Some(customer), Some("mini"))
    );
    assert_eq!(
        h.store_app(customer).await.kind,
        wxinvoice::domain::apps::Kind::Mini
    );
    // The push of the same authorization comes after: its code is spent, nothing changes.
    let before = app.store().load(&format!("app#{customer}")).await.unwrap();
    assert_eq!(
        deliver(&app, field(&auth, "query"), field(&auth, "body"))
            .await
            .0,
        200
    );
    let after = app.store().load(&format!("app#{customer}")).await.unwrap();
    assert_eq!(after.refresh_token, before.refresh_token);
    assert_eq!(after.version, before.version);
    // A deployment that is not a platform has no such pages.
    let plain = h.instance(&[]);
    let call = Endpoint::GetToken
        .call()
        .path(authorize)
        .query(&format!("redirect_uri={}", encode_uri_component(back)));
    assert_eq!(call.answer(&plain).await.0, 404);
}

/// `customer` authorizes the platform (sets 1 and 26) through `app`'s events URL.
async fn authorized_account(h: &Harness, app: &Deployment, customer: &str) {
    let code = pre_auth_code(h, app).await;
    let auth = h
        .sim
        .component_authorize(&code, customer, "mp", &[1, 26], false)
        .await;
    let (status, reply) = deliver(app, field(&auth, "query"), field(&auth, "body")).await;
    assert_eq!((status, reply.as_str()), (200, "success"));
}

#[tokio::test]
async fn the_refresh_token_survives_a_crash_at_every_step() {
    use std::time::Duration;
    use wxinvoice::adapters::store::faults::{Fault, Op};
    use wxinvoice::adapters::wechat::AUTHORIZER_TOKEN_PATH;
    use wxinvoice::domain::deadline::Deadline;
    use wxinvoice::token::Mode;
    let h = Harness::new().await;
    let arn = platform_secret(&h).await;
    let app = h.instance(&[("COMPONENT_SECRET_ARN", &arn)]);
    let customer = "wxcu5t0mer0000003";
    authorized_account(&h, &app, customer).await;
    // The worst WeChat: a new refresh token on every refresh, the old one refused at once.
    let mut component = h.sim.options().await.component;
    component.rotate_refresh_token = true;
    h.sim.set_options(json!({ "component": component })).await;
    let key = format!("app#{customer}");
    #[rustfmt::skip]
    let matrix: [(&str, Op, Fault); 5] = [
        ("the fetch mark is not written (nothing asked of WeChat)", Op::MarkFetch, Fault::Fail),
        ("WeChat answered; the publish fails (the new refresh token lost with it)", Op::Commit, Fault::Fail),
        ("the publish lands; its answer is lost, the write retried", Op::Commit, Fault::LostResponse),
        ("the publish lands; the caller sees a failure", Op::Commit, Fault::FailAfterWrite),
        ("the lock's release fails after a failed publish", Op::Release, Fault::Fail),
    ];
    // Every instance's clock follows WeChat's (each iteration moves both a minute on).
    let mut elapsed = 0;
    for (step, op, fault) in matrix {
        // A short lease: a publish that keeps failing is given up sooner.
        let (faulty, store) = h.faulty_instance(&[
            ("COMPONENT_SECRET_ARN", &arn),
            ("REFRESH_LEASE_MS", "2000"),
            ("WECHAT_TIMEOUT_MS", "600"),
        ]);
        let state = faulty.store().load(&key).await.unwrap();
        let settings = *state.settings.clone().unwrap();
        let account = faulty.registered_runtime(settings.clone(), &state);
        account.tokens.clock().advance(Duration::from_secs(elapsed));
        // Until cleared: the commit's own retries meet it too.
        store.inject(op, fault, None);
        if op == Op::Release {
            store.inject(Op::Commit, Fault::Fail, None);
        }
        let deadline = Deadline::after(Duration::from_secs(15));
        let calls = h.calls(AUTHORIZER_TOKEN_PATH);
        let _ = account.tokens.get(Mode::Rotate, &deadline).await; // may fail: that is the step
        if op != Op::MarkFetch {
            assert_eq!(
                h.calls(AUTHORIZER_TOKEN_PATH),
                calls + 1,
                "{step}: WeChat was asked"
            );
        }
        store.clear();
        // Whatever happened, the account's token keeps being refreshed: another instance (a
        // later invocation) rotates it, with a refresh token WeChat accepts.
        h.advance(&app, 61).await; // past the cooldown and a lease
        elapsed += 61;
        let clean = h.instance(&[("COMPONENT_SECRET_ARN", &arn)]);
        let state = clean.store().load(&key).await.unwrap();
        let runtime = clean.registered_runtime(settings.clone(), &state);
        runtime.tokens.clock().advance(Duration::from_secs(elapsed));
        let deadline = Deadline::after(Duration::from_secs(15));
        let served = runtime.tokens.get(Mode::Rotate, &deadline).await;
        let served = served.unwrap_or_else(|e| panic!("{step}: the account is lost: {e}"));
        let token = served.access_token().unwrap().to_string();
        assert_eq!(
            h.sim.issued_to(customer).await.as_deref(),
            Some(token.as_str()),
            "{step}"
        );
        let kept = clean.store().load(&key).await.unwrap();
        assert!(
            kept.refresh_token.is_some(),
            "{step}: a refresh token is kept"
        );
    }

    // Registration itself: the account's settings written, the publish of its first token and
    // refresh token lost (the code is spent: WeChat's retried push cannot bring them back).
    let other = "wxcu5t0mer0000004";
    let code = pre_auth_code(&h, &app).await;
    let auth = h
        .sim
        .component_authorize(&code, other, "mp", &[1, 26], false)
        .await;
    let (faulty, store) = h.faulty_instance(&[
        ("COMPONENT_SECRET_ARN", &arn),
        ("REFRESH_LEASE_MS", "2000"),
        ("WECHAT_TIMEOUT_MS", "600"),
    ]);
    faulty.tokens.clock().advance(Duration::from_secs(elapsed));
    store.inject(Op::Commit, Fault::Fail, None);
    let (status, _) = deliver(&faulty, field(&auth, "query"), field(&auth, "body")).await;
    assert_ne!(status, 200, "the push is not acknowledged");
    store.clear();
    let registered = app.store().load(&format!("app#{other}")).await.unwrap();
    assert!(registered.settings.is_some() && registered.refresh_token.is_none());
    // The first request for it gets the refresh token back from WeChat and is served.
    let clean = h.instance(&[("COMPONENT_SECRET_ARN", &arn)]);
    let (status, v) = h.get_token_on(&clean, &format!("appid={other}")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        h.sim.issued_to(other).await.as_deref(),
        v["access_token"].as_str()
    );
    let kept = app.store().load(&format!("app#{other}")).await.unwrap();
    assert!(
        kept.refresh_token.is_some(),
        "the refresh token is kept now"
    );
}
