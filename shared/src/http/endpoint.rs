//! What every endpoint does around its operation: the request's app (or the answer refusing
//! it), the CORS preflight, the checks before any I/O, the account of dependency time, and the
//! answer with its log line.

use std::future::Future;

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::de::DeserializeOwned;

use crate::adapters::metrics::{self, Spent};
use crate::domain::apps;
use crate::domain::config::Config;
use crate::domain::invoice::{parse_body, Validate};
use crate::http::answer::{answer, Note};
use crate::http::context::Ctx;
use crate::http::cors;
use crate::http::error::ApiError;
use crate::http::query::{app_params, route, token_param};
use crate::tenant::{AppRuntime, Deployment, Tenant, TenantError};

/// The request's app (`resolve`), or an early return of the answer refusing it.
macro_rules! tenant_or_refuse {
    ($deployment:expr, $ctx:expr, $endpoint:expr) => {
        match crate::http::endpoint::tenant($deployment, $ctx, $endpoint).await {
            Ok(tenant) => tenant,
            Err(refusal) => return Ok(*refusal),
        }
    };
}
pub(crate) use tenant_or_refuse;

/// The app the request names, or the answer refusing it (logged, with the deployment's own
/// CORS).
pub async fn tenant<'a>(
    deployment: &'a Deployment,
    ctx: &Ctx<'_>,
    endpoint: &str,
) -> Result<Tenant<'a>, Box<Response<Body>>> {
    let resolved = match app_params(ctx.req) {
        Ok((appid, agentid)) => {
            let own = deployment.config.appid.as_str();
            let grants = ctx.grants(&deployment.config.apps_claim, own);
            if grants.allows(appid, agentid, own) {
                deployment
                    .resolve(appid, agentid, &ctx.deadline)
                    .await
                    .map_err(ApiError::from)
            } else {
                // Another company's app: the answer an unknown app gets, with nothing read.
                let key = apps::key(appid.unwrap_or(own), agentid);
                Err(TenantError::NoSuchApp(TenantError::name(&key)).into())
            }
        }
        Err(e) => Err(e),
    };
    resolved.map_err(|e| {
        let own = deployment.own();
        Box::new(answer(
            deployment,
            own,
            endpoint,
            ctx,
            Spent::default(),
            Err(e),
        ))
    })
}

/// Everything an invoice endpoint checks before any I/O: path, method, the `token` parameter
/// and the body.
pub fn parse_invoice<T: DeserializeOwned + Validate>(
    config: &Config,
    req: &Request,
    path: &str,
) -> Result<(Option<String>, T), ApiError> {
    route(req, path, Method::POST)?;
    let token = token_param(config, req)?;
    let body: T = parse_body(req.body().as_ref(), &config.limits)?;
    body.validate(&config.limits)?;
    Ok((token, body))
}

/// An invoice endpoint for `app`: the preflight, the checks, then `call` with the `token`
/// parameter and the body, measured and answered.
pub async fn invoice<T, F, Fut>(
    deployment: &Deployment,
    app: &AppRuntime,
    ctx: &Ctx<'_>,
    path: &'static str,
    call: F,
) -> Response<Body>
where
    T: DeserializeOwned + Validate,
    F: FnOnce(Option<String>, T) -> Fut,
    Fut: Future<Output = Result<(Response<Body>, Note), ApiError>>,
{
    if let Some(resp) = cors::preflight(&app.config, ctx.req, path, "POST") {
        return resp;
    }
    let (result, spent) = metrics::measured(async {
        let (token, body) = parse_invoice::<T>(&app.config, ctx.req, path)?;
        // Boxed: the WeChat call's future inline nests deeper than rustc's layout limit.
        Box::pin(call(token, body)).await
    })
    .await;
    answer(deployment, app, path, ctx, spent, result)
}
