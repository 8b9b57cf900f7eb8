//! HTTP: the contract's endpoints, one file each, over what every endpoint shares — the request
//! context built once (`context`), the checks of path, method and query (`query`), the
//! envelope and its hints (`envelope`), the HTTP errors into which every lower layer's error is
//! converted (`error`), CORS (`cors`), and the answer with its log line (`answer`). Direct
//! invocations of get-token (the schedule, the operator's rotation) are `direct`; a third-party
//! platform's pushes reach get-token at `component_events`, its authorization links and the
//! customer's return at `component_authorize`.

pub mod answer;
pub mod component_authorize;
pub mod component_events;
pub mod context;
pub mod cors;
pub mod direct;
pub mod endpoint;
pub mod envelope;
pub mod error;
pub mod get_invoice_batch;
pub mod get_invoice_info;
pub mod get_token;
pub mod idempotent;
pub mod paths;
pub mod query;
pub mod routes;
pub mod update_invoice_status;
pub mod update_status;

pub use endpoint::parse_invoice;
pub use error::ApiError;
pub use get_invoice_batch::get_invoice_batch;
pub use get_invoice_info::get_invoice_info;
pub use get_token::{get_token, parse_get_token};
pub use paths::{
    GET_INVOICE_BATCH, GET_INVOICE_INFO, GET_TOKEN_PATH, UPDATE_INVOICE_STATUS, UPDATE_STATUS,
};
pub use routes::{invoice_query, invoice_status};
pub use update_invoice_status::update_invoice_status;
pub use update_status::update_status;
