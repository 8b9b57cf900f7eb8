//! The integration tests, one binary: each test binary links the AWS SDK, so the areas are
//! modules of this one. They share the process: a test must not rely on being alone in it (see
//! `logs`, which runs its body in a process of its own).
//!
//! `cargo test -p integration-tests --test it -- handlers::` runs one area; the end-to-end tests
//! (`e2e`, ignored unless asked for) need a running gateway: `-- --ignored e2e::`.

mod apps;
mod budget;
mod claims;
mod component;
mod concurrency;
mod day;
mod e2e;
mod faults;
mod frontend;
mod fuzz;
mod handlers;
mod invoices;
mod lifecycle;
mod logs;
mod partial;
mod sweep;
