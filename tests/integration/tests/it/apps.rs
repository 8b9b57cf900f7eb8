//! Many apps in one deployment: Official Accounts, a mini program and WeCom agents registered
//! next to the deployment's own app, against the simulator and moto.

use integration_tests::*;
use serde_json::{json, Value};
use wxinvoice::adapters::store::faults::Op;
use wxinvoice::adapters::store::TokenStore;
use wxinvoice::domain::apps;

const OA_B: &str = "wxb00000000000000b";
const MINI: &str = "wxm00000000000000m";
const CORP: &str = "wwc0rp00000000000c";
const ORIGIN_B: &str = "https://b.example.com";

#[tokio::test]
async fn each_app_has_its_own_token_origins_and_invoices() {
    let h = Harness::new().await;
    h.register_app("mp", OA_B, None, &[ORIGIN_B]).await;
    h.register_app("mini", MINI, None, &[]).await;
    h.register_app("work", CORP, Some("1000002"), &[ORIGIN_B])
        .await;
    h.register_app("work", CORP, Some("1000003"), &[ORIGIN_B])
        .await;

    // The deployment's own app, as before.
    let (status, own) = h.get_token("").await;
    assert_eq!(status, 200, "{}", shown(&own));
    // An Official Account by appid: its own token and signature, its own page.
    let (status, b) = h.get_token(&format!("appid={OA_B}")).await;
    assert_eq!(status, 200, "{}", shown(&b));
    assert_eq!(b["appid"], OA_B);
    assert_eq!(b["url"], format!("{ORIGIN_B}/invoices"));
    assert!(
        b["access_token"] != own["access_token"],
        "B and the own app share a token"
    );
    assert!(
        b["access_token"].as_str() == h.sim.issued_to(OA_B).await.as_deref(),
        "B's token is not the one WeChat issued to B"
    );
    let page = b["url"].as_str().unwrap_or_default();
    assert!(
        h.wechat_accepts(page, &b).await,
        "WeChat accepts B's signature"
    );
    // Its origins, not the deployment's: a page of the default origin is refused for B.
    let query = format!("appid={OA_B}&url={}", encode_uri_component(PAGE_URL));
    let (status, v) = h.get_token(&query).await;
    assert_eq!(status, 400, "{v}");
    // A mini program: the token only, no tickets fetched.
    let tickets_before = h.ticket_calls();
    let (status, m) = h.get_token(&format!("appid={MINI}")).await;
    assert_eq!(status, 200, "{}", shown(&m));
    let keys: Vec<&String> = m.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["access_token", "expires_in", "appid"],
        "{}",
        shown(&m)
    );
    assert_eq!(
        h.ticket_calls(),
        tickets_before,
        "a mini program needs no ticket"
    );
    // Two agents of one corp: two tokens.
    let (_, w2) = h.get_token(&format!("appid={CORP}&agentid=1000002")).await;
    let (_, w3) = h.get_token(&format!("appid={CORP}&agentid=1000003")).await;
    assert!(
        w2["access_token"].is_string() && w3["access_token"].is_string(),
        "{} {}",
        shown(&w2),
        shown(&w3)
    );
    assert!(
        w2["access_token"] != w3["access_token"],
        "the two agents share a token"
    );

    // Invoices: B's user's invoice answers B's token, not the deployment's own app.
    let mut seed = seed_invoices();
    seed[1]["app"] = json!(OA_B);
    h.sim.set_invoices(&seed).await;
    let invoice = json!({"card_id": SEED_CARD, "encrypt_code": CODE2});
    let b_token = b["access_token"].as_str().unwrap();
    let own_token = own["access_token"].as_str().unwrap();
    let query = |q: &str| {
        let call = Endpoint::GetInvoiceInfo.call().query(q).body(&invoice);
        async { h.answer(call).await.1 }
    };
    let v = query(&format!("appid={OA_B}&token={b_token}")).await;
    assert_eq!(v["errcode"], 0, "{v}");
    let v = query(&format!("token={own_token}")).await;
    assert_eq!(v["errcode"], 40056, "another app's invoice: {v}");
    // App A's token is refused on app B's calls, before WeChat.
    let info_calls = h.calls(paths().invoice_info);
    let v = query(&format!("appid={OA_B}&token={own_token}")).await;
    assert_eq!(v["errcode"], 40001, "{v}");
    assert_eq!(h.calls(paths().invoice_info), info_calls);

    // Unknown and disabled apps: refused, nothing sent to WeChat.
    let token_calls = h.token_calls();
    let (status, v) = h.get_token("appid=wxunknown").await;
    assert_eq!((status, v["errcode"].as_i64()), (404, Some(40013)), "{v}");
    let mut b_settings = h.store_app(OA_B).await;
    b_settings.enabled = false;
    wxinvoice::adapters::store::TokenStore::put_app(&h.store(), &b_settings)
        .await
        .unwrap();
    let other = h.instance(&[]);
    let (status, v) = h.get_token_on(&other, &format!("appid={OA_B}")).await;
    assert_eq!((status, v["errcode"].as_i64()), (403, Some(40013)), "{v}");
    assert_eq!(h.token_calls(), token_calls);
}

