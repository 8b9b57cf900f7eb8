//! A store wrapper that injects the half-failures of a real one, for tests: an operation that
//! fails before writing, one that writes and then fails (the caller cannot tell it landed), one
//! whose answer is lost and that the SDK then retries (the write lands twice), and a slow one.
//! Compiled for tests and with the `test-util` feature.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{Lock, StoreError, TokenState, TokenStore, Update};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Load,
    /// Reading a shard of the registry's index.
    IndexShard,
    /// Querying the sweep's index.
    DueApps,
    /// Reading or writing the third-party platform's verify ticket.
    VerifyTicket,
    TryLock,
    MarkFetch,
    Commit,
    Release,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Fails without writing anything.
    Fail,
    /// Writes, then fails: the write landed, the caller sees an error.
    FailAfterWrite,
    /// Writes, loses the answer, and runs the same operation again (the SDK's retry), whose
    /// answer the caller gets.
    LostResponse,
    /// Waits this long first.
    Slow(Duration),
}

#[derive(Default)]
struct Plan {
    /// Per operation: the fault, and how many more calls it applies to (`None`: until cleared).
    faults: HashMap<Op, (Fault, Option<u32>)>,
    calls: HashMap<Op, u32>,
}

#[derive(Clone)]
pub struct FaultyStore {
    inner: Arc<dyn TokenStore>,
    plan: Arc<Mutex<Plan>>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn TokenStore>) -> Self {
        FaultyStore {
            inner,
            plan: Arc::default(),
        }
    }

    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Injects `fault` into the next `times` calls of `op` (`None`: every call until cleared).
    pub fn inject(&self, op: Op, fault: Fault, times: Option<u32>) {
        self.plan().faults.insert(op, (fault, times));
    }

    pub fn clear(&self) {
        self.plan().faults.clear();
    }

    /// Calls of `op` so far, faulty or not.
    pub fn calls(&self, op: Op) -> u32 {
        self.plan().calls.get(&op).copied().unwrap_or(0)
    }

    /// Counts the call and takes its fault, if any.
    fn take(&self, op: Op) -> Option<Fault> {
        let mut plan = self.plan();
        *plan.calls.entry(op).or_insert(0) += 1;
        let (fault, left) = plan.faults.get_mut(&op)?;
        let fault = *fault;
        match left {
            Some(0) => return None,
            Some(n) => *n -= 1,
            None => {}
        }
        Some(fault)
    }

    async fn apply<T, F, Fut>(&self, op: Op, call: F) -> Result<T, StoreError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let injected = |what: &str| Err(StoreError(format!("injected fault: {what} ({op:?})")));
        match self.take(op) {
            None => call().await,
            Some(Fault::Fail) => injected("failed before writing"),
            Some(Fault::FailAfterWrite) => {
                let _ = call().await;
                injected("failed after writing")
            }
            Some(Fault::LostResponse) => {
                let _ = call().await;
                call().await
            }
            Some(Fault::Slow(d)) => {
                tokio::time::sleep(d).await;
                call().await
            }
        }
    }
}

#[async_trait]
impl TokenStore for FaultyStore {
    async fn load(&self, app: &str) -> Result<TokenState, StoreError> {
        self.apply(Op::Load, || self.inner.load(app)).await
    }

    async fn try_lock(
        &self,
        app: &str,
        owner: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<Lock, StoreError> {
        self.apply(Op::TryLock, || {
            self.inner.try_lock(app, owner, now_ms, lease_ms)
        })
        .await
    }

    async fn mark_fetch(&self, app: &str, owner: &str, now_ms: u64) -> Result<bool, StoreError> {
        self.apply(Op::MarkFetch, || self.inner.mark_fetch(app, owner, now_ms))
            .await
    }

    async fn commit(
        &self,
        app: &str,
        owner: &str,
        update: &Update,
    ) -> Result<Option<TokenState>, StoreError> {
        self.apply(Op::Commit, || self.inner.commit(app, owner, update))
            .await
    }

    async fn release(&self, app: &str, owner: &str, clear_mark: bool) -> Result<(), StoreError> {
        self.apply(Op::Release, || self.inner.release(app, owner, clear_mark))
            .await
    }

    // The registry is not part of the token lifecycle's faults: passed through.
    async fn put_app(&self, settings: &crate::domain::apps::AppSettings) -> Result<(), StoreError> {
        self.inner.put_app(settings).await
    }

    async fn remove_app(&self, key: &str) -> Result<(), StoreError> {
        self.inner.remove_app(key).await
    }

    async fn apps(&self) -> Result<Vec<(String, TokenState)>, StoreError> {
        self.inner.apps().await
    }

    async fn index_shard(&self, shard: &str) -> Result<Option<HashSet<String>>, StoreError> {
        self.apply(Op::IndexShard, || self.inner.index_shard(shard))
            .await
    }

    async fn due_apps(&self, until_ms: u64) -> Result<Option<Vec<String>>, StoreError> {
        self.apply(Op::DueApps, || self.inner.due_apps(until_ms))
            .await
    }

    async fn verify_ticket(&self) -> Result<Option<(String, u64)>, StoreError> {
        self.apply(Op::VerifyTicket, || self.inner.verify_ticket())
            .await
    }

    async fn put_verify_ticket(&self, ticket: &str, created: u64) -> Result<bool, StoreError> {
        self.apply(Op::VerifyTicket, || {
            self.inner.put_verify_ticket(ticket, created)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::store::MemoryStore;

    #[tokio::test]
    async fn faults_apply_as_described() {
        let mem: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
        let store = FaultyStore::new(mem.clone());
        store.inject(Op::TryLock, Fault::FailAfterWrite, Some(1));
        assert!(store.try_lock("a", "me", 1, 10).await.is_err());
        assert_eq!(
            mem.load("a").await.unwrap().lock_owner.as_deref(),
            Some("me")
        );
        // The fault was for one call only; the retry finds our own lock.
        assert!(matches!(
            store.try_lock("a", "me", 2, 10).await.unwrap(),
            Lock::Acquired(_)
        ));
        store.inject(Op::Release, Fault::Fail, None);
        assert!(store.release("a", "me", false).await.is_err());
        assert!(store.release("a", "me", false).await.is_err());
        assert!(mem.load("a").await.unwrap().lock_owner.is_some());
        store.clear();
        store.release("a", "me", false).await.unwrap();
        assert_eq!(store.calls(Op::Release), 3);
        // A lost answer: the write lands once, the retry's answer is what the caller sees.
        store.inject(Op::TryLock, Fault::LostResponse, Some(1));
        assert!(matches!(
            store.try_lock("a", "you", 3, 10).await.unwrap(),
            Lock::Acquired(_)
        ));
        assert_eq!(store.calls(Op::TryLock), 3);
    }
}
