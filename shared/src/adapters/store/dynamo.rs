//! The token store in DynamoDB: one item per app (key `pk` = appid), every lock and publish a
//! conditional UpdateItem. A conditional failure returns the item as it was
//! (`ReturnValuesOnConditionCheckFailure`), which tells a lost answer (the item already carries
//! our lock or our publish) from a lock held by someone else.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;

use super::{
    Credential, Lock, StoreError, TokenState, TokenStore, Update, COMPONENT_KEY, SWEEP_MARKER,
};
use crate::adapters::dynamodb::{error_text, num};
use crate::domain::apps::{self, AppSettings, Authorization, Kind};
use crate::domain::config::{Secret, TokenApi};
use crate::domain::state::holds;

fn store_err<E: std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> StoreError {
    StoreError(error_text(e))
}

/// An UpdateItem refused by its condition.
fn condition_failed<R>(e: &SdkError<UpdateItemError, R>) -> bool {
    matches!(e, SdkError::ServiceError(se)
        if matches!(se.err(), UpdateItemError::ConditionalCheckFailedException(_)))
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    fn key(app: &str) -> AttributeValue {
        AttributeValue::S(app.to_string())
    }

    /// A conditional UpdateItem on `app`'s item. `Ok(Err(old))`: the condition failed; `old` is
    /// the item as it was.
    async fn conditional_update(
        &self,
        app: &str,
        update: String,
        condition: &str,
        values: HashMap<String, AttributeValue>,
    ) -> Result<Result<TokenState, TokenState>, StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::key(app))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(out) => Ok(Ok(out.attributes.as_ref().map(parse).unwrap_or_default())),
            Err(SdkError::ServiceError(se)) => match se.err() {
                UpdateItemError::ConditionalCheckFailedException(ccf) => {
                    let old = match ccf.item() {
                        Some(item) => parse(item),
                        None => self.load(app).await?,
                    };
                    Ok(Err(old))
                }
                _ => Err(store_err(SdkError::ServiceError(se))),
            },
            Err(e) => Err(store_err(e)),
        }
    }
}

/// The sweep's index (a global secondary index on `sweep` and `due_ms`, keys only): only
/// enabled registered apps' items, and the marker, carry `sweep`.
pub const DUE_INDEX: &str = "due";
const SWEEP: &str = "due";

/// Writes in flight at once when a listing enters the apps registered before the sweep's index.
const ENTER_AT_ONCE: usize = 16;

