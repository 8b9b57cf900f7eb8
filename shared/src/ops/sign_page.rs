//! getToken's answer: the JS-SDK signature of the page (`wx.config`), the cardSign that opens
//! `chooseInvoice`, a WeCom agent's `agentConfig` signature, and how long the token keeps
//! working; for a mini program, the token alone.

use serde::Serialize;

use crate::adapters::sign;
use crate::tenant::AppRuntime;
use crate::token::error::Unavailable;
use crate::token::lifecycle::{guaranteed_secs, token_dies_at};
use crate::token::{Served, TokenError};

/// The getToken answer, fields in the spec's order.
#[derive(Serialize)]
pub struct PageAnswer<'a> {
    /// Left out in hardened mode (`EXPOSE_ACCESS_TOKEN=false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token: Option<&'a str>,
    expires_in: u64,
    appid: &'a str,
    timestamp: u64,
    noncestr: String,
    /// Left out in hardened mode: a page needs only the signature, and the ticket would let its
    /// holder sign any page for the app.
    #[serde(skip_serializing_if = "Option::is_none")]
    jsapi_ticket: Option<&'a str>,
    url: &'a str,
    signature: String,
    /// For `wx.invoke('chooseInvoice', {timestamp, nonceStr: noncestr, signType: sign_type,
    /// cardSign: card_sign})`: signed with the wx_card ticket, the same timestamp and noncestr.
    #[serde(skip_serializing_if = "Option::is_none")]
    card_sign: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sign_type: Option<&'static str>,
    /// A WeCom agent's page: `agentConfig` (`ww.register`'s `getAgentConfigSignature`).
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_config: Option<AgentConfig<'a>>,
    /// `debug=1`: what was signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    debug: Option<Signed>,
}

/// `agentConfig`'s signature: the `wx.config` formula over the agent's ticket, with the answer's
/// `url`, `timestamp` and `noncestr`; `corpid` is the answer's `appid`.
#[derive(Serialize)]
pub struct AgentConfig<'a> {
    agentid: &'a str,
    signature: String,
}

/// What an answer signed, its tickets masked, for a page that meets "invalid signature" to
/// compare with what it passed to `wx.config` (`debug=1`).
#[derive(Serialize)]
pub struct Signed {
    /// `jsapi_ticket=***&noncestr=…&timestamp=…&url=…`, hashed (with the ticket) into `signature`.
    signed: String,
    /// The card_sign's sorted values, the wx_card ticket masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    card_signed: Option<String>,
    /// `agentConfig`'s string, the agent ticket masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_signed: Option<String>,
}

/// getToken for a mini program: the token and its life only (`wx.chooseInvoice` needs no
/// signature; its invoices are queried through this gateway with the mini program's token).
#[derive(Serialize)]
pub struct TokenOnly<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token: Option<&'a str>,
    expires_in: u64,
    appid: &'a str,
}

/// getToken's answer for one app, as a page or a mini program needs it.
pub enum Answer<'a> {
    Page(Box<PageAnswer<'a>>),
    TokenOnly(TokenOnly<'a>),
}

impl Answer<'_> {
    pub fn to_json(&self) -> String {
        match self {
            Answer::Page(a) => serde_json::to_string(a),
            Answer::TokenOnly(a) => serde_json::to_string(a),
        }
        .expect("plain structs serialize")
    }
}

/// The answer from one reading of the token state (`served`), signing `url`; with what was
/// signed when `debug`.
pub fn answer<'a>(
    app: &'a AppRuntime,
    served: &'a Served,
    url: &'a str,
    debug: bool,
) -> Result<Answer<'a>, TokenError> {
    let token = served.access_token()?;
    let now = app.tokens.clock().now_ms();
    let access_token = app.config.expose_access_token.then_some(token);
    let expires_in = guaranteed_secs(
        &served.state,
        app.tokens.timing(),
        now,
        app.wechat.new_token_ends_previous(),
    );
    let appid = app.config.appid.as_str();
    if !app.config.timing.tickets {
        return Ok(Answer::TokenOnly(TokenOnly {
            access_token,
            expires_in,
            appid,
        }));
    }
    let Some(ticket) = &served.state.jsapi_ticket else {
        return Err(Unavailable::NoJsapiTicketStored.into());
    };
    let timestamp = now / 1000;
    let noncestr = sign::noncestr();
    let signature = sign::jsapi_signature(&ticket.value, &noncestr, timestamp, url);
    let card_ticket = served
        .state
        .wx_card_ticket
        .as_ref()
        .filter(|c| c.valid_for(now, 0));
    let card_sign = card_ticket.map(|c| sign::card_sign(&c.value, appid, timestamp, &noncestr));
    let agent_ticket = app
        .config
        .agentid
        .as_deref()
        .zip(served.state.agent_ticket.as_ref())
        .filter(|(_, c)| c.valid_for(now, 0));
    let agent_config = agent_ticket.map(|(agentid, c)| AgentConfig {
        agentid,
        signature: sign::jsapi_signature(&c.value, &noncestr, timestamp, url),
    });
    let debug = debug.then(|| Signed {
        signed: sign::masked(
            &sign::jsapi_plain(&ticket.value, &noncestr, timestamp, url),
            &ticket.value,
        ),
        card_signed: card_ticket.map(|c| {
            sign::masked(
                &sign::card_plain(&c.value, appid, timestamp, &noncestr),
                &c.value,
            )
        }),
        agent_signed: agent_ticket.map(|(_, c)| {
            sign::masked(
                &sign::jsapi_plain(&c.value, &noncestr, timestamp, url),
                &c.value,
            )
        }),
    });
    Ok(Answer::Page(Box::new(PageAnswer {
        access_token,
        expires_in,
        appid,
        timestamp,
        noncestr,
        jsapi_ticket: app
            .config
            .expose_access_token
            .then_some(ticket.value.as_str()),
        url,
        signature,
        sign_type: card_sign.as_ref().map(|_| "SHA1"),
        card_sign,
        agent_config,
        debug,
    })))
}

/// Seconds until the stored access_token stops working (as the gateway reads it).
pub fn seconds_left(app: &AppRuntime, served: &Served) -> Option<u64> {
    let end = token_dies_at(&served.state, app.tokens.timing())?;
    Some(end.saturating_sub(app.tokens.clock().now_ms()) / 1000)
}
