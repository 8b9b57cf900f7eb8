//! The simulator over real HTTP: token rules, the invoice status machine, faults and controls.

use serde_json::{json, Value};
use wechat_sim::{AgentSignature, CardSign, Client, JsapiSignature, Running, Sim};

const SEED_CARD: &str = "pIKi3wcA2zJYhWaAUWmf3aMNd_r0";
const SEED_CODE: &str = "O/mPnGTpBu22a1szmK2ogzhFPBh9eYzv2p70L8yzyykBoTdEGnOi8TSuvAUzX8XrOHONZv9BQ5sPsgyjLQjJMCy433SEqFIQys8K/CgLWKRMh42topKL2kjiQeB0IIwo";
const OPENID: &str = "or6qc1XNFyAhiatjzyd7aboPkLz8";
const APPID: &str = "wxa185587d4fc35145";
const SECRET: &str = "sim-appsecret";

struct T {
    sim: Running,
    wx: Client,
}

impl T {
    async fn new() -> T {
        let sim = Sim::start_default().await;
        let wx = sim.client();
        T { sim, wx }
    }
    async fn get(&self, path: &str) -> Value {
        self.wx.get(path).await
    }
    async fn post(&self, path: &str, body: Value) -> Value {
        self.wx.post(path, &body).await
    }
    async fn token(&self) -> String {
        let v = self.wx.token(APPID, SECRET).await;
        assert!(v.get("errcode").is_none(), "success has no errcode: {v}");
        assert_eq!(v["expires_in"], 7200);
        v["access_token"].as_str().unwrap().to_string()
    }
    async fn info(&self, token: &str, card_id: &str, code: &str) -> Value {
        self.post(
            &format!("/card/invoice/reimburse/getinvoiceinfo?access_token={token}"),
            json!({"card_id": card_id, "encrypt_code": code}),
        )
        .await
    }
    async fn batch_status(
        &self,
        token: &str,
        openid: &str,
        status: &str,
        list: &[(&str, &str)],
    ) -> Value {
        let invoice_list: Vec<Value> = list
            .iter()
            .map(|(c, e)| json!({"card_id": c, "encrypt_code": e}))
            .collect();
        self.post(
            &format!("/card/invoice/reimburse/updatestatusbatch?access_token={token}"),
            json!({"openid": openid, "reimburse_status": status, "invoice_list": invoice_list}),
        )
        .await
    }
    async fn status_of(&self, token: &str, code: &str) -> String {
        let v = self.info(token, SEED_CARD, code).await;
        v["user_info"]["reimburse_status"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}"))
            .to_string()
    }
}

fn errcode(v: &Value) -> i64 {
    v["errcode"]
        .as_i64()
        .unwrap_or_else(|| panic!("no errcode: {v}"))
}

#[tokio::test]
async fn token_rotation_grace_expiry_and_errors() {
    let t = T::new().await;
    let first = t.token().await;
    let second = t.token().await;
    assert_ne!(first, second, "a new token per call");
    let ticket = "/cgi-bin/ticket/getticket?type=jsapi&access_token=";
    // Both work during the grace period.
    assert_eq!(errcode(&t.get(&format!("{ticket}{first}")).await), 0);
    t.wx.advance_clock(299).await;
    assert_eq!(errcode(&t.get(&format!("{ticket}{first}")).await), 0);
    t.wx.advance_clock(1).await;
    let v = t.get(&format!("{ticket}{first}")).await;
    assert_eq!(errcode(&v), 40001);
    assert!(v["errmsg"].as_str().unwrap().contains(" rid: "), "{v}");
    assert_eq!(errcode(&t.get(&format!("{ticket}{second}")).await), 0);
    // Expiry.
    t.wx.advance_clock(7200).await;
    assert_eq!(errcode(&t.get(&format!("{ticket}{second}")).await), 42001);
    // Missing, unknown.
    assert_eq!(
        errcode(&t.get("/cgi-bin/ticket/getticket?type=jsapi").await),
        41001
    );
    assert_eq!(errcode(&t.get(&format!("{ticket}garbage")).await), 40001);
    // Wrong credentials.
    let bad = |q: &str| format!("/cgi-bin/token?grant_type=client_credential&{q}");
    assert_eq!(
        errcode(&t.get(&bad("appid=wxnope&secret=sim-appsecret")).await),
        40013
    );
    assert_eq!(
        errcode(&t.get(&bad("appid=wxa185587d4fc35145&secret=nope")).await),
        40125
    );
    assert_eq!(
        errcode(
            &t.get("/cgi-bin/token?appid=wxa185587d4fc35145&secret=sim-appsecret")
                .await
        ),
        40002
    );
}