#[tokio::test]
async fn a_stampede_on_two_apps_is_one_fetch_per_app() {
    let h = Harness::new().await;
    h.register_app("mp", OA_B, None, &[ORIGIN_B]).await;
    let instances: Vec<wxinvoice::Deployment> = (0..4).map(|_| h.instance(&[])).collect();
    let h = &h;
    let before = h.token_calls();
    let calls = instances.iter().enumerate().flat_map(|(i, app)| {
        (0..10).map(move |n| {
            let query = if (i + n) % 2 == 0 {
                String::new()
            } else {
                format!("appid={OA_B}")
            };
            async move {
                let (_, v) = h.get_token_on(app, &query).await;
                (
                    query.is_empty(),
                    v["access_token"].as_str().map(str::to_string),
                )
            }
        })
    });
    let answers = futures::future::join_all(calls).await;
    let own: std::collections::HashSet<_> = answers
        .iter()
        .filter(|a| a.0)
        .map(|a| a.1.clone())
        .collect();
    let b: std::collections::HashSet<_> = answers
        .iter()
        .filter(|a| !a.0)
        .map(|a| a.1.clone())
        .collect();
    // Counts only in the messages: a failing test prints no token.
    let missing = answers.iter().filter(|a| a.1.is_none()).count();
    assert_eq!(
        (own.len(), b.len()),
        (1, 1),
        "one token per app ({missing} of {} answers had none)",
        answers.len()
    );
    assert!(own != b, "the two apps were answered the same token");
    assert!(own.iter().chain(&b).all(Option::is_some));
    if !is_work() {
        assert_eq!(h.token_calls() - before, 2, "exactly one fetch per app");
    }
}

#[tokio::test]
async fn a_failing_app_neither_stops_nor_delays_the_others() {
    let h = Harness::new().await;
    h.register_app("mp", OA_B, None, &[ORIGIN_B]).await;
    h.register_app("mini", MINI, None, &[]).await;
    // B's secret was reset at WeChat (40125 for B's token fetches only).
    let mut apps = h.sim.options().await.apps;
    for app in &mut apps {
        if app.appid == OA_B {
            app.secret = "reset-at-wechat".into();
        }
    }
    h.sim.set_options(json!({ "apps": apps })).await;
    let err = h.schedule().await.unwrap_err();
    assert!(
        err.contains(&format!("app#{OA_B}: WeChat errcode 40125")),
        "{err}"
    );
    assert!(!err.contains(MINI), "{err}");
    // The others were rotated and answer.
    assert!(
        h.sim.issued_to(MINI).await.is_some(),
        "the mini program was rotated"
    );
    let (status, _) = h.get_token("").await;
    assert_eq!(status, 200);
    let (status, v) = h.get_token(&format!("appid={MINI}")).await;
    assert_eq!(status, 200, "{}", shown(&v));
    let (_, v) = h.get_token(&format!("appid={OA_B}")).await;
    assert_eq!(v["errcode"], 40125, "B's own error is B's: {v}");
}

