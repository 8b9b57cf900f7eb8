//! Token lifecycle against abuse and dead tokens: no open proxy, the forced-refresh cooldown,
//! hardened mode, and recovery when WeChat reports the token dead (one refresh, one retry).

use integration_tests::*;
use serde_json::json;

#[tokio::test]
async fn only_the_stored_token_is_forwarded() {
    let h = Harness::with(&[
        ("REFRESH_COOLDOWN_SECS", "0"),
        ("TOKEN_GRACE_SECS", "1"),
        ("CACHE_TTL_SECS", "0"),
    ])
    .await;
    let first = access_token(&h.get_token_ok_on(&h.app, "").await);
    // A token WeChat issued but the gateway does not hold (another system's): refused here.
    let foreign = h.foreign_token().await;
    for t in [foreign.as_str(), "made-up", "x"] {
        let (status, v) = h.get_invoice_batch(t, batch_of(&[SEED_CODE])).await;
        assert_eq!((status, v["errcode"].as_i64()), (200, Some(40001)), "{v}");
        assert_eq!(v["hint"], "token失效");
    }
    assert_eq!(h.calls(batch_path()), 0, "nothing was sent to WeChat");
    // After a refresh the previous token is still accepted during its grace period...
    let second = h.rotate().await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(first, second);
    let (_, v) = h.get_invoice_batch(&first, batch_of(&[SEED_CODE])).await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(h.calls(batch_path()), 1);
    // ...and refused after it, without calling WeChat.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, v) = h.get_invoice_batch(&first, batch_of(&[SEED_CODE])).await;
    assert_eq!(v["errcode"], 40001, "{v}");
    assert_eq!(h.calls(batch_path()), 1);
    let (_, v) = h.get_invoice_batch(&second, batch_of(&[SEED_CODE])).await;
    assert_eq!(v["errcode"], 0);
}

#[tokio::test]
async fn manual_replaces_only_a_token_wechat_reports_dead() {
    let h = Harness::new().await;
    let live = access_token(&h.get_token_ok_on(&h.app, "").await);
    // A thousand public manual calls against a live token: none rotates it, WeChat is asked
    // once (then again only after the cooldown).
    for _ in 0..1000 {
        assert_eq!(
            access_token(&h.get_token_ok_on(&h.app, "type=manual").await),
            live
        );
    }
    assert_eq!(h.token_calls(), 1, "only the first fetch");
    assert_eq!(h.calls(wxinvoice::adapters::wechat::API_DOMAIN_IP_PATH), 1);
    // WeChat ends the stored token (its expiry passes at WeChat first): manual replaces it,
    // exactly once however often it is asked.
    h.sim.advance_clock(7201).await;
    // Out of the cooldown of the first refresh (a token refreshed within it is not replaced).
    let other = h.instance(&[]);
    for app in [&h.app, &other] {
        app.tokens
            .clock()
            .advance(std::time::Duration::from_secs(61));
    }
    let mut answers = std::collections::HashSet::new();
    for app in [&h.app, &other] {
        for _ in 0..500 {
            answers.insert(access_token(&h.get_token_ok_on(app, "type=manual").await));
        }
    }
    assert_eq!(h.token_calls(), 2, "exactly one replacement");
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(!answers.contains(&live));
}

#[tokio::test]
async fn hardened_mode_keeps_the_token_inside() {
    let h = Harness::with(&[("EXPOSE_ACCESS_TOKEN", "false")]).await;
    let v = h.get_token_ok_on(&h.app, "").await;
    assert!(v.get("access_token").is_none(), "{v}");
    // Nor the ticket: the signature is all a page needs, and it verifies.
    assert!(
        v.get("jsapi_ticket").is_none() && v.get("signature").is_some(),
        "{v}"
    );
    assert!(wechat_accepts(&h.sim, PAGE_URL, &v).await, "{v}");
    // The invoice endpoints use the stored token; `token` may be left out (or is ignored).
    let call = Endpoint::GetInvoiceBatch.call().query("");
    let (status, v) = h.answer(call.body(batch_of(&[SEED_CODE]))).await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)), "{v}");
    let (_, v) = h
        .get_invoice_batch("whatever", batch_of(&[SEED_CODE]))
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    // A front end written for the spec passes back the access_token it got: here none, so the
    // example page's `encodeURIComponent(cfg.access_token)` sends "undefined". It keeps working.
    let (_, v) = h
        .get_invoice_batch("undefined", batch_of(&[SEED_CODE]))
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    let (_, v) = h
        .update_status("undefined", "INVOICE_REIMBURSE_LOCK", &[SEED_CODE])
        .await;
    assert_eq!(v["errcode"], 0);
    assert_eq!(h.invoice_status(SEED_CODE).await, "INVOICE_REIMBURSE_LOCK");
    assert_eq!(h.token_calls(), 1);
    // Bad configuration is refused at startup.
    let config = h.config(&[("EXPOSE_ACCESS_TOKEN", "no")]);
    let bad = std::panic::catch_unwind(|| config.build());
    assert!(bad.is_err());
}

