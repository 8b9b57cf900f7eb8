//! The rotation queue (SQS): the hourly sweep sends each registered app that fell due as one
//! message, delayed by the app's offset; the get-token function, as the queue's worker, rotates
//! them. Batches of ten (SQS's limit per call), `SCHEDULE_CONCURRENCY` calls at once.

use aws_config::SdkConfig;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;
use futures_util::StreamExt;

use crate::adapters::dynamodb::error_text;
use crate::domain::config::Config;
use crate::domain::sweep::{offset_secs, RotateApp};

/// SQS's most messages per SendMessageBatch.
const BATCH: usize = 10;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("rotation queue: {0}")]
pub struct QueueError(pub String);

#[derive(Clone)]
pub struct RotationQueue {
    client: Client,
    url: String,
    spread_secs: u64,
    /// SendMessageBatch calls in flight at once.
    in_flight: usize,
}

impl RotationQueue {
    /// The configured queue (`ROTATION_QUEUE_URL`), if any; its calls bounded like DynamoDB's.
    pub fn from_config(config: &Config, sdk: &SdkConfig) -> Option<Self> {
        let url = config.rotation_queue.clone()?;
        let conf = aws_sdk_sqs::config::Builder::from(sdk)
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(config.timing.dynamodb_timeout)
                    .operation_timeout(config.timing.dynamodb_timeout)
                    .build(),
            )
            .build();
        Some(RotationQueue {
            client: Client::from_conf(conf),
            url,
            spread_secs: config.rotation_spread.as_secs(),
            in_flight: config.schedule_concurrency,
        })
    }

    /// Sends one message per app, each delayed by its offset. Answers the apps that could not
    /// be sent, with the cause (the next sweep finds them again: they stay due).
    pub async fn send(&self, apps: &[String]) -> Vec<(String, String)> {
        let batches: Vec<Vec<String>> = apps.chunks(BATCH).map(<[String]>::to_vec).collect();
        futures_util::stream::iter(batches)
            .map(|batch| async move { self.send_batch(batch).await })
            .buffer_unordered(self.in_flight)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    async fn send_batch(&self, batch: Vec<String>) -> Vec<(String, String)> {
        let mut entries = Vec::with_capacity(batch.len());
        for (i, app) in batch.iter().enumerate() {
            let body = serde_json::to_string(&RotateApp { app: app.clone() })
                .unwrap_or_else(|_| String::new());
            let entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(body)
                .delay_seconds(offset_secs(app, self.spread_secs) as i32)
                .build();
            match entry {
                Ok(e) => entries.push(e),
                Err(e) => return batch.iter().map(|a| (a.clone(), e.to_string())).collect(),
            }
        }
        let sent = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await;
        match sent {
            Ok(out) => out
                .failed
                .iter()
                .filter_map(|f| {
                    let app = batch.get(f.id.parse::<usize>().ok()?)?;
                    let cause = format!("rotation queue: {} {}", f.code, f.message().unwrap_or(""));
                    Some((app.clone(), cause))
                })
                .collect(),
            Err(e) => {
                let cause = QueueError(error_text(e)).to_string();
                batch.into_iter().map(|a| (a, cause.clone())).collect()
            }
        }
    }
}
