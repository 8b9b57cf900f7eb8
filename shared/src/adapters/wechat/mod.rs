//! The WeChat API: the client that fetches access_tokens and JS-SDK tickets and forwards invoice
//! calls (`client`, over `transport`), its paths per platform, and its errors.

pub mod client;
pub mod error;
pub mod paths;
mod transport;

pub use client::{Issued, Reply, TicketKind, WeChatClient};
pub use error::{Call, WeChatError};
pub use paths::{Paths, API_DOMAIN_IP_PATH, MP_PATHS, MP_STABLE_TOKEN_PATH, WORK_PATHS};