impl DynamoStore {
    /// Enters one enabled app without a due time in the sweep's index, due now.
    async fn enter_due_now(&self, key: &str) -> Result<(), StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::key(key))
            .update_expression("SET sweep = :sweep, due_ms = :zero")
            .condition_expression(
                "attribute_exists(app_kind) AND attribute_not_exists(due_ms) AND app_enabled = :t",
            )
            .expression_attribute_values(":sweep", AttributeValue::S(SWEEP.into()))
            .expression_attribute_values(":zero", num(0))
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await;
        match res {
            // Removed, disabled or entered meanwhile: nothing to enter.
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(store_err(e)),
            Ok(_) => Ok(()),
        }
    }

    /// `ADD` or `DELETE` keys of their shards' sets (a set left empty disappears).
    async fn index(&self, op: &str, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", Self::key(&apps::index_shard(key)))
                .update_expression(format!("{op} app_keys :k"))
                .expression_attribute_values(":k", AttributeValue::Ss(vec![key.clone()]))
                .send()
                .await
                .map_err(store_err)?;
        }
        Ok(())
    }

    /// Adds every app a listing found to its shard and marks every shard complete. Keys are only
    /// added here: an app registered meanwhile stays, and a removed one is taken out by its
    /// removal.
    async fn complete_index(&self, keys: &[String]) -> Result<(), StoreError> {
        for shard in apps::index_shards() {
            let mine: Vec<String> = keys
                .iter()
                .filter(|k| apps::index_shard(k) == shard)
                .cloned()
                .collect();
            let mut values = HashMap::from([(":t".to_string(), AttributeValue::Bool(true))]);
            let expr = if mine.is_empty() {
                "SET complete = :t"
            } else {
                values.insert(":k".into(), AttributeValue::Ss(mine));
                "SET complete = :t ADD app_keys :k"
            };
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", Self::key(&shard))
                .update_expression(expr)
                .set_expression_attribute_values(Some(values))
                .send()
                .await
                .map_err(store_err)?;
        }
        Ok(())
    }

    /// Enters the enabled apps a listing found without a due time in the sweep's index, due now
    /// (they were registered before it existed), then marks the index complete. The entries are
    /// written `ENTER_AT_ONCE` at a time: thousands of apps upgraded fit in one sweep.
    async fn complete_sweep(&self, apps: &[(String, TokenState)]) -> Result<(), StoreError> {
        // Built before anything is awaited: closures held across the awaits of this
        // `async_trait` future trip rustc's check that it is `Send`.
        let writes: Vec<BoxFuture<'_, Result<(), StoreError>>> = apps
            .iter()
            .filter(|(_, s)| s.due_ms.is_none() && s.settings.as_ref().is_some_and(|a| a.enabled))
            .map(|(key, _)| Box::pin(self.enter_due_now(key)) as BoxFuture<'_, _>)
            .collect();
        let entered: Vec<Result<(), StoreError>> = futures_util::stream::iter(writes)
            .buffer_unordered(ENTER_AT_ONCE)
            .collect()
            .await;
        entered.into_iter().collect::<Result<(), _>>()?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", Self::key(SWEEP_MARKER))
            .item("sweep", AttributeValue::S(SWEEP.into()))
            .item("due_ms", num(0))
            .send()
            .await
            .map_err(store_err)?;
        Ok(())
    }
}

