//! Time one request spends waiting on its dependencies (WeChat, DynamoDB), summed in a
//! task-local the request's log line reads: the clients add to it after each call.

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

use crate::domain::deadline::{Deadline, Expired};

/// Time one request spent waiting on its dependencies.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Spent {
    pub wechat_ms: u64,
    pub wechat_calls: u32,
    pub dynamodb_ms: u64,
    pub dynamodb_calls: u32,
    /// How full the app's daily WeChat call budget was after this request's spends, in percent.
    pub wechat_budget_pct: Option<u32>,
}

tokio::task_local! {
    static SPENT: Cell<Spent>;
}

/// Runs `f` with its own account of dependency time, and returns it with the output. (`f` is
/// boxed: a handler's whole future inline is deeper than rustc's layout recursion limit, and in
/// debug builds larger than a test thread's stack.)
pub async fn measured<F: Future>(f: F) -> (F::Output, Spent) {
    let f = Box::pin(f);
    SPENT
        .scope(Cell::new(Spent::default()), async {
            let out = f.await;
            (out, SPENT.with(Cell::get))
        })
        .await
}

/// Adds one WeChat call of `d` to the current request's account (if any).
pub fn wechat_call(d: Duration) {
    let _ = SPENT.try_with(|s| {
        let mut v = s.get();
        v.wechat_ms += d.as_millis() as u64;
        v.wechat_calls += 1;
        s.set(v);
    });
}

/// Records how full the app's daily WeChat call budget is (the fullest seen in the request).
pub fn budget_seen(pct: u32) {
    let _ = SPENT.try_with(|s| {
        let mut v = s.get();
        v.wechat_budget_pct = Some(v.wechat_budget_pct.map_or(pct, |p| p.max(pct)));
        s.set(v);
    });
}

/// Runs one DynamoDB operation within `deadline`, adding its time to the request's account.
pub async fn dynamodb<T>(deadline: &Deadline, op: impl Future<Output = T>) -> Result<T, Expired> {
    let started = std::time::Instant::now();
    let out = deadline.run(op).await;
    dynamodb_call(started.elapsed());
    out
}

/// Adds one DynamoDB operation of `d` to the current request's account (if any).
pub fn dynamodb_call(d: Duration) {
    let _ = SPENT.try_with(|s| {
        let mut v = s.get();
        v.dynamodb_ms += d.as_millis() as u64;
        v.dynamodb_calls += 1;
        s.set(v);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dependency_time_is_counted_per_request() {
        let ((), spent) = measured(async {
            wechat_call(Duration::from_millis(7));
            dynamodb_call(Duration::from_millis(3));
            budget_seen(81);
            wechat_call(Duration::from_millis(5));
            budget_seen(40);
        })
        .await;
        assert_eq!(
            spent,
            Spent {
                wechat_ms: 12,
                wechat_calls: 2,
                dynamodb_ms: 3,
                dynamodb_calls: 1,
                wechat_budget_pct: Some(81),
            }
        );
        // Outside a request: nothing to count, nothing breaks.
        wechat_call(Duration::from_millis(1));
    }
}
