//! Tenants: the process's `Deployment` (its configuration, the clients it shares, the registry
//! of apps it has met) and one app's runtime (`AppRuntime`: its settings, WeChat client and
//! token service). A request is for the deployment's own app or a registered one (`Tenant`).

pub mod app;
pub mod deployment;
pub mod error;
pub mod registry;

pub use app::{AppRuntime, Tenant};
pub use deployment::Deployment;
pub use error::TenantError;
