//! What every DynamoDB table adapter (token store, claim table, call budget) writes the same way:
//! numbers as attributes, and an SDK error as text that names the operation and DynamoDB's error
//! (never a credential).

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

pub fn num(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

pub fn error_text<E: std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> String {
    DisplayErrorContext(&e).to_string()
}