#[tokio::test]
async fn a_token_killed_by_another_system_is_replaced_once_and_the_call_retried() {
    let h = Harness::with(&[("REFRESH_COOLDOWN_SECS", "0")]).await;
    let ours = access_token(&h.get_token_ok_on(&h.app, "").await);
    let classic = !is_work() && token_path() == "/cgi-bin/token";
    if classic {
        // Another system fetches with the same appid; 5 minutes later ours is dead at WeChat.
        h.foreign_token().await;
        h.sim.advance_clock(301).await;
    } else {
        // Stable and WeCom tokens are not ended by another fetch; WeChat ends ours early (its
        // clock runs ahead past the token's expiry while the gateway still holds it valid).
        h.sim.advance_clock(7201).await;
    }
    let others = u64::from(classic);
    let (status, v) = h.get_invoice_batch(&ours, batch_of(&[SEED_CODE])).await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)), "{v}");
    assert_eq!(h.calls(batch_path()), 2, "the failed call and one retry");
    assert_eq!(
        h.token_calls(),
        2 + others,
        "ours, (another system's,) one replacement"
    );
    let stored = h.stored().await;
    let replacement = stored.access_token.unwrap().value;
    assert_ne!(replacement, ours);
    // The caller's old token is now the previous one: accepted, and retried with the stored one
    // without another refresh.
    let (_, v) = h.get_invoice_batch(&ours, batch_of(&[SEED_CODE])).await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(h.token_calls(), 2 + others);
    assert_eq!(h.calls(batch_path()), 4);
}

#[tokio::test]
async fn a_wechat_that_keeps_refusing_gets_one_retry_and_no_storm() {
    let h = Harness::new().await;
    let ours = access_token(&h.get_token_ok_on(&h.app, "").await);
    h.sim.fault(json!({"path": batch_path(), "errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}),
    )
    .await;
    // Without cooldown: one replacement and one retry, then WeChat's answer.
    let eager = h.instance(&[("REFRESH_COOLDOWN_SECS", "0")]);
    let (status, v) = h
        .get_invoice_batch_on(&eager, &ours, batch_of(&[SEED_CODE]))
        .await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(40001)), "{v}");
    assert_eq!(h.calls(batch_path()), 2);
    assert_eq!(h.token_calls(), 2);
    // Within the cooldown (default 60 s) the fresh token is not replaced again: no fetch, no retry.
    let fresh = h.stored_token().await;
    for _ in 0..20 {
        let (_, v) = h.get_invoice_batch(&fresh, batch_of(&[SEED_CODE])).await;
        assert_eq!(v["errcode"], 40001);
    }
    assert_eq!(h.token_calls(), 2, "no refresh storm");
    assert_eq!(
        h.calls(batch_path()),
        22,
        "one call per request, no retries"
    );
    // 40014 and 42001 count as dead too.
    for errcode in [40014, 42001] {
        h.sim.clear_faults().await;
        h.sim
            .fault(json!({"path": batch_path(), "errcode": errcode, "times": 1}))
            .await;
        let current = h.stored_token().await;
        let before = h.token_calls();
        let (_, v) = h
            .get_invoice_batch_on(&eager, &current, batch_of(&[SEED_CODE]))
            .await;
        assert_eq!(v["errcode"], 0, "{errcode}: {v}");
        assert_eq!(h.token_calls(), before + 1, "{errcode}");
    }
}

#[tokio::test]
async fn warm_instances_answer_from_their_cache_and_see_refreshes_within_its_ttl() {
    let h = Harness::with(&[("CACHE_TTL_SECS", "1"), ("REFRESH_COOLDOWN_SECS", "0")]).await;
    let a = h.instance(&[("CACHE_TTL_SECS", "1")]);
    let first = a
        .tokens
        .get(wxinvoice::token::Mode::Auto, &deadline())
        .await
        .unwrap();
    let mut from_store = 0;
    for _ in 0..100 {
        let served = a
            .tokens
            .get(wxinvoice::token::Mode::Auto, &deadline())
            .await
            .unwrap();
        if served.source != wxinvoice::token::Source::Cached {
            from_store += 1;
        }
    }
    assert!(
        from_store <= 10,
        "{from_store} of 100 warm requests read the store"
    );
    // Another instance refreshes; a caller hands its new token to `a` at once: accepted.
    let other = h.rotate().await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(other, first.state.access_token.as_ref().unwrap().value);
    let (_, v) = h
        .get_invoice_batch_on(&a, &other, batch_of(&[SEED_CODE]))
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    // And `a` serves the new token once its cache is older than the TTL.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let served = a
        .tokens
        .get(wxinvoice::token::Mode::Auto, &deadline())
        .await
        .unwrap();
    assert_eq!(served.state.access_token.unwrap().value, other);
}

#[tokio::test]
async fn a_flood_of_made_up_tokens_reads_the_store_once_a_second() {
    let h = Harness::new().await;
    let good = access_token(&h.get_token_ok_on(&h.app, "").await);
    let (app, store) = h.faulty_instance(&[]);
    // The instance knows the stored token (its cache) and serves it.
    let (_, v) = h
        .get_invoice_batch_on(&app, &good, batch_of(&[SEED_CODE]))
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    let loads = store.calls(wxinvoice::adapters::store::faults::Op::Load);
    let started = std::time::Instant::now();
    for i in 0..300 {
        let (status, v) = h
            .get_invoice_batch_on(&app, &format!("made-up-{i}"), batch_of(&[SEED_CODE]))
            .await;
        assert_eq!((status, v["errcode"].as_i64()), (200, Some(40001)), "{v}");
    }
    let secs = started.elapsed().as_secs();
    let reads = store.calls(wxinvoice::adapters::store::faults::Op::Load) - loads;
    assert!(
        reads <= secs as u32 + 1,
        "{reads} store reads for 300 unknown tokens in {secs} s"
    );
    assert_eq!(h.calls(batch_path()), 1, "none reached WeChat");
    // The good token still works at once.
    let (_, v) = h
        .get_invoice_batch_on(&app, &good, batch_of(&[SEED_CODE]))
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
}
