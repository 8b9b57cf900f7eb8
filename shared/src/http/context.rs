//! What every endpoint knows about its request, built once when it arrives: when it started, its
//! deadline, its ids and who is calling.

use std::time::Instant;

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use crate::domain::apps::Grants;
use crate::domain::clock::now_ms;
use crate::domain::config::Config;
use crate::domain::deadline::Deadline;

pub struct Ctx<'r> {
    pub req: &'r Request,
    pub started: Instant,
    /// The instant this request must have answered by: Lambda's deadline less the reserve for
    /// writing the answer (a fixed budget when the runtime gives none).
    pub deadline: Deadline,
    /// API Gateway's request id (what a front-end developer sees and reports), or Lambda's.
    pub request_id: Option<&'r str>,
    /// Lambda's request id.
    pub function_request_id: Option<&'r str>,
}

impl<'r> Ctx<'r> {
    pub fn new(config: &Config, req: &'r Request) -> Self {
        let lambda_deadline = req.lambda_context_ref().map_or(0, |c| c.deadline);
        let t = &config.timing;
        let deadline = Deadline::from_lambda(
            lambda_deadline,
            now_ms(),
            t.deadline_reserve,
            t.request_budget,
        );
        let function_request_id = req.lambda_context_ref().map(|c| c.request_id.as_str());
        let request_id = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) if ctx.request_id.is_some() => {
                ctx.request_id.as_deref()
            }
            _ => function_request_id.filter(|id| !id.is_empty()),
        };
        Ctx {
            req,
            started: Instant::now(),
            deadline,
            request_id,
            function_request_id,
        }
    }

    /// The apps the caller may use: every one when no JWT authorizer checked the request;
    /// otherwise those its token's `claim` names, and without that claim the deployment's own
    /// app only.
    pub fn grants(&self, claim: &str, own: &str) -> Grants {
        let Some(RequestContext::ApiGatewayV2(ctx)) = self.req.request_context_ref() else {
            return Grants::All;
        };
        let Some(jwt) = ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()) else {
            return Grants::All;
        };
        match jwt.claims.get(claim) {
            Some(names) => Grants::parse(names),
            None => Grants::Only(vec![own.to_string()]),
        }
    }

    /// Who asked: the JWT subject when API Gateway's authorizer checked one, the source address
    /// otherwise.
    pub fn caller(&self) -> String {
        let Some(RequestContext::ApiGatewayV2(ctx)) = self.req.request_context_ref() else {
            return "unknown".into();
        };
        let sub = ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .and_then(|jwt| jwt.claims.get("sub"));
        match (sub, ctx.http.source_ip.as_deref()) {
            (Some(sub), _) => format!("jwt:{sub}"),
            (None, Some(ip)) => format!("ip:{ip}"),
            (None, None) => "unknown".into(),
        }
    }
}
