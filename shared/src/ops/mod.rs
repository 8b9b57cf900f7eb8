//! Operations: what each endpoint does with WeChat for one app, without HTTP. Forwarding with
//! the dead-token retry (`forward`), invoice queries with the single-query fallback (`query`),
//! status changes settled when WeChat's answer does not say (`status`), the daily budget of
//! WeChat calls (`budget`), a WeCom member's openid (`member`), archive work
//! (`archive_work`), page signatures (`sign_page`), the hourly sweep (`sweep`) and the rotation
//! worker it feeds (`rotate`), and a third-party platform's pushes (`component_events`) and its
//! accounts' authorizations (`component_auth`).

pub mod archive_work;
pub mod budget;
pub mod component_auth;
pub mod component_events;
pub mod error;
pub mod forward;
pub mod member;
pub mod query;
pub mod reply;
pub mod rotate;
pub mod sign_page;
pub mod status;
pub mod sweep;

pub use error::OpError;
pub use reply::{How, Payload, Reply, Resolution};
