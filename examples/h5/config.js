// Deploy-time settings of the example pages. The gateway's base URL is fixed here when the pages
// are deployed, never taken from the page's own URL: a crafted link must not be able to send the
// user's chosen invoices to another server.
window.WXINVOICE = {
  // The gateway's base URL, e.g. "https://abc123.execute-api.ap-east-1.amazonaws.com";
  // empty: this page's own origin.
  api: "",
  // With the JWT authorizer on (template parameters JwtIssuer / JwtAudience): a function that
  // returns the expense system's access token for the signed-in user, sent as
  // `Authorization: Bearer …` on every call. null: no header.
  bearer: null,
  // The WeCom page (wecom.html): the corp and agent, registered in the deployment (or the
  // deployment's own, WECHAT_AGENT_ID, with both left empty).
  wecom: { appid: "", agentid: "" },
};
