//! The token lifecycle: serve the stored access_token and tickets (through a short in-process
//! cache), and refresh them single-flight across all Lambda instances under the store's lock.
//! `lifecycle` holds the pure decisions, `service` serves, `refresh` takes the lock, fetches and
//! publishes; `served` says what a request got and how, `error` why it got nothing.

pub mod error;
pub mod lifecycle;
pub mod refresh;
pub mod served;
pub mod service;

pub use error::{TokenError, Unavailable};
pub use served::{Mode, Served, Source};
pub use service::TokenService;