#[tokio::test]
async fn the_schedule_over_200_apps() {
    let h = Harness::with(&[("SCHEDULE_CONCURRENCY", "10")]).await;
    let n = 200;
    for i in 0..n {
        h.register_app("mp", &format!("wxscale{i:05}"), None, &[ORIGIN_B])
            .await;
    }
    // The registered apps are Official Accounts, whatever the deployment's own app is.
    let mp_calls = || {
        let p = &wxinvoice::adapters::wechat::MP_PATHS;
        h.calls(p.token) + h.calls(p.jsapi_ticket)
    };
    let before = mp_calls();
    let started = std::time::Instant::now();
    let (answer, spent) = wxinvoice::adapters::metrics::measured(h.schedule()).await;
    let took = started.elapsed();
    let v = answer.unwrap();
    assert_eq!(
        v["apps"],
        json!({"due": n, "queued": 0, "refreshed": n, "listed": true}),
        "{v}"
    );
    let wechat = mp_calls() - before;
    println!(
        "schedule over {n} apps (concurrency 10): {} ms, {} DynamoDB calls, {wechat} WeChat calls",
        took.as_millis(),
        spent.dynamodb_calls
    );
    assert!(
        wechat >= 3 * n as u64,
        "a token and two tickets per app: {wechat}"
    );
    // The next run: nothing due, nothing fetched.
    let (before, tokens, tickets) = (mp_calls(), h.token_calls(), h.ticket_calls());
    let v = h.schedule().await.unwrap();
    assert_eq!(v["apps"]["due"], 0, "{v}");
    assert_eq!(v["apps"]["listed"], false, "listed once: {v}");
    assert_eq!((h.token_calls(), h.ticket_calls()), (tokens, tickets));
    assert_eq!(mp_calls(), before);
}

#[tokio::test]
async fn the_deployments_own_item_is_untouched_by_registered_apps() {
    let h = Harness::new().await;
    // A single-app deployment's state, as it was before any app was registered.
    let (_, before) = h.get_token("").await;
    let fetched = h.token_calls();
    h.register_app("mp", OA_B, None, &[ORIGIN_B]).await;
    h.register_app("work", CORP, Some("1000002"), &[ORIGIN_B])
        .await;
    // A new instance (a new deployment of the code) answers the same token from the same item.
    let (status, after) = h.get_token_on(&h.instance(&[]), "").await;
    assert_eq!(status, 200);
    assert!(
        after["access_token"] == before["access_token"],
        "the own app's token changed"
    );
    assert_eq!(h.token_calls(), fetched, "no fetch: nothing to migrate");
    let own = wxinvoice::adapters::store::TokenStore::load(&h.store(), &appid())
        .await
        .unwrap();
    assert!(
        own.settings.is_none() && own.access_token.is_some(),
        "keyed by the appid as before"
    );
}

#[tokio::test]
async fn cors_is_each_apps_own() {
    use lambda_http::http::header;
    let h = Harness::new().await;
    h.register_app("mp", OA_B, None, &[ORIGIN_B]).await;
    let preflight = |origin: &'static str, query: String| {
        let call = Endpoint::GetInvoiceBatch.call().header("origin", origin);
        h.send(call.method("OPTIONS").query(&query))
    };
    let allowed = |resp: &lambda_http::Response<lambda_http::Body>| {
        resp.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .map(|v| v.to_str().unwrap().to_string())
    };
    // B's page may call for B, not for the deployment's own app; and the other way round.
    let resp = preflight(ORIGIN_B, format!("appid={OA_B}")).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(allowed(&resp).as_deref(), Some(ORIGIN_B));
    assert_eq!(allowed(&preflight(ORIGIN_B, String::new()).await), None);
    let own_origin = "https://expense.example.com";
    assert_eq!(
        allowed(&preflight(own_origin, format!("appid={OA_B}")).await),
        None
    );
    assert_eq!(
        allowed(&preflight(own_origin, String::new()).await).as_deref(),
        Some(own_origin)
    );
}

#[tokio::test]
async fn the_own_app_failing_does_not_stop_the_registered_ones() {
    let h = Harness::new().await;
    h.register_app("mini", MINI, None, &[]).await;
    // The deployment's own secret was reset at WeChat.
    let field = if is_work() { "corpsecret" } else { "secret" };
    h.sim.set_options(json!({ field: "reset-at-wechat" })).await;
    let err = h.schedule().await.unwrap_err();
    assert!(
        err.starts_with("scheduled refresh failed: WeChat errcode"),
        "{err}"
    );
    assert!(
        h.sim.issued_to(MINI).await.is_some(),
        "the registered app was rotated all the same"
    );
    let (status, v) = h.get_token(&format!("appid={MINI}")).await;
    assert_eq!(status, 200, "{}", shown(&v));
}

