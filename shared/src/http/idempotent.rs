//! Status changes under an `Idempotency-Key`: one key per request, reused on its retries. The
//! key, the app, the request's digest and what became of it are recorded in the claim table
//! before WeChat is called; a retry with the same key and request gets the recorded answer
//! without a WeChat call (or, when the first outcome is unknown, is settled by reading the
//! invoices back); the same key with another request is refused (422), and while the first is
//! under way, a retry is too (409). Bad input is refused before a key is taken. Any other failure
//! is recorded as an unknown outcome, never forgotten: its retry reads the invoices back before
//! sending (the first attempt, or an earlier one it took over from, may have sent the change).
//! The change runs with one DynamoDB call's time kept back, so its outcome is recorded.

use std::future::Future;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};

use crate::adapters::archive::sha256_hex;
use crate::adapters::claims::{Begin, ClaimError, Keyed};
use crate::domain::clock::ms;
use crate::domain::deadline::Deadline;
use crate::domain::idempotency::{retry, IdempotencyKey, Recorded, Retry};
use crate::http::answer::Note;
use crate::http::context::Ctx;
use crate::http::envelope::json_response;
use crate::http::error::ApiError;
use crate::tenant::AppRuntime;

/// The header, as the IETF draft names it.
pub const HEADER: &str = "idempotency-key";

/// The request's key, if it sent one.
pub fn key(ctx: &Ctx<'_>) -> Result<Option<IdempotencyKey>, ApiError> {
    let mut values = ctx.req.headers().get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::bad_request(
            "Idempotency-Key: given more than once",
        ));
    }
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_request("Idempotency-Key: visible ASCII characters only"))?;
    Ok(Some(IdempotencyKey::parse(text)?))
}

/// Runs `change` (told whether to read the invoices back first, and its deadline) once per key.
pub async fn once<F, Fut>(
    app: &AppRuntime,
    ctx: &Ctx<'_>,
    path: &str,
    change: F,
) -> Result<(Response<Body>, Note), ApiError>
where
    F: FnOnce(bool, Deadline) -> Fut,
    Fut: Future<Output = Result<(Response<Body>, Note), ApiError>>,
{
    let Some(key) = key(ctx)? else {
        return change(false, ctx.deadline).await;
    };
    let Some(claims) = &app.claims else {
        return Err(ApiError::bad_request(
            "Idempotency-Key: this deployment keeps no record of keys (no claim table); \
             send the change without it",
        ));
    };
    let digest = digest(path, ctx.req.body().as_ref());
    let name = app.name();
    let now = app.tokens.clock().now_ms();
    let lease_until = now.saturating_add(ms(ctx.deadline.remaining()));
    let keyed = Keyed {
        app: name,
        key: &key,
        body_sha256: &digest,
    };
    let begin = |take_over| claims.begin(&keyed, now, lease_until, take_over, &ctx.deadline);
    let settle_first = match begin(false).await.map_err(unavailable)? {
        Begin::Started => false,
        Begin::Recorded(record) => match retry(&record, &digest, now) {
            Retry::Replay { status, body } => return Ok(replay(status, body)),
            Retry::OtherRequest => {
                return Err(ApiError::Unprocessable(
                    "Idempotency-Key: already used with another request; use a new key for a \
                     new request"
                        .into(),
                ))
            }
            Retry::InFlight => return Err(in_flight()),
            // An unknown outcome, or a first request cut off while under way: either may have
            // sent the change, so the retry reads the invoices back before sending it.
            Retry::Settle | Retry::TakeOver => match begin(true).await {
                Ok(Begin::Started) => true,
                Ok(Begin::Recorded(_)) => return Err(in_flight()),
                Err(e) => return Err(unavailable(e)),
            },
        },
    };
    let changing = ctx.deadline.before(app.config.timing.dynamodb_timeout);
    let mut result = change(settle_first, changing).await;
    let recorded = match &result {
        Ok((resp, _)) => Recorded::Answered {
            status: resp.status().as_u16(),
            body: text(resp),
        },
        // WeChat's refusal is the answer to this request: its retry gets it again.
        Err(e @ ApiError::WeChat(_)) => {
            let resp = e.clone().into_response_for(ctx.request_id);
            Recorded::Answered {
                status: resp.status().as_u16(),
                body: text(&resp),
            }
        }
        Err(_) => Recorded::Unknown,
    };
    let now = app.tokens.clock().now_ms();
    let written = claims.finish(&keyed, &recorded, now, &ctx.deadline).await;
    if let Err(e) = written {
        let fault = format!("idempotency record: {e}");
        match &mut result {
            Ok((_, note)) => note.fault = Some(fault),
            Err(_) => {
                tracing::error!(correlation_id = ctx.request_id, fault = %fault, "idempotency")
            }
        }
    }
    result
}

/// What identifies a request for its key: its path and body.
fn digest(path: &str, body: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(path.len() + 1 + body.len());
    bytes.extend_from_slice(path.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(body);
    sha256_hex(&bytes)
}

/// The recorded answer, given again.
fn replay(status: u16, body: String) -> (Response<Body>, Note) {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let note = Note {
        source: Some("idempotent_replay"),
        ..Note::default()
    };
    (json_response(status, body), note)
}

fn text(resp: &Response<Body>) -> String {
    String::from_utf8_lossy(resp.body().as_ref()).into_owned()
}

fn in_flight() -> ApiError {
    ApiError::Conflict(
        "Idempotency-Key: the first request with this key is still under way; try again shortly"
            .into(),
    )
}

fn unavailable(e: ClaimError) -> ApiError {
    ApiError::Internal {
        public: "claim table unavailable",
        detail: e.to_string(),
    }
}
