//! The count of WeChat calls each app spent today, shared by every instance: one item per app and
//! quota day in the claim table (`budget#<app>#<day>`, dropped by TTL two days after its day),
//! raised by one conditional `ADD` per spend, which refuses a spend that would pass the ceiling.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;

use crate::adapters::dynamodb::{error_text, num};
use crate::adapters::metrics;
use crate::domain::budget;
use crate::domain::deadline::Deadline;

/// Why the count could not be read or raised.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BudgetError {
    #[error("the request's time ran out")]
    Expired,
    #[error("call budget: {0}")]
    DynamoDb(String),
}

/// How a spend went: the day's count after it (or as it stood, when refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    Within { used: u64 },
    Over { used: u64 },
}

#[derive(Clone)]
pub struct CallBudget {
    client: Client,
    table: String,
    /// WeChat calls per app and day.
    pub ceiling: u64,
}

impl CallBudget {
    pub fn new(client: Client, table: impl Into<String>, ceiling: u64) -> Self {
        CallBudget {
            client,
            table: table.into(),
            ceiling,
        }
    }

    /// Counts `calls` more for `app` today, unless the count would pass the ceiling.
    pub async fn spend(
        &self,
        app: &str,
        calls: u64,
        now_ms: u64,
        deadline: &Deadline,
    ) -> Result<Spend, BudgetError> {
        let Some(room) = budget::room_for(calls, self.ceiling) else {
            return Ok(Spend::Over { used: 0 });
        };
        let day = budget::day(now_ms);
        let expires = now_ms / 1000 + budget::secs_left_in_day(now_ms) + 2 * 86_400;
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("budget#{app}#{day}")))
            .update_expression("ADD calls :n SET expires_at = if_not_exists(expires_at, :exp)")
            .condition_expression("attribute_not_exists(calls) OR calls <= :room")
            .expression_attribute_values(":n", num(calls))
            .expression_attribute_values(":room", num(room))
            .expression_attribute_values(":exp", num(expires))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send();
        let sent = metrics::dynamodb(deadline, update)
            .await
            .map_err(|_| BudgetError::Expired)?;
        match sent {
            Ok(out) => Ok(Spend::Within {
                used: out.attributes.as_ref().map(calls_in).unwrap_or(calls),
            }),
            Err(SdkError::ServiceError(se)) => match se.err() {
                UpdateItemError::ConditionalCheckFailedException(ccf) => Ok(Spend::Over {
                    used: ccf.item().map(calls_in).unwrap_or(self.ceiling),
                }),
                _ => Err(dynamo(SdkError::ServiceError(se))),
            },
            Err(e) => Err(dynamo(e)),
        }
    }
}

fn calls_in(item: &std::collections::HashMap<String, AttributeValue>) -> u64 {
    item.get("calls")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn dynamo<E: std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> BudgetError {
    BudgetError::DynamoDb(error_text(e))
}