#[tokio::test]
async fn daily_quota_gives_45009() {
    let t = T::new().await;
    t.wx.set_options(json!({"daily_token_quota": 3})).await;
    for _ in 0..3 {
        t.token().await;
    }
    let v = t.wx.token(APPID, SECRET).await;
    assert_eq!(errcode(&v), 45009);
    t.wx.advance_clock(86_400).await;
    t.token().await;
}

#[tokio::test]
async fn stable_token_is_idempotent_and_isolated() {
    let t = T::new().await;
    let a = t.wx.stable_token(APPID, SECRET, false).await;
    let b = t.wx.stable_token(APPID, SECRET, false).await;
    assert_eq!(a["access_token"], b["access_token"]);
    // A classic token does not invalidate the stable one.
    t.token().await;
    t.token().await;
    t.wx.advance_clock(301).await;
    let stable = a["access_token"].as_str().unwrap();
    assert_eq!(
        errcode(
            &t.get(&format!(
                "/cgi-bin/ticket/getticket?type=jsapi&access_token={stable}"
            ))
            .await
        ),
        0
    );
    // Force mode rotates; a second force within 30 s does not.
    let c = t.wx.stable_token(APPID, SECRET, true).await;
    assert_ne!(c["access_token"], a["access_token"]);
    let d = t.wx.stable_token(APPID, SECRET, true).await;
    assert_eq!(c["access_token"], d["access_token"]);
    // Rotation in the last 5 minutes.
    t.wx.advance_clock(7000).await;
    let e = t.wx.stable_token(APPID, SECRET, false).await;
    assert_ne!(e["access_token"], c["access_token"]);
}

#[tokio::test]
async fn invoice_queries_return_seeded_cards() {
    let t = T::new().await;
    let token = t.token().await;
    let v = t.info(&token, SEED_CARD, SEED_CODE).await;
    assert_eq!(errcode(&v), 0);
    assert_eq!(v["user_info"]["fee"], 4100);
    assert_eq!(v["openid"], OPENID);
    assert_eq!(errcode(&t.info(&token, "nope", SEED_CODE).await), 40073);
    let v = t
        .post(
            &format!("/card/invoice/reimburse/getinvoicebatch?access_token={token}"),
            json!({"item_list": [
                {"card_id": SEED_CARD, "encrypt_code": SEED_CODE},
                {"card_id": SEED_CARD, "encrypt_code": "SIMencryptCode02sameCardIdAsTheSpecExample+/="},
                {"card_id": SEED_CARD, "encrypt_code": "unknown"}
            ]}),
        )
        .await;
    assert_eq!(errcode(&v), 0);
    let items = v["item_list"].as_array().unwrap();
    assert_eq!(items.len(), 2, "unknown invoices are left out");
    assert_eq!(items[1]["user_info"]["billing_no"], "031001900112");
    // Malformed and missing fields.
    let path = format!("/card/invoice/reimburse/getinvoicebatch?access_token={token}");
    let raw = t.wx.send_text(&path, "{\"item_list\":[};").await;
    assert_eq!(errcode(&raw.json().await.unwrap()), 72031);
    assert_eq!(errcode(&t.post(&path, json!({})).await), 40101);
    assert_eq!(
        errcode(&t.post(&path, json!({"item_list": [{"cardId": "x"}]})).await),
        72031
    );
}

