//! Adapters: the gateway's I/O with the world — WeChat's API and its signatures, the token store
//! (DynamoDB, or memory in tests), Secrets Manager, the PDF archive (S3), the audit trail
//! (DynamoDB), the rotation queue (SQS), the AWS SDK's configuration — and the per-request account of time spent in them.

pub mod archive;
pub mod audit;
pub mod aws;
pub mod budget;
pub mod claims;
pub mod component_secret;
pub mod dynamodb;
pub mod metrics;
pub mod queue;
pub mod seal;
pub mod secret;
pub mod sign;
pub mod store;
pub mod wechat;
