//! Token state in DynamoDB: one item per app (key `pk` = appid) holding access_token, the previous
//! access_token during WeChat's grace period, both JS-SDK tickets, a version, and the refresh lock
//! (owner + lease end). Every write that publishes new credentials is conditioned on still owning
//! the lock, so a holder whose lease ran out can never overwrite newer state.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;

use crate::envelope::ApiError;

/// A credential and the instant (Unix ms) it stops being valid.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub value: String,
    pub expires_at_ms: u64,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential(***, expires_at_ms={})", self.expires_at_ms)
    }
}

impl Credential {
    /// Valid now and for at least `margin_ms` more.
    pub fn valid_for(&self, now_ms: u64, margin_ms: u64) -> bool {
        self.expires_at_ms > now_ms.saturating_add(margin_ms)
    }
}

/// The stored item. A missing item reads as the default (nothing issued yet, version 0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenState {
    pub access_token: Option<Credential>,
    /// The access_token before the last refresh, until WeChat stops honouring it.
    pub previous_access_token: Option<Credential>,
    pub jsapi_ticket: Option<Credential>,
    pub wx_card_ticket: Option<Credential>,
    /// Incremented by every published refresh.
    pub version: u64,
    /// When the last refresh was published (Unix ms).
    pub refreshed_at_ms: u64,
    pub lock_owner: Option<String>,
    pub lock_until_ms: u64,
}

/// What a refresh publishes; `None` fields keep their stored value.
#[derive(Debug, Default, Clone)]
pub struct Update {
    pub access_token: Option<Credential>,
    pub previous_access_token: Option<Credential>,
    pub jsapi_ticket: Option<Credential>,
    pub wx_card_ticket: Option<Credential>,
    pub refreshed_at_ms: u64,
}

pub enum Lock {
    /// We own the lock; the state as it is now.
    Acquired(TokenState),
    /// Someone else holds a live lease; the state as it is now.
    Held(TokenState),
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "token store: {}", self.0)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

fn store_err<E: std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> StoreError {
    StoreError(DisplayErrorContext(&e).to_string())
}

#[derive(Clone)]
pub struct TokenStore {
    client: Client,
    table: String,
}

impl TokenStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        TokenStore {
            client,
            table: table.into(),
        }
    }

    fn key(appid: &str) -> AttributeValue {
        AttributeValue::S(appid.to_string())
    }

    /// Strongly consistent read: waiters poll this for the winner's write.
    pub async fn load(&self, appid: &str) -> Result<TokenState, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", Self::key(appid))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_err)?;
        Ok(out.item.as_ref().map(parse).unwrap_or_default())
    }

    /// Takes the refresh lock if it is free or its lease has ended.
    pub async fn try_lock(
        &self,
        appid: &str,
        owner: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<Lock, StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::key(appid))
            .update_expression("SET lock_owner = :me, lock_until_ms = :until")
            .condition_expression("attribute_not_exists(lock_owner) OR lock_until_ms < :now")
            .expression_attribute_values(":me", AttributeValue::S(owner.to_string()))
            .expression_attribute_values(":until", num(now_ms + lease_ms))
            .expression_attribute_values(":now", num(now_ms))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(out) => Ok(Lock::Acquired(
                out.attributes.as_ref().map(parse).unwrap_or_default(),
            )),
            Err(SdkError::ServiceError(se)) => match se.err() {
                UpdateItemError::ConditionalCheckFailedException(ccf) => {
                    let state = match ccf.item() {
                        Some(item) => parse(item),
                        None => self.load(appid).await?,
                    };
                    Ok(Lock::Held(state))
                }
                _ => Err(store_err(SdkError::ServiceError(se))),
            },
            Err(e) => Err(store_err(e)),
        }
    }

    /// Publishes a refresh and releases the lock in one write, only if `owner` still holds it.
    /// `Ok(None)`: the lease was lost to another holder; nothing was written.
    pub async fn commit(
        &self,
        appid: &str,
        owner: &str,
        update: &Update,
    ) -> Result<Option<TokenState>, StoreError> {
        let mut set = vec![
            "version = if_not_exists(version, :zero) + :one".to_string(),
            "refreshed_at_ms = :refreshed".to_string(),
        ];
        let mut values: HashMap<String, AttributeValue> = HashMap::from([
            (":me".into(), AttributeValue::S(owner.to_string())),
            (":zero".into(), num(0)),
            (":one".into(), num(1)),
            (":refreshed".into(), num(update.refreshed_at_ms)),
        ]);
        for (name, cred) in [
            ("access_token", &update.access_token),
            ("previous_access_token", &update.previous_access_token),
            ("jsapi_ticket", &update.jsapi_ticket),
            ("wx_card_ticket", &update.wx_card_ticket),
        ] {
            if let Some(c) = cred {
                set.push(format!("{name} = :{name}, {name}_expires_ms = :{name}_exp"));
                values.insert(format!(":{name}"), AttributeValue::S(c.value.clone()));
                values.insert(format!(":{name}_exp"), num(c.expires_at_ms));
            }
        }
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::key(appid))
            .update_expression(format!(
                "SET {} REMOVE lock_owner, lock_until_ms",
                set.join(", ")
            ))
            .condition_expression("lock_owner = :me")
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match res {
            Ok(out) => Ok(Some(out.attributes.as_ref().map(parse).unwrap_or_default())),
            Err(e) if is_conditional_failure(&e) => Ok(None),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Releases the lock without publishing anything (the refresh failed). A lock already taken
    /// over by someone else is left alone.
    pub async fn release(&self, appid: &str, owner: &str) -> Result<(), StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::key(appid))
            .update_expression("REMOVE lock_owner, lock_until_ms")
            .condition_expression("lock_owner = :me")
            .expression_attribute_values(":me", AttributeValue::S(owner.to_string()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(store_err(e)),
        }
    }
}

fn is_conditional_failure<R>(e: &SdkError<UpdateItemError, R>) -> bool {
    e.as_service_error()
        .is_some_and(|se| se.is_conditional_check_failed_exception())
}

fn num(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
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
        version: n("version").unwrap_or(0),
        refreshed_at_ms: n("refreshed_at_ms").unwrap_or(0),
        lock_owner: s("lock_owner"),
        lock_until_ms: n("lock_until_ms").unwrap_or(0),
    }
}
