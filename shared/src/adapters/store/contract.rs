//! The store contract: one test that every `TokenStore` passes, run against the memory store by
//! `cargo test -p wxinvoice` and against DynamoDB (moto) by the integration tests. The token
//! lifecycle relies on exactly these conditional semantics.

use super::{Credential, Lock, TokenStore, Update};
use crate::domain::config::Secret;

fn cred(value: &str, expires_at_ms: u64) -> Option<Credential> {
    Some(Credential {
        value: value.into(),
        expires_at_ms,
    })
}

/// Runs the contract on `app`'s item, which must not exist yet. Panics on the first breach.
pub async fn run(store: &dyn TokenStore, app: &str) {
    let now = 1_900_000_000_000;
    let empty = store.load(app).await.unwrap();
    assert_eq!(empty, Default::default(), "a missing item reads as empty");

    let update = lock_and_publish(store, app, now).await;
    takeover(store, app, now, &update).await;
    tickets_and_previous(store, app, now, &update).await;
    registry(store, now).await;
    verify_ticket(store).await;
}

/// The third-party platform's verify ticket: only a newer one replaces the stored one.
async fn verify_ticket(store: &dyn TokenStore) {
    let before = store.verify_ticket().await.unwrap();
    let base = before.as_ref().map_or(1_700_000_000, |(_, c)| c + 1);
    assert!(store.put_verify_ticket("ticket-1", base).await.unwrap());
    let stored = |t: &str, c: u64| Some((t.to_string(), c));
    assert_eq!(
        store.verify_ticket().await.unwrap(),
        stored("ticket-1", base)
    );
    assert!(
        !store.put_verify_ticket("older", base - 1).await.unwrap(),
        "an older ticket"
    );
    assert!(
        !store.put_verify_ticket("replayed", base).await.unwrap(),
        "the same push again"
    );
    assert_eq!(
        store.verify_ticket().await.unwrap(),
        stored("ticket-1", base)
    );
    assert!(store
        .put_verify_ticket("ticket-2", base + 600)
        .await
        .unwrap());
    assert_eq!(
        store.verify_ticket().await.unwrap(),
        stored("ticket-2", base + 600)
    );
}

