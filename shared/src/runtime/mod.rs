//! The Lambda runtime: process set-up (TLS roots, logs), events made safe before lambda_http
//! converts them, and the serving loop.

pub mod logs;
pub mod serve;

pub use logs::{init_tracing, init_tracing_with, log_filter};
pub use serve::{request_from_json, run};

/// Process-wide set-up, first thing in `main` while the process has a single thread (the
/// binaries run tokio's current-thread runtime: a Lambda process serves one event at a time).
pub fn init_process() {
    crate::adapters::aws::prefer_ca_bundle_file();
    init_tracing();
}
