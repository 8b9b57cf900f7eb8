//! Operations: what each endpoint does with WeChat for one app, without HTTP. Forwarding with
//! the dead-token retry (`forward`), invoice queries with the single-query fallback (`query`),
//! status changes settled when WeChat's answer does not say (`status`), the daily budget of
//! WeChat calls (`budget`), archive work
//! (`archive_work`), page signatures (`sign_page`) and the hourly schedule's report
//! (`schedule`).

pub mod archive_work;
pub mod budget;
pub mod error;
pub mod forward;
pub mod query;
pub mod reply;
pub mod schedule;
pub mod sign_page;
pub mod status;

pub use error::OpError;
pub use reply::{How, Payload, Reply, Resolution};