/// The app registry: settings live in the app's item, survive its refreshes, are listed, and go
/// with it.
async fn registry(store: &dyn TokenStore, now: u64) {
    use crate::domain::apps::{AppSettings, Kind};
    let mut app = AppSettings {
        kind: Kind::Work,
        appid: "wwcontract".into(),
        agentid: Some("1000002".into()),
        token_api: crate::domain::config::TokenApi::Classic,
        secret_name: "wwcontract-1000002".into(),
        origins: vec![
            "https://a.example.com".into(),
            "https://b.example.com".into(),
        ],
        jssdk_url: Some("https://a.example.com/invoices".into()),
        enabled: true,
        authorization: None,
    };
    let key = app.key();
    assert_eq!(
        shard_of(store, &key).await,
        None,
        "no index before a listing"
    );
    assert_eq!(
        store.due_apps(u64::MAX).await.unwrap(),
        None,
        "no sweep index before a listing"
    );
    store.put_app(&app).await.unwrap();
    assert_eq!(
        store.load(&key).await.unwrap().due_ms,
        Some(0),
        "a new app is due at once"
    );
    assert_eq!(
        store.load(&key).await.unwrap().settings.as_deref(),
        Some(&app)
    );
    // Registering alone does not make the index complete: apps registered before it may be
    // missing from it until a listing adds them.
    assert_eq!(shard_of(store, &key).await, None);
    // A refresh of the app keeps its settings; changing settings keeps its token.
    assert!(matches!(
        store.try_lock(&key, "A", now, 10_000).await.unwrap(),
        Lock::Acquired(_)
    ));
    let update = Update {
        access_token: cred("app-tok", now + 7_200_000),
        refreshed_at_ms: now,
        due_ms: Some(now + 2_700_000),
        ..Update::default()
    };
    let s = store.commit(&key, "A", &update).await.unwrap().unwrap();
    assert_eq!(s.settings.as_deref(), Some(&app));
    assert_eq!(
        s.due_ms,
        Some(now + 2_700_000),
        "a publish sets the due time"
    );
    // Settings changed, still enabled: the due time stays.
    app.origins.pop();
    store.put_app(&app).await.unwrap();
    assert_eq!(
        store.load(&key).await.unwrap().due_ms,
        Some(now + 2_700_000)
    );
    app.enabled = false;
    app.jssdk_url = None;
    store.put_app(&app).await.unwrap();
    let s = store.load(&key).await.unwrap();
    assert_eq!(s.settings.as_deref(), Some(&app));
    assert_eq!(s.access_token, update.access_token);
    assert_eq!(s.due_ms, None, "a disabled app leaves the sweep's index");
    let listed = store.apps().await.unwrap();
    assert_eq!(listed.len(), 1, "only registered apps are listed");
    assert_eq!(listed[0].0, key);
    assert_eq!(
        shard_of(store, &key).await,
        Some([key.clone()].into()),
        "a listing completes the index"
    );
    assert_eq!(
        store.due_apps(u64::MAX).await.unwrap(),
        Some(vec![]),
        "the sweep's index is complete, a disabled app is not in it"
    );
    // Enabled again: due at once.
    app.enabled = true;
    store.put_app(&app).await.unwrap();
    assert_eq!(store.due_apps(now).await.unwrap(), Some(vec![key.clone()]));
    app.enabled = false;
    store.put_app(&app).await.unwrap();
    // Another token API is another token: the settings change and the token goes, in one write.
    let mut mp = AppSettings {
        kind: Kind::Mp,
        appid: "wxcontract".into(),
        agentid: None,
        token_api: crate::domain::config::TokenApi::Stable,
        ..app.clone()
    };
    store.put_app(&mp).await.unwrap();
    store.try_lock(&mp.key(), "B", now, 10_000).await.unwrap();
    store
        .commit(&mp.key(), "B", &update)
        .await
        .unwrap()
        .unwrap();
    mp.token_api = crate::domain::config::TokenApi::Classic;
    store.put_app(&mp).await.unwrap();
    let s = store.load(&mp.key()).await.unwrap();
    assert_eq!(s.settings.as_deref(), Some(&mp));
    assert_eq!(s.access_token, None, "the other API's token is dropped");
    store.remove_app(&mp.key()).await.unwrap();
    store.remove_app(&key).await.unwrap();
    assert_eq!(store.load(&key).await.unwrap(), Default::default());
    assert!(store.apps().await.unwrap().is_empty());
    // A warm instance that still knows the removed app cannot bring its item back.
    assert!(matches!(
        store.try_lock(&key, "C", now, 10_000).await.unwrap(),
        Lock::Gone
    ));
    assert!(store.apps().await.unwrap().is_empty());
    assert_eq!(store.load(&key).await.unwrap(), Default::default());
    assert_eq!(shard_of(store, &key).await, Some(Default::default()));
    // Registered once the index is complete: in it at once, and in the sweep's, due now; a
    // publish moves it to its due time, which the sweep's query respects.
    app.enabled = true;
    store.put_app(&app).await.unwrap();
    assert_eq!(shard_of(store, &key).await, Some([key.clone()].into()));
    assert_eq!(store.due_apps(now).await.unwrap(), Some(vec![key.clone()]));
    store.try_lock(&key, "D", now, 10_000).await.unwrap();
    store.commit(&key, "D", &update).await.unwrap().unwrap();
    assert_eq!(store.due_apps(now).await.unwrap(), Some(vec![]));
    assert_eq!(
        store.due_apps(now + 2_700_000).await.unwrap(),
        Some(vec![key.clone()])
    );
    store.remove_app(&key).await.unwrap();
    assert_eq!(store.due_apps(u64::MAX).await.unwrap(), Some(vec![]));
}

/// The keys of `key`'s shard of the registry's index.
async fn shard_of(store: &dyn TokenStore, key: &str) -> Option<std::collections::HashSet<String>> {
    store
        .index_shard(&crate::domain::apps::index_shard(key))
        .await
        .unwrap()
}

/// The lock, the fetch mark and publishing; the publish that landed.
async fn lock_and_publish(store: &dyn TokenStore, app: &str, now: u64) -> Update {
    // The lock: taken when free, held against others, ours again after a lost answer.
    let Lock::Acquired(s) = store.try_lock(app, "A", now, 10_000).await.unwrap() else {
        panic!("a free lock is acquired");
    };
    assert_eq!(
        (s.lock_owner.as_deref(), s.lock_until_ms),
        (Some("A"), now + 10_000)
    );
    let Lock::Held(s) = store.try_lock(app, "B", now + 1, 10_000).await.unwrap() else {
        panic!("a live lease holds against others");
    };
    assert_eq!(s.lock_owner.as_deref(), Some("A"));
    assert!(
        matches!(store.try_lock(app, "A", now + 2, 10_000).await.unwrap(), Lock::Acquired(s) if s.lock_until_ms == now + 10_000),
        "a lock that names us is ours (the lease is not extended)"
    );

    // The fetch mark: only the holder writes it, and the earliest mark stays.
    assert!(!store.mark_fetch(app, "B", now + 3).await.unwrap());
    assert_eq!(store.load(app).await.unwrap().fetch_started_ms, None);
    assert!(store.mark_fetch(app, "A", now + 4).await.unwrap());
    assert!(store.mark_fetch(app, "A", now + 5).await.unwrap());
    assert_eq!(
        store.load(app).await.unwrap().fetch_started_ms,
        Some(now + 4)
    );

    // Publishing: only by the holder; a new token clears the mark and frees the lock.
    let update = Update {
        access_token: cred("tok-1", now + 7_200_000),
        jsapi_ticket: cred("jt-1", now + 7_200_000),
        wx_card_ticket: cred("ct-1", now + 7_200_000),
        agent_ticket: cred("at-1", now + 7_100_000),
        refresh_token: Some(Secret::new("refreshtoken@@@2")),
        previous_refresh_token: Some(Secret::new("refreshtoken@@@1")),
        refreshed_at_ms: now + 6,
        ..Update::default()
    };
    assert_eq!(store.commit(app, "B", &update).await.unwrap(), None);
    let s = store
        .commit(app, "A", &update)
        .await
        .unwrap()
        .expect("holder publishes");
    assert_eq!(s.access_token, update.access_token);
    assert_eq!(s.jsapi_ticket, update.jsapi_ticket);
    assert_eq!(s.wx_card_ticket, update.wx_card_ticket);
    assert_eq!(s.agent_ticket, update.agent_ticket);
    assert_eq!(
        (
            s.refresh_token.as_ref().map(Secret::expose),
            s.previous_refresh_token.as_ref().map(Secret::expose)
        ),
        (Some("refreshtoken@@@2"), Some("refreshtoken@@@1")),
        "a new refresh token is published with the one it replaces"
    );
    assert_eq!(
        (s.version, s.refreshed_at_ms, s.token_fetched_ms),
        (1, now + 6, now + 6)
    );
    assert_eq!(s.fetch_started_ms, None, "a new token clears the mark");
    assert_eq!(s.lock_owner, None, "the publish releases the lock");
    // The same commit again (its answer was lost, the retry finds the lock gone): landed.
    let again = store.commit(app, "A", &update).await.unwrap();
    assert_eq!(
        again.map(|s| s.version),
        Some(1),
        "recognised, not applied twice"
    );
    assert_eq!(store.load(app).await.unwrap().version, 1);
    update
}

