//! The hourly sweep: rotates the deployment's own app (and a third-party platform's own token),
//! finds the registered apps that have fallen
//! due in the sweep's index (one query; no scan) and sends them to the rotation queue, or, without
//! a queue, rotates them itself; then retries the archive work left pending. Every step runs
//! whatever the others did; the report says what each did.

use futures_util::StreamExt;

use crate::domain::deadline::Deadline;
use crate::ops::archive_work::retry_archives;
use crate::ops::rotate::{rotate_app, Rotation};
use crate::tenant::Deployment;
use crate::token::service::bounded;
use crate::token::{Mode, Served, TokenError};

/// What one sweep did.
pub struct Report {
    /// The deployment's own app.
    pub own: Result<Served, TokenError>,
    pub registered: RegisteredRun,
    /// A third-party platform's own token (`None`: not a platform). Its failure is reported,
    /// not the run's: a platform waiting for its first verify ticket would fail every hour.
    pub component: Option<Result<Served, String>>,
    /// Archive work done, and still pending.
    pub archives_stored: u64,
    pub archives_pending: u64,
}

impl Report {
    /// The own app's failure, when its refresh failed or left a fault.
    pub fn own_failure(&self) -> Option<&TokenError> {
        match &self.own {
            Ok(served) => served.fault.as_ref(),
            Err(e) => Some(e),
        }
    }
}

/// What the sweep did for the registered apps.
#[derive(Default)]
pub struct RegisteredRun {
    /// Apps found due.
    pub due: u64,
    /// Sent to the rotation queue.
    pub queued: u64,
    /// Rotated by the sweep itself (no queue).
    pub refreshed: u64,
    /// Whether this sweep listed every app first (the index had never been completed).
    pub listed: bool,
    /// Apps that could be neither sent nor rotated, by key, with the cause.
    pub failed: Vec<(String, String)>,
}

pub async fn run(deployment: &Deployment, deadline: &Deadline) -> Report {
    let own = deployment.tokens.get(Mode::Scheduled, deadline).await;
    // The own app failing must not leave the registered apps' tokens to expire, nor one
    // registered app stop the archive retries.
    let registered = sweep_registered(deployment, deadline).await;
    let component = match deployment.component_tokens() {
        None => None,
        Some(tokens) => Some(
            tokens
                .get(Mode::Scheduled, deadline)
                .await
                .map_err(|e| e.to_string()),
        ),
    };
    let own_token = own
        .as_ref()
        .ok()
        .and_then(|s| s.state.access_token.as_ref())
        .map(|c| c.value.as_str());
    let (archives_stored, archives_pending) = retry_archives(deployment, own_token, deadline).await;
    Report {
        own,
        registered,
        component,
        archives_stored,
        archives_pending,
    }
}

/// The registered apps due now: sent to the queue, each delayed by its offset, or rotated here,
/// `SCHEDULE_CONCURRENCY` at once; one app failing neither delays nor fails the others.
async fn sweep_registered(deployment: &Deployment, deadline: &Deadline) -> RegisteredRun {
    let mut run = RegisteredRun::default();
    let due = match due_apps(deployment, deadline, &mut run).await {
        Ok(due) => due,
        Err(e) => {
            run.failed.push(("app registry".into(), e.cause()));
            return run;
        }
    };
    run.due = due.len() as u64;
    match &deployment.queue {
        Some(queue) => {
            run.failed = queue.send(&due).await;
            run.queued = run.due - run.failed.len() as u64;
        }
        None => {
            let outcomes: Vec<(String, Rotation)> = futures_util::stream::iter(due)
                .map(|key| async move {
                    let outcome = rotate_app(deployment, &key, deadline).await;
                    (key, outcome)
                })
                .buffer_unordered(deployment.config.schedule_concurrency)
                .collect()
                .await;
            for (key, outcome) in outcomes {
                match outcome {
                    Rotation::Rotated => run.refreshed += 1,
                    Rotation::Failed(cause) => run.failed.push((key, cause)),
                    Rotation::NotDue | Rotation::Gone => {}
                }
            }
        }
    }
    run.failed.sort();
    run
}

/// The sweep's index, queried for the apps due now; listed first when it was never completed
/// (apps registered before it existed are entered, due now).
async fn due_apps(
    deployment: &Deployment,
    deadline: &Deadline,
    run: &mut RegisteredRun,
) -> Result<Vec<String>, TokenError> {
    let store = deployment.store();
    let now = deployment.tokens.clock().now_ms();
    let query = "reading the sweep's index";
    if let Some(due) = bounded(deadline, query, store.due_apps(now)).await? {
        return Ok(due);
    }
    run.listed = true;
    bounded(deadline, "listing the registered apps", store.apps()).await?;
    let due = bounded(deadline, query, store.due_apps(now)).await?;
    Ok(due.unwrap_or_default())
}
