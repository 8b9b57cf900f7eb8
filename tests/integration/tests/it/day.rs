//! A simulated day (gateway and simulator clocks moved together): how many token fetches reach
//! WeChat with a reader every minute and the hourly schedule, for the classic `/cgi-bin/token`,
//! `stable_token` and WeCom's `gettoken` (which answers the same token while it is valid). The
//! count depends on token lifetimes, never on the request rate.

use integration_tests::*;
use serde_json::json;
use wxinvoice::token::Mode;

/// Plays one day on `platform`, whatever the suite runs for; returns (token fetches, ticket
/// fetches, requests answered).
async fn day(platform: Platform, sim_options: serde_json::Value) -> (u64, u64, u64) {
    let overrides = platform.vars();
    let token_path = platform.token_path();
    let h = Harness::with(&overrides).await;
    h.sim.set_options(sim_options).await;
    let app = h.instance(&overrides);
    let mut answered = 0;
    for minute in 0..24 * 60 {
        if minute % 60 == 0 {
            app.tokens
                .get(Mode::Scheduled, &deadline())
                .await
                .expect("scheduled refresh");
        }
        let served = app
            .tokens
            .get(Mode::Auto, &deadline())
            .await
            .expect("a token every minute");
        let token = served.state.access_token.unwrap();
        assert!(token.valid_for(app.tokens.clock().now_ms(), 0));
        answered += 1;
        // The token works at WeChat at that moment (the answer is about the invoice, not it).
        if minute % 97 == 0 {
            let path = if token_path == "/cgi-bin/gettoken" {
                "/cgi-bin/card/invoice/reimburse/getinvoiceinfo"
            } else {
                "/card/invoice/reimburse/getinvoiceinfo"
            };
            let v = h
                .sim
                .post(
                    &format!("{path}?access_token={}", token.value),
                    &json!({"card_id": "x", "encrypt_code": "y"}),
                )
                .await;
            assert_eq!(v["errcode"], 40073, "minute {minute}: {v}");
        }
        h.advance(&app, 60).await;
    }
    let tickets = h.calls("/cgi-bin/ticket/getticket")
        + h.calls("/cgi-bin/get_jsapi_ticket")
        + h.calls("/cgi-bin/ticket/get");
    (h.calls(token_path), tickets, answered)
}

/// Prints the day's counts (figures, no credentials).
fn report(counts: &str, requests: u64) {
    println!("simulated day, {counts}, {requests} requests");
}

#[tokio::test]
async fn classic_token_one_fetch_per_hourly_rotation() {
    let (fetches, tickets, answered) = day(Platform::Mp, json!({})).await;
    let line = format!("classic /cgi-bin/token: {fetches} token fetches, {tickets} ticket fetches");
    report(&line, answered);
    // The first fetch, then one rotation per scheduled run (each token lives one hour + grace).
    assert!((24..=26).contains(&fetches), "{fetches}");
    assert!(tickets <= 2 * fetches + 2, "{tickets}");
}

#[tokio::test]
async fn stable_token_normal_mode_does_not_storm() {
    let (fetches, tickets, answered) = day(Platform::MpStable, json!({})).await;
    let line = format!("stable_token: {fetches} token fetches, {tickets} ticket fetches");
    report(&line, answered);
    // WeChat renews a stable token in its last 5 minutes; the schedule asks hourly once a token
    // is due and readers once in that window: far below one fetch per request.
    assert!(fetches <= 40, "{fetches}");
    assert!(tickets <= 60, "{tickets}");
}

#[tokio::test]
async fn wecom_same_token_answers_do_not_storm() {
    let (fetches, tickets, answered) =
        day(Platform::Work, json!({"work_token_idempotent": true})).await;
    let line = format!("WeCom gettoken (same token while valid): {fetches} token fetches, {tickets} ticket fetches");
    report(&line, answered);
    assert!(fetches <= 100, "{fetches}");
    assert!(tickets <= 60, "{tickets}");
}
