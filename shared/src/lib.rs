//! wxinvoice: a serverless gateway that lets pages inside WeChat, WeCom and mini programs pick
//! e-invoices from the user's card wallet and run them through reimbursement. The three Lambda
//! binaries are thin; everything lives here.
//!
//! # Layout
//!
//! Layers, each importing only from the layers above it in this list (`tests/layout` checks it,
//! and that no module imports another in a cycle):
//!
//! 1. [`domain`]: types and pure decisions — configuration, invoices and their statuses, apps,
//!    the token state, outcomes of status changes, origins, the clock and the deadline, the
//!    sweep's offsets.
//! 2. [`adapters`]: I/O — the WeChat client and signatures, the token store (DynamoDB, memory)
//!    with the registry's and the sweep's indexes, Secrets Manager, the PDF archive (S3), the
//!    audit trail, the rotation queue (SQS), the AWS SDK, per-request metrics.
//! 3. [`token`]: the token lifecycle — decisions (`lifecycle`), serving (`service`), refreshing
//!    under the lock (`refresh`).
//! 4. [`tenant`]: the process's `Deployment` and one app's `AppRuntime`; which app a request is
//!    for (`registry`).
//! 5. [`ops`]: what endpoints do with WeChat — forwarding with the dead-token retry, queries
//!    with the single-query fallback, status changes with their settlement, archive work, page
//!    signatures, the hourly sweep (`sweep`) and the rotation worker it feeds (`rotate`).
//! 6. [`http`]: one file per endpoint, the request context, query checks, the envelope and the
//!    HTTP errors every lower error becomes, CORS, the answer and its log line. Nothing below
//!    this layer knows HTTP or `lambda_http`.
//! 7. [`runtime`]: the Lambda runtime — process set-up, logs, events made safe, serving.
//!
//! Each layer has its own error enum (`InputError`, `WeChatError`/`StoreError`/…, `TokenError`,
//! `TenantError`, `OpError`), converted once, into `http::ApiError`.

pub mod adapters;
pub mod domain;
pub mod http;
pub mod ops;
pub mod runtime;
pub mod tenant;
pub mod token;

pub use tenant::Deployment;
