//! The gateway as the tests call it. Every call into its handlers (`wxinvoice::http`) is made
//! in this file: a request to one of the five endpoints ([`Endpoint`], [`Call`]) reaches the
//! function that serves it in AWS (get-token, get-invoice-batch, update-status) through that
//! function's dispatch; direct invocations ([`invoke`]) reach get-token as the schedule and an
//! operator send them. [`Harness`] has one method per endpoint on top.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use lambda_http::{Body, Context, Request, RequestExt, Response};
use serde_json::{json, Value};
use wxinvoice::domain::config::Config;
use wxinvoice::domain::invoice::{
    GetInvoiceBatchRequest, InvoiceRef, UpdateInvoiceStatusRequest, UpdateStatusRequest,
};
use wxinvoice::http;
use wxinvoice::Deployment;

use crate::{deadline, fixture, refs, Harness, OPENID, SEED_CARD};

pub use wxinvoice::http::{
    GET_INVOICE_BATCH, GET_INVOICE_INFO, GET_TOKEN_PATH, UPDATE_INVOICE_STATUS, UPDATE_STATUS,
};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One of the gateway's documented endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    GetToken,
    GetInvoiceBatch,
    GetInvoiceInfo,
    UpdateStatus,
    UpdateInvoiceStatus,
}

impl Endpoint {
    pub const ALL: [Endpoint; 5] = [
        Endpoint::GetToken,
        Endpoint::GetInvoiceBatch,
        Endpoint::GetInvoiceInfo,
        Endpoint::UpdateStatus,
        Endpoint::UpdateInvoiceStatus,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Endpoint::GetToken => GET_TOKEN_PATH,
            Endpoint::GetInvoiceBatch => GET_INVOICE_BATCH,
            Endpoint::GetInvoiceInfo => GET_INVOICE_INFO,
            Endpoint::UpdateStatus => UPDATE_STATUS,
            Endpoint::UpdateInvoiceStatus => UPDATE_INVOICE_STATUS,
        }
    }

    pub fn from_path(path: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.path() == path)
    }

    /// The API Gateway event (HTTP API, payload v2) its requests start from.
    fn fixture(self) -> &'static str {
        match self {
            Endpoint::GetToken => "apigw-v2-get-token.json",
            Endpoint::GetInvoiceBatch | Endpoint::GetInvoiceInfo => {
                "apigw-v2-get-invoice-batch.json"
            }
            Endpoint::UpdateStatus | Endpoint::UpdateInvoiceStatus => "apigw-v2-update-status.json",
        }
    }

    /// A request to this endpoint: its fixture event, to edit before sending.
    pub fn call(self) -> Call {
        let event = serde_json::from_str(&fixture(self.fixture())).expect("a JSON fixture");
        let call = Call {
            endpoint: self,
            event,
            budget: None,
        };
        match self {
            // The single-invoice paths: their function's fixture with another path.
            Endpoint::GetInvoiceInfo | Endpoint::UpdateInvoiceStatus => call.path(self.path()),
            _ => call,
        }
    }
}

/// A request to one endpoint, as API Gateway hands it to the function: a v2 event, edited, then
/// converted exactly as the Lambda runtime converts it.
#[derive(Clone, Debug)]
pub struct Call {
    endpoint: Endpoint,
    event: Value,
    budget: Option<Duration>,
}

impl Call {
    /// The query string, raw as API Gateway passes it.
    pub fn query(mut self, raw: &str) -> Call {
        self.event["rawQueryString"] = Value::from(raw);
        self.event
            .as_object_mut()
            .unwrap()
            .remove("queryStringParameters");
        self
    }

    pub fn body(mut self, body: impl RequestBody) -> Call {
        self.event["body"] = Value::from(body.into_text());
        self
    }

    /// Whether API Gateway flags the body base64-encoded.
    pub fn base64(mut self, encoded: bool) -> Call {
        self.event["isBase64Encoded"] = Value::from(encoded);
        self
    }