#[tokio::test]
async fn made_up_app_names_cost_at_most_one_read_a_second() {
    let h = Harness::new().await;
    h.register_app("mp", OA_B, None, &[ORIGIN_B]).await;
    // Without a complete index, a shard read says nothing: a second made-up name of the same
    // shard within the second is refused unread.
    let shard = |n: &str| apps::index_shard(&apps::key(n, None));
    let same_shard = (2..)
        .map(|i| format!("wxmadeup{i}"))
        .find(|n| shard(n) == shard("wxmadeup1"))
        .unwrap();
    let (first, _) = h.get_token("appid=wxmadeup1").await;
    let (second, v) = h.get_token(&format!("appid={same_shard}")).await;
    assert_eq!((first, second), (404, 429), "{v}");
    assert_eq!(v["errcode"], -1, "retryable: {v}");
    // A name already found missing is answered from memory, a second later a new one is read.
    assert_eq!(h.get_token("appid=wxmadeup1").await.0, 404);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, v) = h.get_token(&format!("appid={OA_B}")).await;
    assert_eq!(status, 200, "{}", shown(&v));
}

#[tokio::test]
async fn with_the_registry_index_unknown_names_cost_no_read_and_real_apps_are_never_refused() {
    let h = Harness::new().await;
    h.register_app("mp", OA_B, None, &[ORIGIN_B]).await;
    // The schedule's listing completes the index (apps registered before it existed included).
    h.schedule().await.unwrap();
    let (app, store) = h.faulty_instance(&[]);
    let flood = |round: u32| {
        let (h, app) = (&h, &app);
        async move {
            let mut statuses = Vec::new();
            for i in 0..100 {
                let query = format!("appid=wxflood{round}x{i}");
                statuses.push(h.get_token_on(app, &query).await.0);
                // The same names again: what a flood that rebuilds its names does.
                statuses.push(h.get_token_on(app, "appid=wxflood0x0").await.0);
            }
            statuses
        }
    };
    let statuses = flood(0).await;
    assert!(statuses.iter().all(|s| *s == 404), "{statuses:?}");
    // A registered app right after the misses: served, not throttled.
    let (status, v) = h.get_token_on(&app, &format!("appid={OA_B}")).await;
    assert_eq!(status, 200, "{}", shown(&v));
    let shard_reads = store.calls(Op::IndexShard);
    let item_reads = store.calls(Op::Load);
    assert!(
        (1..=16).contains(&shard_reads),
        "at most one read per shard of the index for 200 lookups: {shard_reads}"
    );
    assert!(
        item_reads <= shard_reads + 1,
        "an item read for the first unknown name of a shard only (and the real app): {item_reads}"
    );
    // Past the cache period, the same flood again: at most one more read per shard, and one
    // item read with it.
    h.advance(&app, 31).await;
    let statuses = flood(1).await;
    assert!(statuses.iter().all(|s| *s == 404), "{statuses:?}");
    assert!(store.calls(Op::IndexShard) - shard_reads <= 16);
    assert!(
        store.calls(Op::Load) - item_reads <= 16,
        "an item read for the first unknown name of a shard only"
    );
    let item_reads = store.calls(Op::Load);
    // A removed app is unknown once its item is read again.
    h.store()
        .remove_app(&wxinvoice::domain::apps::key(OA_B, None))
        .await
        .unwrap();
    h.advance(&app, 31).await;
    assert_eq!(h.get_token_on(&app, &format!("appid={OA_B}")).await.0, 404);
    // Preflights (OPTIONS, which API Gateway lets through without the authorizer) the same.
    let call = Endpoint::GetToken
        .call()
        .method("OPTIONS")
        .query("appid=wxpreflight1");
    assert_eq!(call.send(&app).await.status(), 404);
    assert!(
        store.calls(Op::Load) - item_reads <= 2,
        "one read each at most"
    );
}

