//! wxinvoice: a serverless gateway that lets pages inside WeChat and WeCom pick e-invoices from
//! the user's card wallet and run them through reimbursement. The three Lambda binaries are thin;
//! everything lives here, split by concern.

pub mod app;
pub mod config;
pub mod envelope;
pub mod handlers;
pub mod invoice;
pub mod sign;
pub mod store;
pub mod token;
pub mod wechat;

pub use app::App;

/// Structured logs: `RUST_LOG`/`AWS_LAMBDA_LOG_LEVEL` for the level, `AWS_LAMBDA_LOG_FORMAT=JSON`
/// for JSON lines.
pub fn init_tracing() {
    lambda_http::tracing::init_default_subscriber();
}
