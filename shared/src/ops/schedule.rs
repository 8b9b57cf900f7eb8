//! The hourly schedule: rotates whatever would expire before the next run, for the deployment's
//! own app and every registered one, then retries the archive work left pending. Every step runs
//! whatever the others did; the report says what each did.

use futures_util::StreamExt;

use crate::domain::deadline::Deadline;
use crate::ops::archive_work::retry_archives;
use crate::tenant::Deployment;
use crate::token::lifecycle::{self, Want};
use crate::token::{Mode, Served, TokenError};

/// What one scheduled run did.
pub struct Report {
    /// The deployment's own app.
    pub own: Result<Served, TokenError>,
    pub registered: RegisteredRun,
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

/// What the schedule did for the registered apps.
#[derive(Default)]
pub struct RegisteredRun {
    pub registered: u64,
    pub due: u64,
    pub refreshed: u64,
    /// Apps that could not be rotated, by key, with the cause.
    pub failed: Vec<(String, String)>,
}

pub async fn run(deployment: &Deployment, deadline: &Deadline) -> Report {
    let own = deployment.tokens.get(Mode::Scheduled, deadline).await;
    // The own app failing must not leave the registered apps' tokens to expire, nor one
    // registered app stop the archive retries.
    let registered = refresh_registered(deployment, deadline).await;
    let own_token = own
        .as_ref()
        .ok()
        .and_then(|s| s.state.access_token.as_ref())
        .map(|c| c.value.as_str());
    let (archives_stored, archives_pending) = retry_archives(deployment, own_token, deadline).await;
    Report {
        own,
        registered,
        archives_stored,
        archives_pending,
    }
}

/// Every enabled registered app whose credentials will not last until the next run is
/// refreshed under its own lock, `SCHEDULE_CONCURRENCY` at once; one app failing neither delays
/// nor fails the others. Apps not due cost nothing beyond the scan.
async fn refresh_registered(deployment: &Deployment, deadline: &Deadline) -> RegisteredRun {
    let mut run = RegisteredRun::default();
    let apps = match deployment.registered_apps().await {
        Ok(apps) => apps,
        Err(e) => {
            let cause = TokenError::from(e).cause();
            run.failed.push(("app registry".into(), cause));
            return run;
        }
    };
    let now = deployment.tokens.clock().now_ms();
    let mut due = Vec::new();
    for (key, state) in apps {
        let Some(settings) = state.settings.clone().map(|s| *s).filter(|s| s.enabled) else {
            continue;
        };
        run.registered += 1;
        let mut timing = deployment.config.timing;
        timing.tickets = settings.kind.tickets();
        if !lifecycle::satisfied(&Want::Scheduled, &state, now, &timing) {
            due.push((key, settings, state));
        }
    }
    run.due = due.len() as u64;
    let results: Vec<(String, Result<Served, TokenError>)> = futures_util::stream::iter(due)
        .map(|(key, settings, state)| async move {
            let runtime = deployment.registered_runtime(settings, &state);
            let result = runtime.tokens.get(Mode::Scheduled, deadline).await;
            (key, result)
        })
        .buffer_unordered(deployment.config.schedule_concurrency)
        .collect()
        .await;
    for (key, result) in results {
        match result {
            Ok(served) => match served.fault {
                None => run.refreshed += 1,
                Some(fault) => run.failed.push((key, fault.cause())),
            },
            // Removed since the listing: nothing to rotate, nothing failed.
            Err(TokenError::AppRemoved(_)) => {}
            Err(e) => run.failed.push((key, e.cause())),
        }
    }
    run.failed.sort();
    run
}
