//! The WeChat API: the client that fetches access_tokens and JS-SDK tickets and forwards invoice
//! calls (`client`, over `transport`), its paths per platform, its errors, and the message crypto
//! of a third-party platform's pushes (`message_crypto`).

pub mod client;
pub mod error;
pub mod message_crypto;
pub mod paths;
mod transport;

pub use client::{AuthorizationInfo, Issued, Reply, TicketKind, WeChatClient};
pub use error::{Call, WeChatError};
pub use paths::{
    Paths, API_DOMAIN_IP_PATH, AUTHORIZER_INFO_PATH, AUTHORIZER_TOKEN_PATH, COMPONENT_TOKEN_PATH,
    MP_PATHS, MP_STABLE_TOKEN_PATH, PRE_AUTH_CODE_PATH, QUERY_AUTH_PATH, WORK_PATHS,
};
