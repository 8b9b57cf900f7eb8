//! WeChat's API paths, per platform.

/// WeChat's paths for one platform.
#[derive(Debug, Clone, Copy)]
pub struct Paths {
    pub token: &'static str,
    pub jsapi_ticket: &'static str,
    pub wx_card_ticket: &'static str,
    pub invoice_batch: &'static str,
    pub update_status_batch: &'static str,
    pub invoice_info: &'static str,
    pub update_status_one: &'static str,
    /// WeCom only: a member's userid to the openid the invoice APIs name owners by.
    pub convert_to_openid: Option<&'static str>,
}

/// Official Accounts (api.weixin.qq.com); with `WECHAT_TOKEN_API=stable` the token comes from
/// `/cgi-bin/stable_token` instead.
pub const MP_PATHS: Paths = Paths {
    token: "/cgi-bin/token",
    jsapi_ticket: "/cgi-bin/ticket/getticket",
    wx_card_ticket: "/cgi-bin/ticket/getticket",
    invoice_batch: "/card/invoice/reimburse/getinvoicebatch",
    update_status_batch: "/card/invoice/reimburse/updatestatusbatch",
    invoice_info: "/card/invoice/reimburse/getinvoiceinfo",
    update_status_one: "/card/invoice/reimburse/updateinvoicestatus",
    convert_to_openid: None,
};

pub const MP_STABLE_TOKEN_PATH: &str = "/cgi-bin/stable_token";

/// A third-party platform's own token (`component_access_token`), on the Official Accounts' host.
pub const COMPONENT_TOKEN_PATH: &str = "/cgi-bin/component/api_component_token";

/// An authorized account's token, refreshed by its platform with its refresh token.
pub const AUTHORIZER_TOKEN_PATH: &str = "/cgi-bin/component/api_authorizer_token";
/// The exchange of an authorization code for the account's tokens and granted permission sets.
pub const QUERY_AUTH_PATH: &str = "/cgi-bin/component/api_query_auth";
/// A pre-auth code, which opens the authorization page for one customer.
pub const PRE_AUTH_CODE_PATH: &str = "/cgi-bin/component/api_create_preauthcode";
/// An authorized account's kind and name.
pub const AUTHORIZER_INFO_PATH: &str = "/cgi-bin/component/api_get_authorizer_info";

/// WeChat's API addresses (`/cgi-bin/get_api_domain_ip`, one path on Official Accounts and WeCom):
/// needs a live access_token and spends no token quota, so it answers "is this token alive".
pub const API_DOMAIN_IP_PATH: &str = "/cgi-bin/get_api_domain_ip";

/// WeCom (qyapi.weixin.qq.com): note `getinvoiceinfobatch`, not the Official Account name.
pub const WORK_PATHS: Paths = Paths {
    token: "/cgi-bin/gettoken",
    jsapi_ticket: "/cgi-bin/get_jsapi_ticket",
    wx_card_ticket: "/cgi-bin/ticket/get",
    invoice_batch: "/cgi-bin/card/invoice/reimburse/getinvoiceinfobatch",
    update_status_batch: "/cgi-bin/card/invoice/reimburse/updatestatusbatch",
    invoice_info: "/cgi-bin/card/invoice/reimburse/getinvoiceinfo",
    update_status_one: "/cgi-bin/card/invoice/reimburse/updateinvoicestatus",
    convert_to_openid: Some("/cgi-bin/user/convert_to_openid"),
};