#[tokio::test]
async fn status_machine_lock_unlock_close() {
    let t = T::new().await;
    let token = t.token().await;
    let code2 = "SIMencryptCode02sameCardIdAsTheSpecExample+/=";
    // INIT -> CLOSURE is refused: lock first.
    let v = t
        .batch_status(
            &token,
            OPENID,
            "INVOICE_REIMBURSE_CLOSURE",
            &[(SEED_CARD, SEED_CODE)],
        )
        .await;
    assert_eq!(errcode(&v), 72039);
    assert_eq!(
        errcode(
            &t.batch_status(
                &token,
                OPENID,
                "INVOICE_REIMBURSE_LOCK",
                &[(SEED_CARD, SEED_CODE), (SEED_CARD, code2)]
            )
            .await
        ),
        0
    );
    assert_eq!(t.status_of(&token, code2).await, "INVOICE_REIMBURSE_LOCK");
    assert_eq!(
        errcode(
            &t.batch_status(
                &token,
                OPENID,
                "INVOICE_REIMBURSE_INIT",
                &[(SEED_CARD, code2)]
            )
            .await
        ),
        0
    );
    assert_eq!(t.status_of(&token, code2).await, "INVOICE_REIMBURSE_INIT");
    assert_eq!(
        errcode(
            &t.batch_status(
                &token,
                OPENID,
                "INVOICE_REIMBURSE_CLOSURE",
                &[(SEED_CARD, SEED_CODE)]
            )
            .await
        ),
        0
    );
    // CLOSURE is final; CANCEL cannot be set by a reimburser.
    let v = t
        .batch_status(
            &token,
            OPENID,
            "INVOICE_REIMBURSE_INIT",
            &[(SEED_CARD, SEED_CODE)],
        )
        .await;
    assert_eq!(errcode(&v), 72024);
    let v = t
        .batch_status(
            &token,
            OPENID,
            "INVOICE_REIMBURSE_CANCEL",
            &[(SEED_CARD, code2)],
        )
        .await;
    assert_eq!(errcode(&v), 72024);
}

#[tokio::test]
async fn batch_update_is_all_or_nothing() {
    let t = T::new().await;
    let token = t.token().await;
    let code2 = "SIMencryptCode02sameCardIdAsTheSpecExample+/=";
    // One invoice locked by another app: 72023, and the other one stays INIT.
    let v = t
        .batch_status(
            &token,
            OPENID,
            "INVOICE_REIMBURSE_LOCK",
            &[
                (SEED_CARD, code2),
                (SEED_CARD, "SIMencryptCodeLockedByOther01+/="),
            ],
        )
        .await;
    assert_eq!(errcode(&v), 72023);
    assert_eq!(t.status_of(&token, code2).await, "INVOICE_REIMBURSE_INIT");
    // One invoice of another user: 72037.
    let v = t
        .batch_status(
            &token,
            OPENID,
            "INVOICE_REIMBURSE_LOCK",
            &[
                (SEED_CARD, code2),
                (SEED_CARD, "SIMencryptCodeOtherUser01+/="),
            ],
        )
        .await;
    assert_eq!(errcode(&v), 72037);
    assert_eq!(t.status_of(&token, code2).await, "INVOICE_REIMBURSE_INIT");
}