#[async_trait]
impl TokenStore for DynamoStore {
    async fn load(&self, app: &str) -> Result<TokenState, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", Self::key(app))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_err)?;
        Ok(out.item.as_ref().map(parse).unwrap_or_default())
    }

    async fn try_lock(
        &self,
        app: &str,
        owner: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<Lock, StoreError> {
        let values = HashMap::from([
            (":me".into(), AttributeValue::S(owner.to_string())),
            (":until".into(), num(now_ms.saturating_add(lease_ms))),
            (":now".into(), num(now_ms)),
        ]);
        let free = "(attribute_not_exists(lock_owner) OR lock_until_ms < :now)";
        let condition = if apps::is_registered_key(app) {
            format!("attribute_exists(app_kind) AND {free}")
        } else {
            free.to_string()
        };
        let res = self
            .conditional_update(
                app,
                "SET lock_owner = :me, lock_until_ms = :until".into(),
                &condition,
                values,
            )
            .await?;
        Ok(match res {
            Ok(state) => Lock::Acquired(state),
            Err(state) if apps::is_registered_key(app) && state.settings.is_none() => Lock::Gone,
            // Our own lock: the first write landed, its answer was lost and the SDK retried.
            Err(state) if state.lock_owner.as_deref() == Some(owner) => Lock::Acquired(state),
            Err(state) => Lock::Held(state),
        })
    }

    async fn mark_fetch(&self, app: &str, owner: &str, now_ms: u64) -> Result<bool, StoreError> {
        let values = HashMap::from([
            (":me".into(), AttributeValue::S(owner.to_string())),
            (":now".into(), num(now_ms)),
        ]);
        let res = self
            .conditional_update(
                app,
                "SET fetch_started_ms = if_not_exists(fetch_started_ms, :now)".into(),
                "lock_owner = :me",
                values,
            )
            .await?;
        Ok(res.is_ok())
    }

    async fn commit(
        &self,
        app: &str,
        owner: &str,
        update: &Update,
    ) -> Result<Option<TokenState>, StoreError> {
        let mut set = vec![
            "version = if_not_exists(version, :zero) + :one".to_string(),
            "refreshed_at_ms = :refreshed".to_string(),
        ];
        let mut remove = vec!["lock_owner", "lock_until_ms"];
        let mut values: HashMap<String, AttributeValue> = HashMap::from([
            (":me".into(), AttributeValue::S(owner.to_string())),
            (":zero".into(), num(0)),
            (":one".into(), num(1)),
            (":refreshed".into(), num(update.refreshed_at_ms)),
        ]);
        if update.access_token.is_some() {
            set.push("token_fetched_ms = :refreshed".into());
            remove.push("fetch_started_ms");
        }
        if let Some(due) = update.due_ms {
            set.push("sweep = :sweep, due_ms = :due".into());
            values.insert(":sweep".into(), AttributeValue::S(SWEEP.into()));
            values.insert(":due".into(), num(due));
        }
        // A new refresh token and the one it replaces, in the same write as the token it came
        // with: published together or not at all.
        if let Some(refresh) = &update.refresh_token {
            set.push("refresh_token = :refresh".into());
            values.insert(
                ":refresh".into(),
                AttributeValue::S(refresh.expose().into()),
            );
            match &update.previous_refresh_token {
                Some(previous) => {
                    set.push("previous_refresh_token = :previous_refresh".into());
                    values.insert(
                        ":previous_refresh".into(),
                        AttributeValue::S(previous.expose().into()),
                    );
                }
                None => remove.push("previous_refresh_token"),
            }
        }
        for (name, cred) in [
            ("access_token", &update.access_token),
            ("previous_access_token", &update.previous_access_token),
            ("jsapi_ticket", &update.jsapi_ticket),
            ("wx_card_ticket", &update.wx_card_ticket),
            ("agent_ticket", &update.agent_ticket),
        ] {
            if let Some(c) = cred {
                set.push(format!("{name} = :{name}, {name}_expires_ms = :{name}_exp"));
                values.insert(format!(":{name}"), AttributeValue::S(c.value.clone()));
                values.insert(format!(":{name}_exp"), num(c.expires_at_ms));
            }
        }
        let expr = format!("SET {} REMOVE {}", set.join(", "), remove.join(", "));
        let res = self
            .conditional_update(app, expr, "lock_owner = :me", values)
            .await?;
        Ok(match res {
            Ok(state) => Some(state),
            // Landed before (lost answer): the item already holds what we published.
            Err(state) if state.lock_owner.is_none() && holds(&state, update) => Some(state),
            Err(_) => None,
        })
    }

    async fn release(&self, app: &str, owner: &str, clear_mark: bool) -> Result<(), StoreError> {
        let expr = if clear_mark {
            "REMOVE lock_owner, lock_until_ms, fetch_started_ms"
        } else {
            "REMOVE lock_owner, lock_until_ms"
        };
        let values = HashMap::from([(":me".into(), AttributeValue::S(owner.to_string()))]);
        // A failed condition: the lock is no longer ours (or already released); nothing to do.
        self.conditional_update(app, expr.into(), "lock_owner = :me", values)
            .await
            .map(|_| ())
    }

    async fn put_app(&self, a: &AppSettings) -> Result<(), StoreError> {
        let settings = settings_item(a);
        let names: Vec<&str> = settings.keys().map(String::as_str).collect();
        let set: Vec<String> = names.iter().map(|n| format!("{n} = :{n}")).collect();
        let absent: Vec<&str> = [
            "app_agentid",
            "app_jssdk_url",
            "app_authorized_ms",
            "app_permissions",
        ]
        .into_iter()
        .filter(|n| !settings.contains_key(*n))
        .collect();
        let mut set = set;
        let mut absent = absent;
        let mut values: HashMap<String, AttributeValue> = settings
            .iter()
            .map(|(n, v)| (format!(":{n}"), v.clone()))
            .collect();
        // In the sweep's index while enabled: a new or re-enabled app is due now, an enabled
        // one keeps its due time.
        if a.enabled {
            set.push("sweep = :sweep, due_ms = if_not_exists(due_ms, :zero)".into());
            values.insert(":sweep".into(), AttributeValue::S(SWEEP.into()));
            values.insert(":zero".into(), num(0));
        } else {
            absent.extend(["sweep", "due_ms"]);
        }
        let mut expr = format!("SET {}", set.join(", "));
        if !absent.is_empty() {
            expr.push_str(&format!(" REMOVE {}", absent.join(", ")));
        }
        // The same token API: the settings change and the token state stays.
        let kept = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::key(&a.key()))
            .update_expression(expr)
            .condition_expression(
                "attribute_not_exists(app_token_api) OR app_token_api = :app_token_api",
            )
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match kept {
            Ok(_) => {}
            Err(e) if condition_failed(&e) => {
                // Another token API: the item is replaced by the settings alone, in one write,
                // so no request ever finds the app missing in between.
                let mut item = settings;
                item.insert("pk".into(), Self::key(&a.key()));
                if a.enabled {
                    item.insert("sweep".into(), AttributeValue::S(SWEEP.into()));
                    item.insert("due_ms".into(), num(0));
                }
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .send()
                    .await
                    .map_err(store_err)?;
            }
            Err(e) => return Err(store_err(e)),
        }
        self.index("ADD", &[a.key()]).await
    }

    async fn remove_app(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", Self::key(key))
            .send()
            .await
            .map_err(store_err)?;
        self.index("DELETE", &[key.to_string()]).await
    }

    async fn index_shard(&self, shard: &str) -> Result<Option<HashSet<String>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", Self::key(shard))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_err)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        if !matches!(item.get("complete"), Some(AttributeValue::Bool(true))) {
            return Ok(None);
        }
        Ok(Some(match item.get("app_keys") {
            Some(AttributeValue::Ss(keys)) => keys.iter().cloned().collect(),
            _ => HashSet::new(),
        }))
    }

    async fn verify_ticket(&self) -> Result<Option<(String, u64)>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", Self::key(COMPONENT_KEY))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_err)?;
        let item = out.item.unwrap_or_default();
        let ticket = item.get("verify_ticket").and_then(|v| v.as_s().ok());
        let created = item
            .get("verify_ticket_created")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok());
        Ok(ticket.cloned().zip(created))
    }

    async fn put_verify_ticket(&self, ticket: &str, created: u64) -> Result<bool, StoreError> {
        let put = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::key(COMPONENT_KEY))
            .update_expression("SET verify_ticket = :t, verify_ticket_created = :c")
            .condition_expression(
                "attribute_not_exists(verify_ticket_created) OR verify_ticket_created < :c",
            )
            .expression_attribute_values(":t", AttributeValue::S(ticket.to_string()))
            .expression_attribute_values(":c", num(created))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(store_err(e)),
        }
    }

    async fn due_apps(&self, until_ms: u64) -> Result<Option<Vec<String>>, StoreError> {
        let items: Vec<_> = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("sweep = :sweep AND due_ms <= :until")
            .expression_attribute_values(":sweep", AttributeValue::S(SWEEP.into()))
            .expression_attribute_values(":until", num(until_ms))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(store_err)?;
        let keys = items
            .iter()
            .filter_map(|item| item.get("pk").and_then(|v| v.as_s().ok()));
        let mut complete = false;
        let mut due = Vec::new();
        for k in keys {
            if k == SWEEP_MARKER {
                complete = true;
            } else if apps::is_registered_key(k) {
                due.push(k.clone());
            }
        }
        Ok(complete.then_some(due))
    }

    async fn apps(&self) -> Result<Vec<(String, TokenState)>, StoreError> {
        let mut apps = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("attribute_exists(app_kind)")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_err)?;
            for item in out.items.unwrap_or_default() {
                if let Some(key) = item.get("pk").and_then(|v| v.as_s().ok()) {
                    apps.push((key.clone(), parse(&item)));
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                apps.sort_by(|a, b| a.0.cmp(&b.0));
                let keys: Vec<String> = apps.iter().map(|(k, _)| k.clone()).collect();
                self.complete_index(&keys).await?;
                self.complete_sweep(&apps).await?;
                return Ok(apps);
            }
        }
    }
}

