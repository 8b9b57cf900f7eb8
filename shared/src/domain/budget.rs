//! The daily budget of WeChat calls per app: the day a call counts in (WeChat's daily quotas
//! reset at midnight Beijing time), whether a spend fits under the ceiling, and how full the
//! budget is for the alarm. The count itself is one DynamoDB item per app and day
//! (`adapters::budget`).

/// Beijing time (UTC+8), in which WeChat's quota days run.
const BEIJING_OFFSET_SECS: u64 = 8 * 3600;

/// How full a budget is when the alarm should tell the operator, in percent.
pub const NEAR_CEILING_PCT: u32 = 80;

/// The quota day of `now_ms`: days since 1970-01-01 in Beijing time.
pub fn day(now_ms: u64) -> u64 {
    (now_ms / 1000 + BEIJING_OFFSET_SECS) / 86_400
}

/// Seconds from `now_ms` to the end of its quota day.
pub fn secs_left_in_day(now_ms: u64) -> u64 {
    86_400 - (now_ms / 1000 + BEIJING_OFFSET_SECS) % 86_400
}

/// The count a spend of `calls` may start from and still fit under `ceiling`; `None` when the
/// spend alone is over it.
pub fn room_for(calls: u64, ceiling: u64) -> Option<u64> {
    ceiling.checked_sub(calls)
}

/// How full the budget is, in percent (rounded down; over 100 once refused spends are seen).
pub fn percent(used: u64, ceiling: u64) -> u32 {
    if ceiling == 0 {
        return 0;
    }
    (used.saturating_mul(100) / ceiling).min(u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_day_turns_at_midnight_beijing_time() {
        // 2026-11-30T15:59:59Z is 23:59:59 in Beijing; a second later the next day starts.
        let before = 1_796_054_399_000;
        let after = before + 1000;
        for (now_ms, day_, left) in [
            (before, 20_787, 1),
            (after, 20_788, 86_400),
            (after + 3_600_000, 20_788, 82_800),
            (0, 0, 57_600),
        ] {
            assert_eq!(day(now_ms), day_, "{now_ms}");
            assert_eq!(secs_left_in_day(now_ms), left, "{now_ms}");
        }
    }

    #[test]
    fn a_spend_fits_only_under_the_ceiling() {
        for (calls, ceiling, room) in [
            (1, 10, Some(9)),
            (10, 10, Some(0)),
            (11, 10, None),
            (1, 0, None),
        ] {
            assert_eq!(room_for(calls, ceiling), room, "{calls} of {ceiling}");
        }
    }

    #[test]
    fn fullness_in_percent() {
        for (used, ceiling, pct) in [
            (0, 100, 0),
            (79, 100, 79),
            (80, 100, 80),
            (8, 10, 80),
            (12, 10, 120),
            (5, 0, 0),
        ] {
            assert_eq!(percent(used, ceiling), pct, "{used} of {ceiling}");
        }
    }
}
