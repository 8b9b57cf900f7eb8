//! The rotation worker: one registered app the sweep found due, rotated under its own lock. The
//! app's item is read once; an app rotated since the sweep (a duplicate delivery, a request that
//! refreshed it, a retry) costs that read and nothing else.

use futures_util::StreamExt;

use crate::domain::apps;
use crate::domain::deadline::Deadline;
use crate::domain::sweep::RotateApp;
use crate::tenant::deployment::registered_timing;
use crate::tenant::Deployment;
use crate::token::lifecycle::{self, Want};
use crate::token::TokenError;

/// What the worker did with one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// Rotated now.
    Rotated,
    /// Not due (rotated since the sweep): one read.
    NotDue,
    /// Removed or disabled since the sweep: one read, nothing to rotate.
    Gone,
    /// Due and not rotated; retried (SQS redelivers it), then left to the dead-letter queue.
    Failed(String),
}

impl Rotation {
    pub fn as_str(&self) -> &'static str {
        match self {
            Rotation::Rotated => "rotated",
            Rotation::NotDue => "not_due",
            Rotation::Gone => "gone",
            Rotation::Failed(_) => "failed",
        }
    }
}

/// Rotates `key`'s app if it is due.
pub async fn rotate_app(deployment: &Deployment, key: &str, deadline: &Deadline) -> Rotation {
    if !apps::is_registered_key(key) {
        return Rotation::Gone;
    }
    let state = match deployment.load_app(key, deadline).await {
        Ok(state) => state,
        Err(e) => return Rotation::Failed(e.to_string()),
    };
    let Some(settings) = state.settings.clone().map(|s| *s).filter(|s| s.enabled) else {
        return Rotation::Gone;
    };
    let timing = registered_timing(&deployment.config, settings.kind);
    let now = deployment.tokens.clock().now_ms();
    if lifecycle::satisfied(&Want::Scheduled, &state, now, &timing) {
        return Rotation::NotDue;
    }
    let runtime = deployment.registered_runtime(settings, &state);
    match runtime.tokens.rotate_due(state, deadline).await {
        Ok(served) => match served.fault {
            None => Rotation::Rotated,
            Some(fault) => Rotation::Failed(fault.cause()),
        },
        // Removed between the read and the lock.
        Err(TokenError::AppRemoved(_)) => Rotation::Gone,
        Err(e) => Rotation::Failed(e.cause()),
    }
}

/// One message of the rotation queue: its id and body.
pub struct Message {
    pub id: String,
    pub body: String,
}

/// What one worker invocation did: per message, the app (when the body named one) and the
/// outcome. A body that is not a `RotateApp` fails (after SQS's retries it reaches the
/// dead-letter queue, whose alarm shows it).
pub async fn rotate_batch(
    deployment: &Deployment,
    messages: Vec<Message>,
    deadline: &Deadline,
) -> Vec<(Message, Option<String>, Rotation)> {
    futures_util::stream::iter(messages)
        .map(|m| async move {
            match serde_json::from_str::<RotateApp>(&m.body) {
                Ok(RotateApp { app }) => {
                    let outcome = rotate_app(deployment, &app, deadline).await;
                    (m, Some(app), outcome)
                }
                Err(_) => {
                    let failed = Rotation::Failed("the message names no app".into());
                    (m, None, failed)
                }
            }
        })
        .buffer_unordered(deployment.config.schedule_concurrency)
        .collect()
        .await
}
