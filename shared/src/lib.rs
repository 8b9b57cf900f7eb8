//! wxinvoice: a serverless gateway that lets pages inside WeChat and WeCom pick e-invoices from
//! the user's card wallet and run them through reimbursement. The three Lambda binaries are thin;
//! everything lives here, split by concern.

pub mod answers;
pub mod app;
pub mod apps;
pub mod archive;
pub mod audit;
pub mod config;
pub mod deadline;
pub mod envelope;
pub mod handlers;
pub mod invoice;
pub mod lifecycle;
pub mod outcome;
pub mod runtime;
pub mod secret;
pub mod sign;
pub mod store;
pub mod telemetry;
pub mod token;
pub mod wechat;

pub use app::App;

use lambda_http::tracing::subscriber::filter::{EnvFilter, LevelFilter};
use lambda_http::tracing::subscriber::fmt::MakeWriter;

/// Process-wide set-up, first thing in `main` while the process has a single thread (the
/// binaries run tokio's current-thread runtime: a Lambda process serves one event at a time).
pub fn init_process() {
    app::prefer_ca_bundle_file();
    init_tracing();
}

/// Structured logs to stdout: the level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (INFO by
/// default), JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON`.
pub fn init_tracing() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    init_tracing_with(&level, json, std::io::stdout);
}

/// The gateway's own events at `level`; every dependency at INFO at most, whatever `level` says:
/// at DEBUG and TRACE the HTTP clients, the AWS SDK and the Lambda runtime log URLs and
/// payloads, which carry the AppSecret, access tokens and tickets.
pub fn log_filter(level: &str) -> EnvFilter {
    let level: LevelFilter = level.trim().parse().unwrap_or(LevelFilter::INFO);
    let deps = level.min(LevelFilter::INFO);
    EnvFilter::new(format!("{deps},wxinvoice={level}"))
}

pub fn init_tracing_with<W>(level: &str, json: bool, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = lambda_http::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(log_filter(level))
        .with_writer(writer);
    if json {
        // Fields at the top level of each line, as Lambda Powertools writes them: a Logs
        // Insights query or a metric filter reads `errcode`, not `fields.errcode`; a line with
        // metrics is also an EMF document (see `telemetry`).
        builder.event_format(telemetry::JsonLines).init();
    } else {
        builder.init();
    }
}
