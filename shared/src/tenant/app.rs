//! One app's runtime: its effective configuration, settings (none for the deployment's own
//! app), WeChat client and token service, and the audit trail and archive it shares with the
//! deployment.

use std::sync::Arc;

use crate::adapters::archive::Archive;
use crate::adapters::audit::AuditLog;
use crate::adapters::budget::CallBudget;
use crate::adapters::claims::ClaimTable;
use crate::adapters::wechat::WeChatClient;
use crate::domain::apps::AppSettings;
use crate::domain::config::Config;
use crate::token::TokenService;

pub struct AppRuntime {
    pub config: Config,
    /// A registered app's settings; none for the deployment's own app.
    pub settings: Option<AppSettings>,
    pub wechat: WeChatClient,
    pub tokens: TokenService,
    /// The audit trail of status changes, when `AUDIT_TABLE` is set.
    pub audit: Option<AuditLog>,
    /// The PDF archive, when `ARCHIVE_BUCKET` is set.
    pub archive: Option<Arc<Archive>>,
    /// The records of idempotency keys, when `CLAIM_TABLE` is set.
    pub claims: Option<ClaimTable>,
    /// The daily budget of WeChat calls, when `CLAIM_TABLE` is set and `WECHAT_DAILY_BUDGET`
    /// is not 0.
    pub budget: Option<CallBudget>,
}

impl AppRuntime {
    /// The app as the audit trail, the archive and the log lines name it: the appid of the
    /// deployment's own app, the key of a registered one (its token item's key).
    pub fn name(&self) -> &str {
        self.tokens.app()
    }

    /// Whether this is a registered app that is switched on (the deployment's own always is).
    pub fn enabled(&self) -> bool {
        self.settings.as_ref().is_none_or(|s| s.enabled)
    }
}

/// The app a request is for: this deployment's own, or a registered one.
pub enum Tenant<'a> {
    Own(&'a AppRuntime),
    Registered(Arc<AppRuntime>),
}

impl std::ops::Deref for Tenant<'_> {
    type Target = AppRuntime;

    fn deref(&self) -> &AppRuntime {
        match self {
            Tenant::Own(app) => app,
            Tenant::Registered(app) => app,
        }
    }
}
