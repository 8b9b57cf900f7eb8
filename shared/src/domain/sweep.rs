//! The hourly sweep's decisions: which moment an app falls due is `token::lifecycle::falls_due`;
//! here, the message that carries an app to the worker and the offset each app's rotation is
//! delayed by.
//!
//! The sweep runs once an hour and sends every registered app that has fallen due to the
//! rotation queue, each delayed by an offset of its own (a hash of its key, so an app keeps its
//! minute of the hour) within `ROTATION_SPREAD_SECS`. An app that falls due just after a sweep is
//! found by the next one, an hour later, and rotated up to the spread after that, so a
//! registered app rotated through the queue falls due `REFRESH_AHEAD_SECS` (the hour and the
//! 300 s margin within which a request would refresh itself) plus the spread before its
//! credentials end (`with_spread`). A backlog beyond that is still safe (a request refreshes a
//! token within the margin itself, single flight) but makes those requests wait.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::timing::Timing;

/// Default spread of the hour's rotations.
pub const DEFAULT_SPREAD_SECS: u64 = 600;

/// SQS's longest message delay.
pub const MAX_SPREAD_SECS: u64 = 900;

/// One app to rotate: what the sweep sends and the worker reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateApp {
    /// The app's key (`app#…`).
    pub app: String,
}

/// A registered app's timing when rotations go through the queue: it falls due the spread
/// earlier than the deployment's own app.
pub fn with_spread(mut timing: Timing, spread: Duration) -> Timing {
    timing.rotate_ahead += spread;
    timing
}

/// The app's delay within the spread, in seconds: the same every hour, so an app rotated at
/// minute 7 keeps minute 7, and the deployment's apps are spread evenly.
pub fn offset_secs(key: &str, spread_secs: u64) -> u64 {
    if spread_secs == 0 {
        return 0;
    }
    let digest = Sha256::digest(key.as_bytes());
    let head = u64::from_be_bytes(digest[..8].try_into().unwrap_or_default());
    head % spread_secs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stable_bounded_and_spread() {
        assert_eq!(offset_secs("app#wx1", 0), 0);
        assert_eq!(offset_secs("app#wx1", 600), offset_secs("app#wx1", 600));
        let offsets: Vec<u64> = (0..2000)
            .map(|i| offset_secs(&format!("app#wxscale{i:05}"), 600))
            .collect();
        assert!(offsets.iter().all(|&o| o < 600));
        // Ten one-minute slots each hold about a tenth of the apps.
        let mut slots = [0u32; 10];
        for o in &offsets {
            slots[(*o / 60) as usize] += 1;
        }
        assert!(slots.iter().all(|&n| (150..=250).contains(&n)), "{slots:?}");
    }

    #[test]
    fn the_message_names_one_app_and_nothing_else() {
        let m: RotateApp = serde_json::from_str(r#"{"app":"app#wx1"}"#).unwrap();
        assert_eq!(m.app, "app#wx1");
        assert!(serde_json::from_str::<RotateApp>(r#"{"app":"app#wx1","x":1}"#).is_err());
        assert!(serde_json::from_str::<RotateApp>(r#"{"app":1}"#).is_err());
    }
}
