//! The contract's paths.

pub const GET_TOKEN_PATH: &str = "/core/r/api/weChat/getToken";
pub const GET_INVOICE_BATCH: &str = "/core/r/api/weChat/getInvoiceBatch";
pub const UPDATE_STATUS: &str = "/core/r/api/weChat/updateStatus";
pub const GET_INVOICE_INFO: &str = "/core/r/api/weChat/getInvoiceInfo";
pub const UPDATE_INVOICE_STATUS: &str = "/core/r/api/weChat/updateInvoiceStatus";
/// A third-party platform's authorization-event URL (get-token, with `COMPONENT_SECRET_ARN`).
pub const COMPONENT_EVENTS: &str = "/core/r/api/weChat/component/events";
/// A third-party platform's authorization links, for the vendor's admin page.
pub const COMPONENT_AUTHORIZE: &str = "/core/r/api/weChat/component/authorize";
/// Where WeChat's authorization page returns the customer, with `auth_code`.
pub const COMPONENT_AUTHORIZED: &str = "/core/r/api/weChat/component/authorized";