/// getToken as a caller behind the JWT authorizer whose token has `claims`.
async fn token_as(h: &Harness, query: &str, claims: Value) -> (u16, Value) {
    let call = Endpoint::GetToken.call().query(query).edit(|v| {
        v["requestContext"]["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
    });
    h.answer(call).await
}

#[tokio::test]
async fn a_caller_acts_only_for_the_apps_its_token_names() {
    let h = Harness::new().await;
    h.register_app("mp", OA_B, None, &[ORIGIN_B]).await;
    let for_b = format!("appid={OA_B}&url=https%3A%2F%2Fb.example.com%2Fp");
    let names = |apps: &str| json!({"sub": "expense-system-1", "wxinvoice_apps": apps});
    // Its own apps: served.
    let (status, v) = token_as(&h, &for_b, names(&format!("[{OA_B} wxother]"))).await;
    assert_eq!(status, 200, "{}", shown(&v));
    assert_eq!(token_as(&h, &for_b, names("*")).await.0, 200);
    // Another company's app: the answer an unknown app gets, word for word.
    let (status, refused) = token_as(&h, &for_b, names("wxother")).await;
    let (_, unknown) = token_as(&h, "appid=wxb00000000000000z", names("*")).await;
    assert_eq!(status, 404, "{refused}");
    assert_eq!(
        refused["errmsg"].as_str().unwrap().replace(OA_B, "…"),
        unknown["errmsg"]
            .as_str()
            .unwrap()
            .replace("wxb00000000000000z", "…")
    );
    // A token that names no apps: the deployment's own app only.
    let plain = json!({"sub": "expense-system-2"});
    assert_eq!(token_as(&h, &for_b, plain.clone()).await.0, 404);
    assert_eq!(token_as(&h, "", plain).await.0, 200);
    // The claim's name is the deployment's choice.
    let h2 = Harness::with(&[("APPS_CLAIM", "tenants")]).await;
    h2.register_app("mp", OA_B, None, &[ORIGIN_B]).await;
    let (status, _) = token_as(&h2, &for_b, json!({"sub": "s", "tenants": OA_B})).await;
    assert_eq!(status, 200);
    // A page outside B's origins is refused without B's origins being named.
    let evil = format!("appid={OA_B}&url=https%3A%2F%2Fevil.example.com%2Fp");
    let (status, v) = token_as(&h, &evil, names(OA_B)).await;
    assert_eq!(status, 400, "{v}");
    assert!(!v["errmsg"].as_str().unwrap().contains(ORIGIN_B), "{v}");
}

#[tokio::test]
async fn an_operator_rotates_a_registered_apps_token() {
    let h = Harness::new().await;
    h.register_app("mp", OA_B, None, &[ORIGIN_B]).await;
    let (_, before) = h.get_token(&format!("appid={OA_B}")).await;
    let (_, own_before) = h.get_token("").await;
    let event = json!({"action": "rotate", "appid": OA_B}).to_string();
    let v = h.invoke(&event).await.unwrap();
    assert_eq!(v["rotated"], true, "{}", shown(&v));
    let (_, after) = h
        .get_token_on(&h.instance(&[]), &format!("appid={OA_B}"))
        .await;
    assert!(
        after["access_token"] != before["access_token"],
        "B's token replaced"
    );
    assert!(
        after["access_token"].as_str() == h.sim.issued_to(OA_B).await.as_deref(),
        "B's token is not the one WeChat issued to B"
    );
    let (_, own_after) = h.get_token("").await;
    assert!(
        own_after["access_token"] == own_before["access_token"],
        "the own app's untouched"
    );
    // An app this deployment does not serve: the invocation fails, saying so.
    let event = r#"{"action":"rotate","appid":"wxnone"}"#;
    let err = h.invoke(event).await.unwrap_err();
    assert!(err.contains("no app wxnone"), "{err}");
}

#[tokio::test]
async fn a_removed_app_stays_removed_on_the_instances_that_knew_it() {
    let h = Harness::new().await;
    let b = h.register_app("mp", OA_B, None, &[ORIGIN_B]).await;
    let (_, v) = h.get_token(&format!("appid={OA_B}")).await;
    assert!(v["access_token"].is_string(), "{}", shown(&v));
    h.store().remove_app(&b.key()).await.unwrap();
    // This instance still knows B (its registry cache) and is asked for a new token: the lock
    // write finds B gone, writes nothing, and B is answered as any unknown app.
    let (status, v) = h.get_token(&format!("appid={OA_B}&type=manual")).await;
    assert_eq!(
        (status, v["errcode"].as_i64()),
        (404, Some(40013)),
        "{}",
        shown(&v)
    );
    let stored = h.store().load(&b.key()).await.unwrap();
    assert_eq!(stored, Default::default(), "B's item came back: {stored:?}");
    assert!(h.store().apps().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_wecom_agents_page_is_signed_for_agent_config_too() {
    use wechat_sim::AgentSignature;
    let h = Harness::new().await;
    h.register_app("work", CORP, Some("1000002"), &[ORIGIN_B])
        .await;
    let agent_tickets = || h.calls("/cgi-bin/ticket/get");
    let before = agent_tickets();
    let query = format!("appid={CORP}&agentid=1000002&debug=1");
    let call = Endpoint::GetToken
        .call()
        .query(&query)
        .header("origin", ORIGIN_B);
    let (status, v) = h.answer(call).await;
    assert_eq!(status, 200, "{}", shown(&v));
    // wx_card and agent_config both come from /cgi-bin/ticket/get.
    assert_eq!(agent_tickets() - before, 2, "the agent ticket is fetched");
    let page = v["url"].as_str().unwrap();
    assert!(
        h.wechat_accepts(page, &v).await,
        "wx.config is still signed"
    );
    let agent = &v["agent_config"];
    assert_eq!(agent["agentid"], "1000002", "{}", shown(&v));
    let signature = agent["signature"].as_str().unwrap_or_default();
    let signed = |agentid| AgentSignature {
        corpid: CORP,
        agentid,
        url: page,
        noncestr: v["noncestr"].as_str().unwrap(),
        timestamp: v["timestamp"].as_u64().unwrap(),
        signature,
    };
    assert!(
        h.sim.verify_agent_config(&signed("1000002")).await,
        "WeCom accepts agentConfig"
    );
    assert!(
        !h.sim.verify_agent_config(&signed("1000003")).await,
        "not another agent's"
    );
    assert_ne!(
        signature, v["signature"],
        "the agent ticket, not the corp's jsapi ticket"
    );
    // chooseInvoice's cardSign: the agent's wx_card ticket, signed with the corpid.
    let card = wechat_sim::CardSign {
        appid: CORP,
        timestamp: v["timestamp"].as_u64().unwrap(),
        nonce_str: v["noncestr"].as_str().unwrap(),
        sign_type: "SHA1",
        card_sign: v["card_sign"].as_str().unwrap_or_default(),
    };
    assert!(
        h.sim.verify_card_sign(&card).await,
        "WeCom accepts the agent's cardSign"
    );
    // debug=1 shows the agentConfig string, its ticket masked.
    let shown_string = v["debug"]["agent_signed"].as_str().unwrap_or_default();
    assert!(
        shown_string.starts_with("jsapi_ticket=***&noncestr="),
        "{shown_string}"
    );
    assert!(
        shown_string.ends_with(&format!("&url={page}")),
        "{shown_string}"
    );
    let key = apps::key(CORP, Some("1000002"));
    let stored = TokenStore::load(&h.store(), &key).await.unwrap();
    let ticket = stored.agent_ticket.expect("the agent ticket is kept").value;
    assert!(
        !v.to_string().contains(&ticket),
        "the agent ticket is not answered"
    );

    // Served from the store now: no more ticket calls, the same answer shape.
    let (_, again) = h.get_token(&format!("appid={CORP}&agentid=1000002")).await;
    assert_eq!(agent_tickets() - before, 2);
    assert!(
        again["agent_config"]["signature"].is_string(),
        "{}",
        shown(&again)
    );
    // Other apps carry none.
    let (_, own) = h.get_token("").await;
    assert!(own.get("agent_config").is_none(), "{}", shown(&own));
}

#[tokio::test]
async fn an_agent_id_set_later_fetches_the_agent_ticket_alone() {
    if !is_work() {
        return; // WECHAT_AGENT_ID is WeCom's
    }
    let h = Harness::new().await;
    let (status, v) = h.get_token("").await;
    assert_eq!(status, 200, "{}", shown(&v));
    assert!(v.get("agent_config").is_none(), "no agent configured");
    let (tokens, jsapi, agent) = (
        h.token_calls(),
        h.calls(paths().jsapi_ticket),
        h.calls("/cgi-bin/ticket/get"),
    );
    // The deployment is updated with its agent: the stored state lacks the agent ticket.
    let updated = h.instance(&[("WECHAT_AGENT_ID", "1000001")]);
    let (status, v) = h.get_token_on(&updated, "").await;
    assert_eq!(status, 200, "{}", shown(&v));
    assert_eq!(
        (
            h.token_calls(),
            h.calls(paths().jsapi_ticket),
            h.calls("/cgi-bin/ticket/get")
        ),
        (tokens, jsapi, agent + 1),
        "one ticket call, the agent's; the token and the other tickets kept"
    );
    let signed = wechat_sim::AgentSignature {
        corpid: &appid(),
        agentid: "1000001",
        url: v["url"].as_str().unwrap(),
        noncestr: v["noncestr"].as_str().unwrap(),
        timestamp: v["timestamp"].as_u64().unwrap(),
        signature: v["agent_config"]["signature"].as_str().unwrap_or_default(),
    };
    assert!(h.sim.verify_agent_config(&signed).await, "{}", shown(&v));
}