/// An app's settings as its item's attributes (the optional ones only when set).
fn settings_item(a: &AppSettings) -> HashMap<String, AttributeValue> {
    let s = |v: &str| AttributeValue::S(v.to_string());
    let mut item = HashMap::from([
        ("app_kind".to_string(), s(a.kind.as_str())),
        ("app_appid".to_string(), s(&a.appid)),
        ("app_token_api".to_string(), s(token_api_name(a.token_api))),
        ("app_secret".to_string(), s(&a.secret_name)),
        (
            "app_origins".to_string(),
            AttributeValue::L(a.origins.iter().map(|o| s(o)).collect()),
        ),
        ("app_enabled".to_string(), AttributeValue::Bool(a.enabled)),
    ]);
    if let Some(agentid) = &a.agentid {
        item.insert("app_agentid".into(), s(agentid));
    }
    if let Some(url) = &a.jssdk_url {
        item.insert("app_jssdk_url".into(), s(url));
    }
    if let Some(auth) = &a.authorization {
        item.insert("app_authorized_ms".into(), num(auth.authorized_ms));
        let sets = auth.permissions.iter().map(|p| num(*p)).collect();
        item.insert("app_permissions".into(), AttributeValue::L(sets));
    }
    item
}

fn parse(item: &HashMap<String, AttributeValue>) -> TokenState {
    let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let n = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let cred = |k: &str| {
        Some(Credential {
            value: s(k)?,
            expires_at_ms: n(&format!("{k}_expires_ms"))?,
        })
    };
    TokenState {
        access_token: cred("access_token"),
        previous_access_token: cred("previous_access_token"),
        jsapi_ticket: cred("jsapi_ticket"),
        wx_card_ticket: cred("wx_card_ticket"),
        agent_ticket: cred("agent_ticket"),
        refresh_token: s("refresh_token").map(Secret::new),
        previous_refresh_token: s("previous_refresh_token").map(Secret::new),
        version: n("version").unwrap_or(0),
        refreshed_at_ms: n("refreshed_at_ms").unwrap_or(0),
        token_fetched_ms: n("token_fetched_ms").unwrap_or(0),
        fetch_started_ms: n("fetch_started_ms"),
        lock_owner: s("lock_owner"),
        lock_until_ms: n("lock_until_ms").unwrap_or(0),
        settings: parse_settings(item).map(Box::new),
        due_ms: n("due_ms"),
    }
}

