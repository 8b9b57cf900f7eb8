//! A WeCom member named by `userid`: its openid, which WeChat's invoice APIs name owners by
//! (`/cgi-bin/user/convert_to_openid`), asked with the same token the change will use. WeCom
//! front ends know the member's userid, not its openid.

use serde::Deserialize;
use serde_json::json;

use crate::adapters::wechat::Call;
use crate::domain::deadline::Deadline;
use crate::ops::budget;
use crate::ops::error::OpError;
use crate::ops::forward::forward;
use crate::tenant::AppRuntime;

/// `userid`'s openid, or `None` when the app is not a WeCom agent (its pages send the openid).
/// WeChat's refusal (60111 for a userid the corp does not have) passes through.
pub async fn openid_of(
    app: &AppRuntime,
    token: Option<String>,
    userid: &str,
    deadline: &Deadline,
) -> Result<Option<String>, OpError> {
    let Some(path) = app.wechat.paths().convert_to_openid else {
        return Ok(None);
    };
    budget::spend(app, 1, deadline).await?;
    let body = json!({ "userid": userid });
    let answer = forward(app, path, Call::Read, token, &body, deadline).await?;
    #[derive(Deserialize)]
    struct Converted {
        openid: String,
    }
    let converted: Converted =
        serde_json::from_slice(&answer.body).map_err(|_| OpError::not_json())?;
    Ok(Some(converted.openid))
}
