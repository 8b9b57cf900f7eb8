//! Spending the app's daily budget of WeChat calls before making them: every invoice call the
//! gateway makes for a request is counted, in one conditional update per phase (the call itself;
//! single queries when the batch cannot be used; the read back of a change), so a normal request
//! costs one DynamoDB update. A budget that cannot be read does not stop the request: it guards
//! WeChat's quota, and WeChat still enforces that.

use crate::adapters::budget::Spend;
use crate::adapters::metrics;
use crate::domain::budget::percent;
use crate::domain::clock::now_ms;
use crate::domain::deadline::Deadline;
use crate::ops::error::OpError;
use crate::tenant::AppRuntime;

/// Counts `calls` WeChat calls for `app`, or refuses them when today's budget would pass its
/// ceiling.
pub async fn spend(app: &AppRuntime, calls: usize, deadline: &Deadline) -> Result<(), OpError> {
    let Some(budget) = &app.budget else {
        return Ok(());
    };
    let ceiling = budget.ceiling;
    match budget
        .spend(app.name(), calls as u64, now_ms(), deadline)
        .await
    {
        Ok(Spend::Within { used }) => {
            metrics::budget_seen(percent(used, ceiling));
            Ok(())
        }
        Ok(Spend::Over { used }) => {
            metrics::budget_seen(percent(used, ceiling).max(100));
            Err(OpError::OverBudget { ceiling })
        }
        Err(e) => {
            tracing::warn!(event = "wechat_budget_unchecked", error = %e, "WeChat call budget not counted");
            Ok(())
        }
    }
}