fn token_api_name(api: TokenApi) -> &'static str {
    match api {
        TokenApi::Classic => "classic",
        TokenApi::Stable => "stable",
    }
}

/// A registered app's settings (`app_*` attributes), when the item has them.
fn parse_settings(item: &HashMap<String, AttributeValue>) -> Option<AppSettings> {
    let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    Some(AppSettings {
        kind: Kind::parse(&s("app_kind")?)?,
        appid: s("app_appid")?,
        agentid: s("app_agentid"),
        token_api: match s("app_token_api").as_deref() {
            Some("stable") => TokenApi::Stable,
            _ => TokenApi::Classic,
        },
        secret_name: s("app_secret").unwrap_or_default(),
        origins: item
            .get("app_origins")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
            .unwrap_or_default(),
        jssdk_url: s("app_jssdk_url"),
        enabled: item
            .get("app_enabled")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        authorization: item.get("app_authorized_ms").and_then(|v| {
            let n = |v: &AttributeValue| v.as_n().ok()?.parse::<u64>().ok();
            Some(Authorization {
                authorized_ms: n(v)?,
                permissions: item
                    .get("app_permissions")
                    .and_then(|p| p.as_l().ok())
                    .map(|l| l.iter().filter_map(n).collect())
                    .unwrap_or_default(),
            })
        }),
    })
}
