//! An account's authorization of the deployment's third-party platform, and its withdrawal. The
//! code from WeChat's page (or from the `authorized` / `updateauthorized` push) is exchanged with
//! `api_query_auth`; an account that did not grant permission set 26 (微信电子发票) is refused,
//! saying so; otherwise it becomes an app of the deployment with no AppSecret, its first token
//! and its refresh token published under its lock. `unauthorized` disables it (its item, and the
//! trail, kept) and so stops its rotation. An event older than what is recorded for the account
//! changes nothing.

use crate::adapters::store::StoreError;
use crate::adapters::wechat::{AuthorizationInfo, WeChatError};
use crate::domain::apps::{self, AppSettings, Authorization, Kind, INVOICE_PERMISSION};
use crate::domain::component::{self, Links, Offered};
use crate::domain::config::TokenApi;
use crate::domain::deadline::Deadline;
use crate::tenant::Deployment;
use crate::token::service::bounded;
use crate::token::{Mode, TokenError};

/// An account registered (or updated) by its authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    pub appid: String,
    pub kind: Kind,
    pub permissions: Vec<u64>,
    /// It had authorized before (its settings were updated, not created).
    pub updated: bool,
}

/// What a withdrawal came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withdrawn {
    /// Disabled now.
    Disabled,
    /// Nothing to do: not registered by an authorization, disabled already, or authorized again
    /// after the event.
    Unchanged,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("this deployment is not a third-party platform (COMPONENT_SECRET_ARN is not set)")]
    NotAPlatform,
    #[error("the account {appid} did not grant permission set 26 (微信电子发票), which the invoice APIs need; it granted {granted:?}: ask it to authorize again with set 26")]
    MissingInvoicePermission { appid: String, granted: Vec<u64> },
    #[error("WeChat issued no token for the account {0}: it has no API permission")]
    NoToken(String),
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error("{0}")]
    WeChat(#[from] WeChatError),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        AuthError::Token(e.into())
    }
}

/// A pre-auth code for one customer, and the authorization page's links for it (the return to
/// `redirect_uri` carries `auth_code`): (links, seconds the code lasts).
pub async fn authorization_links(
    deployment: &Deployment,
    redirect_uri: &str,
    offered: Offered,
    biz_appid: Option<&str>,
    deadline: &Deadline,
) -> Result<(Links, u64), AuthError> {
    let platform = deployment
        .component_tokens()
        .ok_or(AuthError::NotAPlatform)?;
    let served = platform.get(Mode::Auto, deadline).await?;
    let token = served.access_token()?;
    let wechat = platform.wechat_client();
    let component = wechat.component_appid(deadline).await?;
    let code = wechat.pre_auth_code(&component, token, deadline).await?;
    let links =
        component::authorization_links(&component, &code.value, redirect_uri, offered, biz_appid);
    Ok((links, code.expires_in))
}

/// Exchanges `code` and registers the account; `at_ms`: when the authorization happened (the
/// push's CreateTime, or now for the return from WeChat's page).
pub async fn authorize(
    deployment: &Deployment,
    code: &str,
    at_ms: u64,
    deadline: &Deadline,
) -> Result<Authorized, AuthError> {
    let platform = deployment
        .component_tokens()
        .ok_or(AuthError::NotAPlatform)?;
    let served = platform.get(Mode::Auto, deadline).await?;
    let token = served.access_token()?.to_string();
    let wechat = platform.wechat_client();
    let component = wechat.component_appid(deadline).await?;
    let info: AuthorizationInfo = wechat
        .query_auth(&component, &token, code, deadline)
        .await?;
    if !info.permissions.contains(&INVOICE_PERMISSION) {
        return Err(AuthError::MissingInvoicePermission {
            appid: info.appid,
            granted: info.permissions,
        });
    }
    let (Some(issued), Some(refresh)) = (&info.token, &info.refresh_token) else {
        return Err(AuthError::NoToken(info.appid));
    };
    let mini = wechat
        .authorizer_is_mini(&component, &token, &info.appid, deadline)
        .await?;
    let key = apps::key(&info.appid, None);
    let load = deployment.store().load(&key);
    let stored = bounded(deadline, "reading the app registry", load).await?;
    let earlier = stored.settings.as_deref().cloned();
    // The vendor's pages serve every customer: an account's origins and page are the
    // deployment's unless the operator set its own.
    let own = &deployment.own().config;
    let settings = AppSettings {
        kind: if mini { Kind::Mini } else { Kind::Mp },
        appid: info.appid.clone(),
        agentid: None,
        token_api: TokenApi::Classic,
        secret_name: String::new(),
        origins: earlier
            .as_ref()
            .map_or_else(|| own.allowed_origins.clone(), |e| e.origins.clone()),
        jssdk_url: earlier
            .as_ref()
            .map_or_else(|| Some(own.jssdk_url.clone()), |e| e.jssdk_url.clone()),
        enabled: true,
        authorization: Some(Authorization {
            permissions: info.permissions.clone(),
            authorized_ms: at_ms,
        }),
    };
    let put = deployment.store().put_app(&settings);
    bounded(deadline, "registering the account", put).await?;
    // The refresh token is published with the token, under the account's lock.
    let app = deployment.registered_runtime(settings.clone(), &stored);
    app.tokens.adopt(issued, refresh, deadline).await?;
    Ok(Authorized {
        appid: info.appid,
        kind: settings.kind,
        permissions: info.permissions,
        updated: earlier.is_some_and(|e| e.authorization.is_some()),
    })
}

/// The account `appid` withdrew its authorization at `at_ms`: disabled, unless it authorized
/// again since.
pub async fn withdraw(
    deployment: &Deployment,
    appid: &str,
    at_ms: u64,
    deadline: &Deadline,
) -> Result<Withdrawn, AuthError> {
    let key = apps::key(appid, None);
    let load = deployment.store().load(&key);
    let stored = bounded(deadline, "reading the app registry", load).await?;
    let Some(mut settings) = stored.settings.map(|s| *s) else {
        return Ok(Withdrawn::Unchanged);
    };
    let current = settings
        .authorization
        .as_ref()
        .is_some_and(|a| a.authorized_ms <= at_ms);
    if !settings.enabled || !current {
        return Ok(Withdrawn::Unchanged);
    }
    settings.enabled = false;
    let put = deployment.store().put_app(&settings);
    bounded(deadline, "disabling the account", put).await?;
    Ok(Withdrawn::Disabled)
}