    pub fn method(mut self, method: &str) -> Call {
        self.event["requestContext"]["http"]["method"] = Value::from(method);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Call {
        self.event["headers"][name] = Value::from(value);
        self
    }

    /// Another path (still served by this endpoint's function).
    pub fn path(mut self, path: &str) -> Call {
        self.event["rawPath"] = Value::from(path);
        self.event["requestContext"]["http"]["path"] = Value::from(path);
        self
    }

    /// Any other change to the event.
    pub fn edit(mut self, edit: impl FnOnce(&mut Value)) -> Call {
        edit(&mut self.event);
        self
    }

    /// The Lambda context the runtime hands over, with `budget` left before its deadline.
    pub fn lambda_budget(mut self, budget: Duration) -> Call {
        self.budget = Some(budget);
        self
    }

    /// The request the function receives, or why the event does not convert.
    pub fn try_request(&self) -> Result<Request, String> {
        let req = wxinvoice::runtime::request_from_json(&self.event.to_string())
            .map_err(|e| e.to_string())?;
        Ok(match self.budget {
            Some(budget) => {
                let mut ctx = Context::default();
                ctx.deadline = wxinvoice::domain::clock::now_ms() + budget.as_millis() as u64;
                req.with_lambda_context(ctx)
            }
            None => req,
        })
    }

    pub fn request(&self) -> Request {
        self.try_request().expect("the event converts to a request")
    }

    /// The function's answer.
    pub async fn send(self, app: &Deployment) -> Response<Body> {
        let req = self.request();
        // Boxed: the handlers' futures are large, and the endpoint methods nest them.
        let answer: BoxFuture<'_, _> = match self.endpoint {
            Endpoint::GetToken => Box::pin(http::get_token(app, req)),
            Endpoint::GetInvoiceBatch | Endpoint::GetInvoiceInfo => {
                Box::pin(http::invoice_query(app, req))
            }
            Endpoint::UpdateStatus | Endpoint::UpdateInvoiceStatus => {
                Box::pin(http::invoice_status(app, req))
            }
        };
        answer.await.expect("the handlers answer every request")
    }

    /// The function's answer: (HTTP status, body).
    pub async fn answer(self, app: &Deployment) -> (u16, Value) {
        reply(&self.send(app).await)
    }
}

/// A request body: text as sent, or a JSON value sent as its text.
pub trait RequestBody {
    fn into_text(self) -> String;
}

impl RequestBody for &str {
    fn into_text(self) -> String {
        self.to_string()
    }
}

impl RequestBody for String {
    fn into_text(self) -> String {
        self
    }
}

impl RequestBody for &String {
    fn into_text(self) -> String {
        self.clone()
    }
}

impl RequestBody for &Value {
    fn into_text(self) -> String {
        self.to_string()
    }
}

impl RequestBody for Value {
    fn into_text(self) -> String {
        self.to_string()
    }
}

/// An answer's body as JSON.
pub fn body_json(resp: &Response<Body>) -> Value {
    serde_json::from_slice(resp.body().as_ref()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {:?}",
            String::from_utf8_lossy(resp.body().as_ref())
        )
    })
}

/// (HTTP status, body) of an answer.
pub fn reply(resp: &Response<Body>) -> (u16, Value) {
    (resp.status().as_u16(), body_json(resp))
}

/// A direct invocation of get-token with `event` (the schedule's, an operator's action as
/// `cargo lambda invoke` or the console sends it): its JSON answer, or the invocation's error.
pub async fn invoke(app: &Deployment, event: &str) -> Result<Value, String> {
    let req = wxinvoice::runtime::request_from_json(event).expect("the event converts");
    match Box::pin(http::get_token(app, req)).await {
        Ok(resp) => Ok(body_json(&resp)),
        Err(e) => Err(e.to_string()),
    }
}

/// An operator's rotation of `app`'s own token (what `{"action":"rotate"}` does), answered as
/// getToken would: 200 with the new token, or the error's envelope.
pub async fn rotate(app: &Deployment) -> (u16, Value) {
    match app
        .tokens
        .get(wxinvoice::token::Mode::Rotate, &deadline())
        .await
    {
        Ok(served) => {
            let token = served.state.access_token.map(|c| c.value);
            (200, json!({ "access_token": token }))
        }
        Err(e) => reply(&http::ApiError::from(e).into_response()),
    }
}

/// getToken's checks before any I/O (path, method, query): the page URL it would sign, or the
/// refusal as it is answered.
pub fn check_get_token(config: &Config, req: &Request) -> Result<String, Box<Response<Body>>> {
    http::parse_get_token(config, req)
        .map(|(_, url, _)| url)
        .map_err(|e| Box::new(e.into_response()))
}

/// An invoice endpoint's checks before any I/O (path, method, `token`, body): the refusal as it
/// is answered, if any.
pub fn check_invoice(
    config: &Config,
    req: &Request,
    endpoint: Endpoint,
) -> Result<(), Box<Response<Body>>> {
    let path = endpoint.path();
    let outcome = match endpoint {
        Endpoint::GetToken => return check_get_token(config, req).map(|_| ()),
        Endpoint::GetInvoiceBatch => {
            http::parse_invoice::<GetInvoiceBatchRequest>(config, req, path).map(|_| ())
        }
        Endpoint::GetInvoiceInfo => {
            http::parse_invoice::<InvoiceRef>(config, req, path).map(|_| ())
        }
        Endpoint::UpdateStatus => {
            http::parse_invoice::<UpdateStatusRequest>(config, req, path).map(|_| ())
        }
        Endpoint::UpdateInvoiceStatus => {
            http::parse_invoice::<UpdateInvoiceStatusRequest>(config, req, path).map(|_| ())
        }
    };
    outcome.map_err(|e| Box::new(e.into_response()))
}