/// Taking over a lease that ran out, and a failed fetch's release.
async fn takeover(store: &dyn TokenStore, app: &str, now: u64, update: &Update) {
    // A lease that ran out can be taken over; the old holder is fenced off.
    assert!(matches!(
        store.try_lock(app, "C", now + 10, 100).await.unwrap(),
        Lock::Acquired(_)
    ));
    assert!(matches!(
        store.try_lock(app, "D", now + 200, 10_000).await.unwrap(),
        Lock::Acquired(_)
    ));
    let late = Update {
        access_token: cred("tok-from-C", now + 7_200_000),
        refreshed_at_ms: now + 201,
        ..Update::default()
    };
    assert_eq!(store.commit(app, "C", &late).await.unwrap(), None);
    assert!(!store.mark_fetch(app, "C", now + 202).await.unwrap());
    store.release(app, "C", true).await.unwrap();
    let s = store.load(app).await.unwrap();
    assert_eq!(
        s.lock_owner.as_deref(),
        Some("D"),
        "C cannot release D's lock"
    );
    assert_eq!(s.access_token, update.access_token);

    // A failed fetch releases; the mark stays unless the fetch surely issued nothing.
    assert!(store.mark_fetch(app, "D", now + 203).await.unwrap());
    store.release(app, "D", false).await.unwrap();
    let s = store.load(app).await.unwrap();
    assert_eq!((s.lock_owner, s.fetch_started_ms), (None, Some(now + 203)));
}

/// Ticket-only publishes and the previous token.
async fn tickets_and_previous(store: &dyn TokenStore, app: &str, now: u64, update: &Update) {
    // A ticket-only publish keeps the mark, the token's fetch time and the previous token.
    assert!(matches!(
        store.try_lock(app, "E", now + 300, 10_000).await.unwrap(),
        Lock::Acquired(_)
    ));
    let tickets = Update {
        jsapi_ticket: cred("jt-2", now + 7_200_000),
        refreshed_at_ms: now + 301,
        ..Update::default()
    };
    let s = store.commit(app, "E", &tickets).await.unwrap().unwrap();
    assert_eq!(
        (s.fetch_started_ms, s.token_fetched_ms, s.version),
        (Some(now + 203), now + 6, 2)
    );
    assert_eq!(s.access_token, update.access_token);
    // A rotation keeps the previous token for its grace; a later publish without one keeps it.
    assert!(matches!(
        store.try_lock(app, "F", now + 400, 10_000).await.unwrap(),
        Lock::Acquired(_)
    ));
    let rotation = Update {
        access_token: cred("tok-2", now + 7_200_000),
        previous_access_token: cred("tok-1", now + 300_000),
        refreshed_at_ms: now + 401,
        ..Update::default()
    };
    let s = store.commit(app, "F", &rotation).await.unwrap().unwrap();
    assert_eq!(s.previous_access_token, rotation.previous_access_token);
    assert_eq!(s.fetch_started_ms, None);
    assert!(matches!(
        store.try_lock(app, "G", now + 500, 10_000).await.unwrap(),
        Lock::Acquired(_)
    ));
    store.mark_fetch(app, "G", now + 501).await.unwrap();
    store.release(app, "G", true).await.unwrap();
    let s = store.load(app).await.unwrap();
    assert_eq!((s.lock_owner, s.fetch_started_ms), (None, None));
    assert_eq!(s.previous_access_token, rotation.previous_access_token);
}
