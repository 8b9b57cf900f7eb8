//! A third-party platform's authorization-event URL: WeChat's pushes (the simulator's, encrypted
//! with its own implementation of WeChat's crypto) checked, opened and acted on; bad signatures,
//! replays and garbage refused without a change.

use integration_tests::*;
use lambda_http::Body;
use serde_json::{json, Value};
use wxinvoice::Deployment;

const EVENTS: &str = "/core/r/api/weChat/component/events";

/// The platform's secret in (moto's) Secrets Manager, as the simulator's platform has it.
async fn platform(h: &Harness) -> Deployment {
    let o = h.sim.options().await.component;
    let secret = json!({
        "component_appid": o.appid,
        "component_appsecret": o.secret,
        "token": o.token,
        "encoding_aes_key": o.encoding_aes_key,
    });
    let name = format!("wxinvoice/{}/component", h.table);
    let arn = create_secret(&h.sdk, &name, &secret.to_string()).await;
    h.instance(&[("COMPONENT_SECRET_ARN", &arn)])
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