/// One method per endpoint, on the harness's instance or (`*_on`) another.
impl Harness {
    /// `call` sent to the harness's instance: the answer as it comes (status, headers, body).
    pub async fn send(&self, call: Call) -> Response<Body> {
        call.send(&self.app).await
    }

    /// `call` sent to the harness's instance: (HTTP status, body).
    pub async fn answer(&self, call: Call) -> (u16, Value) {
        call.answer(&self.app).await
    }

    /// `GET getToken?{query}`.
    pub async fn get_token(&self, query: &str) -> (u16, Value) {
        self.get_token_on(&self.app, query).await
    }

    pub async fn get_token_on(&self, app: &Deployment, query: &str) -> (u16, Value) {
        Endpoint::GetToken.call().query(query).answer(app).await
    }

    /// `GET getToken?{query}` on `app`, which must answer 200: the answer.
    pub async fn get_token_ok_on(&self, app: &Deployment, query: &str) -> Value {
        let (status, v) = self.get_token_on(app, query).await;
        assert_eq!(status, 200, "getToken?{query}: errcode {}", v["errcode"]);
        v
    }

    /// `POST getInvoiceBatch?token={token}` with `body`.
    pub async fn get_invoice_batch(&self, token: &str, body: impl RequestBody) -> (u16, Value) {
        self.get_invoice_batch_on(&self.app, token, body).await
    }

    pub async fn get_invoice_batch_on(
        &self,
        app: &Deployment,
        token: &str,
        body: impl RequestBody,
    ) -> (u16, Value) {
        let call = Endpoint::GetInvoiceBatch.call();
        let call = call.query(&format!("token={token}")).body(body);
        call.answer(app).await
    }

    /// `POST getInvoiceInfo?token={token}` with `body` (one invoice).
    pub async fn get_invoice_info(&self, token: &str, body: impl RequestBody) -> (u16, Value) {
        let call = Endpoint::GetInvoiceInfo.call();
        let call = call.query(&format!("token={token}")).body(body);
        self.answer(call).await
    }

    /// `POST updateStatus?token={token}`: the user's (`OPENID`) invoices of the spec example's
    /// card_id, by encrypt_code, to `status`.
    pub async fn update_status(&self, token: &str, status: &str, codes: &[&str]) -> (u16, Value) {
        self.update_status_on(&self.app, token, status, codes).await
    }

    pub async fn update_status_on(
        &self,
        app: &Deployment,
        token: &str,
        status: &str,
        codes: &[&str],
    ) -> (u16, Value) {
        let body =
            json!({"openid": OPENID, "reimburse_status": status, "invoice_list": refs(codes)});
        let call = Endpoint::UpdateStatus.call();
        let call = call.query(&format!("token={token}")).body(&body);
        call.answer(app).await
    }

    /// `POST updateInvoiceStatus?token={token}`: one invoice of the spec example's card_id to
    /// `status`.
    pub async fn update_invoice_status(
        &self,
        token: &str,
        status: &str,
        code: &str,
    ) -> (u16, Value) {
        let body = json!({"card_id": SEED_CARD, "encrypt_code": code, "reimburse_status": status});
        let call = Endpoint::UpdateInvoiceStatus.call();
        let call = call.query(&format!("token={token}")).body(&body);
        self.answer(call).await
    }

    /// The hourly scheduled event (`schedule-event.json`): its answer, or the invocation's error.
    pub async fn schedule(&self) -> Result<Value, String> {
        self.schedule_on(&self.app).await
    }

    pub async fn schedule_on(&self, app: &Deployment) -> Result<Value, String> {
        invoke(app, &fixture("schedule-event.json")).await
    }

    /// A direct invocation of get-token with `event` (see [`invoke`]).
    pub async fn invoke(&self, event: &str) -> Result<Value, String> {
        invoke(&self.app, event).await
    }

    /// An operator's rotation of the own app's token (see [`rotate`]).
    pub async fn rotate(&self) -> (u16, Value) {
        rotate(&self.app).await
    }

    pub async fn rotate_on(&self, app: &Deployment) -> (u16, Value) {
        rotate(app).await
    }
}