#[tokio::test]
async fn faults_stats_and_reset() {
    let t = T::new().await;
    let token_path =
        "/cgi-bin/token?grant_type=client_credential&appid=wxa185587d4fc35145&secret=sim-appsecret";
    t.wx.fault(
        json!({"path": "/cgi-bin/token", "errcode": -1, "errmsg": "system error", "times": 2}),
    )
    .await;
    assert_eq!(errcode(&t.get(token_path).await), -1);
    assert_eq!(errcode(&t.get(token_path).await), -1);
    t.token().await;
    t.wx.fault(json!({"path": "/cgi-bin/token", "http_status": 503, "times": 1}))
        .await;
    assert_eq!(t.wx.send_get(token_path).await.unwrap().status(), 503);
    t.wx.fault(json!({"path": "/cgi-bin/token", "drop": true, "times": 1}))
        .await;
    assert!(
        t.wx.send_get(token_path).await.is_err(),
        "connection dropped"
    );
    t.wx.fault(json!({"path": "/cgi-bin/token", "latency_ms": 300}))
        .await;
    let started = std::time::Instant::now();
    t.token().await;
    assert!(started.elapsed().as_millis() >= 300);
    t.wx.clear_faults().await;
    let stats = t.wx.stats().await;
    assert_eq!(stats.calls["/cgi-bin/token"], 6);
    assert_eq!(t.sim.sim.calls("/cgi-bin/token"), 6);
    t.wx.reset().await;
    assert_eq!(t.wx.stats().await.total, 0);
    // Bad control input is a 400, not a crash.
    let r = t.wx.send_text("/__sim/faults", "{").await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn wecom_paths() {
    let t = T::new().await;
    let v =
        t.wx.work_token("ww5im0c0rp00000001", "sim-corpsecret")
            .await;
    assert_eq!(errcode(&v), 0, "WeCom success carries errcode 0");
    let token = v["access_token"].as_str().unwrap().to_string();
    let again =
        t.wx.work_token("ww5im0c0rp00000001", "sim-corpsecret")
            .await;
    assert_eq!(
        again["access_token"], v["access_token"],
        "idempotent within validity"
    );
    assert_eq!(
        errcode(
            &t.get(&format!("/cgi-bin/get_jsapi_ticket?access_token={token}"))
                .await
        ),
        0
    );
    assert_eq!(
        errcode(
            &t.get(&format!(
                "/cgi-bin/ticket/get?type=wx_card&access_token={token}"
            ))
            .await
        ),
        0
    );
    assert_eq!(
        errcode(
            &t.get(&format!(
                "/cgi-bin/ticket/get?type=nope&access_token={token}"
            ))
            .await
        ),
        91040
    );
    let v = t
        .post(
            &format!("/cgi-bin/card/invoice/reimburse/getinvoiceinfobatch?access_token={token}"),
            json!({"item_list": [{"card_id": SEED_CARD, "encrypt_code": SEED_CODE}]}),
        )
        .await;
    assert_eq!(v["item_list"][0]["user_info"]["fee"], 4100);
    // An OA token is not a WeCom token.
    let oa = t.token().await;
    assert_eq!(
        errcode(
            &t.get(&format!("/cgi-bin/get_jsapi_ticket?access_token={oa}"))
                .await
        ),
        40014
    );
}

fn sha1_hex(s: &str) -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `wx.config` for `url`, signed with `signature` (nonce `n0nce`, timestamp 1700000000).
fn signed<'a>(url: &'a str, signature: &'a str) -> JsapiSignature<'a> {
    JsapiSignature {
        url,
        noncestr: "n0nce",
        timestamp: 1_700_000_000,
        signature,
    }
}

/// `chooseInvoice` for `appid` with `card_sign` (same nonce and timestamp).
fn chosen<'a>(card_sign: &'a str, appid: &'a str) -> CardSign<'a> {
    CardSign {
        appid,
        timestamp: 1_700_000_000,
        nonce_str: "n0nce",
        sign_type: "SHA1",
        card_sign,
    }
}

#[tokio::test]
async fn verifies_wx_config_signatures_and_card_signs() {
    let t = T::new().await;
    let token = t.token().await;
    let jsapi = t
        .get(&format!(
            "/cgi-bin/ticket/getticket?type=jsapi&access_token={token}"
        ))
        .await;
    let jsapi = jsapi["ticket"].as_str().unwrap();
    let url = "https://expense.example.com/a?b=c";
    let sig = sha1_hex(&format!(
        "jsapi_ticket={jsapi}&noncestr=n0nce&timestamp=1700000000&url={url}"
    ));
    assert!(t.wx.verify_jsapi(&signed(url, &sig)).await);
    // The client drops the fragment before checking.
    let with_fragment = format!("{url}#/list");
    assert!(t.wx.verify_jsapi(&signed(&with_fragment, &sig)).await);
    let elsewhere = signed("https://other.example.com/", &sig);
    assert!(!t.wx.verify_jsapi(&elsewhere).await);

    let card = t
        .get(&format!(
            "/cgi-bin/ticket/getticket?type=wx_card&access_token={token}"
        ))
        .await;
    let card = card["ticket"].as_str().unwrap();
    let mut values = [card, "wxa185587d4fc35145", "1700000000", "n0nce", "INVOICE"];
    values.sort_unstable();
    let card_sign = sha1_hex(&values.concat());
    assert!(t.wx.verify_card_sign(&chosen(&card_sign, APPID)).await);
    assert!(!t.wx.verify_card_sign(&chosen(&card_sign, "wxother")).await);
    // The jsapi ticket does not sign chooseInvoice.
    let mut wrong = [
        jsapi,
        "wxa185587d4fc35145",
        "1700000000",
        "n0nce",
        "INVOICE",
    ];
    wrong.sort_unstable();
    let wrong = sha1_hex(&wrong.concat());
    assert!(!t.wx.verify_card_sign(&chosen(&wrong, APPID)).await);
}

#[tokio::test]
async fn verifies_a_wecom_agents_agent_config_signature() {
    let t = T::new().await;
    let corp = "ww5im0c0rp00000001";
    let token = t.wx.work_token(corp, "sim-corpsecret").await;
    let token = token["access_token"].as_str().unwrap();
    let mut tickets = Vec::new();
    for kind in ["agent_config", "wx_card"] {
        let v = t
            .get(&format!(
                "/cgi-bin/ticket/get?type={kind}&access_token={token}"
            ))
            .await;
        tickets.push(v["ticket"].as_str().unwrap().to_string());
    }
    let (agent, card) = (&tickets[0], &tickets[1]);
    let url = "https://expense.example.com/wecom?x=1";
    let sign = |ticket: &str| {
        sha1_hex(&format!(
            "jsapi_ticket={ticket}&noncestr=n0nce&timestamp=1700000000&url={url}"
        ))
    };
    let signed_for = |agentid, signature| AgentSignature {
        corpid: corp,
        agentid,
        url,
        noncestr: "n0nce",
        timestamp: 1_700_000_000,
        signature,
    };
    let (good, with_card) = (sign(agent), sign(card));
    let wx = &t.wx;
    assert!(
        wx.verify_agent_config(&signed_for("1000001", &good)).await,
        "the corp's own agent"
    );
    assert!(
        !wx.verify_agent_config(&signed_for("1000009", &good)).await,
        "another agent"
    );
    assert!(
        !wx.verify_agent_config(&signed_for("1000001", &with_card))
            .await,
        "the wx_card ticket does not sign agentConfig"
    );
    // Nor does the agent ticket sign wx.config.
    assert!(!t.wx.verify_jsapi(&signed(url, &sign(agent))).await);
}

#[tokio::test]
async fn options_change_inferred_behaviours() {
    let t = T::new().await;
    let token = t.token().await;
    // Same status again: ok by default, 72024 when configured.
    let init = t
        .batch_status(
            &token,
            OPENID,
            "INVOICE_REIMBURSE_INIT",
            &[(SEED_CARD, SEED_CODE)],
        )
        .await;
    assert_eq!(errcode(&init), 0);
    t.wx.set_options(json!({"same_status_ok": false, "closed_errcode": 72061}))
        .await;
    let init = t
        .batch_status(
            &token,
            OPENID,
            "INVOICE_REIMBURSE_INIT",
            &[(SEED_CARD, SEED_CODE)],
        )
        .await;
    assert_eq!(errcode(&init), 72024);
    let closed = t
        .batch_status(
            &token,
            OPENID,
            "INVOICE_REIMBURSE_LOCK",
            &[(SEED_CARD, "SIMencryptCodeClosed01+/=")],
        )
        .await;
    assert_eq!(errcode(&closed), 72061);
    // Unknown options are refused.
    let r = t.wx.send_json("/__sim/options", &json!({"nope": 1})).await;
    assert_eq!(r.status(), 400);
    // The API IP allow-list.
    t.wx.set_options(json!({"ip_whitelist": ["10.1.2.3"]}))
        .await;
    let v = t.wx.token(APPID, SECRET).await;
    assert_eq!(errcode(&v), 40164);
    assert!(
        v["errmsg"]
            .as_str()
            .unwrap()
            .starts_with("invalid ip 127.0.0.1"),
        "{v}"
    );
    t.wx.set_options(json!({"ip_whitelist": ["127.0.0.1"]}))
        .await;
    t.token().await;
}

#[tokio::test]
async fn invoices_can_be_seeded() {
    let t = T::new().await;
    let token = t.token().await;
    let seed = json!([{"encrypt_code": "E1", "card": {"card_id": "C1", "openid": "O1",
        "user_info": {"fee": 1, "reimburse_status": "INVOICE_REIMBURSE_INIT"}}}]);
    assert_eq!(t.wx.set_invoices(&seed).await, 1);
    let v = t.info(&token, "C1", "E1").await;
    assert_eq!((errcode(&v), v["user_info"]["fee"].as_i64()), (0, Some(1)));
    assert_eq!(
        errcode(&t.info(&token, SEED_CARD, SEED_CODE).await),
        40073,
        "replaced, not added"
    );
    assert_eq!(errcode(&t.info(&token, "C1", "E2").await), 40056);
    let r =
        t.wx.send_json("/__sim/invoices", &json!([{"encrypt_code": "E"}]))
            .await;
    assert_eq!(r.status(), 400);
    t.wx.reset().await;
    assert_eq!(
        errcode(&t.info(&t.token().await, SEED_CARD, SEED_CODE).await),
        0
    );
}

#[tokio::test]
async fn a_platform_gets_its_token_only_with_a_live_verify_ticket() {
    let t = T::new().await;
    let o = t.wx.options().await.component;
    let ask = |appid: &str, secret: &str, ticket: &str| json!({"component_appid": appid, "component_appsecret": secret, "component_verify_ticket": ticket});
    let path = "/cgi-bin/component/api_component_token";
    let v = t
        .post(path, ask(&o.appid, &o.secret, "ticket@@@never-pushed"))
        .await;
    assert_eq!(errcode(&v), 61006);
    let pushed = t.wx.component_push(false).await;
    let ticket = pushed["ticket"].as_str().unwrap();
    assert!(pushed["body"].as_str().unwrap().contains("<Encrypt>"));
    assert!(pushed["query"].as_str().unwrap().contains("msg_signature="));
    assert_eq!(
        errcode(&t.post(path, ask("wxnotaplatform", &o.secret, ticket)).await),
        61011
    );
    assert_eq!(
        errcode(&t.post(path, ask(&o.appid, "wrong", ticket)).await),
        40125
    );
    let v = t.post(path, ask(&o.appid, &o.secret, ticket)).await;
    let token = v["component_access_token"].as_str().unwrap().to_string();
    assert_eq!(v["expires_in"], 7200);
    // A platform's token is not an account's.
    let q = format!("/cgi-bin/ticket/getticket?type=jsapi&access_token={token}");
    assert_ne!(errcode(&t.get(&q).await), 0);
    // Twelve hours after the push, the ticket is no longer accepted.
    t.wx.advance_clock(12 * 3600).await;
    assert_eq!(
        errcode(&t.post(path, ask(&o.appid, &o.secret, ticket)).await),
        61005
    );
}

#[tokio::test]
async fn a_customer_authorizes_the_platform_and_can_withdraw() {
    let t = T::new().await;
    let o = t.wx.options().await.component;
    let ticket = t.wx.component_push(false).await["ticket"]
        .as_str()
        .unwrap()
        .to_string();
    let v = t
        .post(
            "/cgi-bin/component/api_component_token",
            json!({"component_appid": o.appid, "component_appsecret": o.secret, "component_verify_ticket": ticket}),
        )
        .await;
    let ct = v["component_access_token"].as_str().unwrap().to_string();
    let call = |api: &str| format!("/cgi-bin/component/{api}?component_access_token={ct}");
    let me = json!({"component_appid": o.appid});
    let pre = t.post(&call("api_create_preauthcode"), me.clone()).await;
    let pre = pre["pre_auth_code"].as_str().unwrap().to_string();
    assert!(pre.starts_with("preauthcode@@@"));
    // The customer scans and confirms; the page cannot be used twice.
    let customer = "wxcu5t0mer0000001";
    let auth =
        t.wx.component_authorize(&pre, customer, "mp", &[1, 26], false)
            .await;
    assert_eq!(auth["info_type"], "authorized");
    assert!(auth["body"].as_str().unwrap().contains("<Encrypt>"));
    let code = auth["auth_code"].as_str().unwrap().to_string();
    let ask = |code: &str| json!({"component_appid": o.appid, "authorization_code": code});
    let info = t.post(&call("api_query_auth"), ask(&code)).await;
    let info = &info["authorization_info"];
    assert_eq!(info["authorizer_appid"], customer);
    assert_eq!(info["func_info"][1]["funcscope_category"]["id"], 26);
    let refresh = info["authorizer_refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let at = info["authorizer_access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        errcode(&t.post(&call("api_query_auth"), ask(&code)).await),
        61009,
        "a code works once"
    );
    // The authorizer's token is that account's: a ticket for it, not the platform's token.
    let q = format!("/cgi-bin/ticket/getticket?type=jsapi&access_token={at}");
    assert_eq!(errcode(&t.get(&q).await), 0);
    // Refreshed with the refresh token: a new access token, the same refresh token.
    let refresh_ask = json!({"component_appid": o.appid, "authorizer_appid": customer, "authorizer_refresh_token": refresh});
    let v = t
        .post(&call("api_authorizer_token"), refresh_ask.clone())
        .await;
    assert_ne!(v["authorizer_access_token"], at);
    assert_eq!(v["authorizer_refresh_token"], refresh.as_str());
    let info = t
        .post(
            &call("api_get_authorizer_info"),
            json!({"component_appid": o.appid, "authorizer_appid": customer}),
        )
        .await;
    assert_eq!(info["authorizer_info"]["service_type_info"]["id"], 2);
    assert!(info["authorizer_info"].get("MiniProgramInfo").is_none());
    // Withdrawn: the refresh token stops working, and the push says so.
    let gone = t.wx.component_unauthorize(customer, false).await;
    assert!(gone["body"].as_str().unwrap().contains("<Encrypt>"));
    assert_eq!(
        errcode(&t.post(&call("api_authorizer_token"), refresh_ask).await),
        61023
    );
    // Another platform's token is refused.
    let bad = "/cgi-bin/component/api_create_preauthcode?component_access_token=nope";
    assert_eq!(errcode(&t.post(bad, me).await), 40001);
}
