//! The Redis backend: the store's semantics are Redis's own, so each operation is one
//! command (`GET`, `SET [EX]`, `INCRBY`, `RPUSH`, `LRANGE`, `SADD`, ...) or a `MULTI`/`EXEC`
//! pair where the API reports two numbers (removed count and new length).
//!
//! A [`ConnectionManager`] multiplexes all calls over one connection and reconnects by itself
//! when the connection drops (for example when Redis restarts): the request that sees the
//! drop fails with [`KvError::Unavailable`], later ones succeed once Redis is back. Requests
//! are not retried here, because a retried `INCRBY` or `RPUSH` could apply twice.
//!
//! Set members come back sorted, like every other backend's.
//!
//! The batched operations are one round trip each: `GetMany` and `SetMany` one
//! `MULTI`/`EXEC` of `GET`s or `SET`/`PSETEX`es (atomic, and `GET`'s own wrong-type error per
//! key, which `MGET` would hide as a missing key), `DelMany` one `DEL k1 k2 ...`.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, RedisError};
use async_trait::async_trait;

use crate::backend::{KvBackend, ListRemoval, Removal, SetChange, SetItem, check_batch};
use crate::config::RedisConfig;
use crate::error::KvError;

/// A store in a Redis database.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
}

/// Reconnection attempts (with exponential back-off from 100 ms) before a connection
/// attempt is reported as failed; a later request starts a new round.
const CONNECT_RETRIES: usize = 2;

impl RedisStore {
    /// Connects to `config.url` and checks the server answers.
    pub async fn open(config: &RedisConfig) -> Result<Self, KvError> {
        let open_err = |e: RedisError| KvError::Open {
            backend: "redis",
            reason: format!(
                "cannot connect to Redis at {}: {e}; check the `url` link value and that redis-server is running",
                config.url
            ),
        };
        let client = ::redis::Client::open(config.url.as_str()).map_err(open_err)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(CONNECT_RETRIES)
            .set_max_delay(Duration::from_secs(2));
        let mut conn = client
            .get_connection_manager_with_config(manager_config)
            .await
            .map_err(open_err)?;
        let _: String = ::redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(open_err)?;
        Ok(Self { conn })
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

/// Maps a Redis error for an operation on `key`.
fn map_err(key: &str, operation: &'static str, expected: &'static str, e: RedisError) -> KvError {
    // Server errors come alone or, from MULTI/EXEC, one per failed command.
    let server_errors = e.clone().into_server_errors().unwrap_or_default();
    let any = |pred: &dyn Fn(&str, &str) -> bool| {
        server_errors
            .iter()
            .any(|(_, se)| pred(se.code(), se.details().unwrap_or_default()))
    };
    if any(&|code, _| code == "WRONGTYPE") {
        return KvError::WrongType {
            key: key.to_string(),
            operation,
            expected,
            found: "a value of another type",
        };
    }
    if any(&|_, detail| detail.contains("not an integer")) {
        return KvError::NotAnInteger {
            key: key.to_string(),
        };
    }
    if any(&|_, detail| detail.contains("overflow")) {
        return KvError::Overflow {
            key: key.to_string(),
        };
    }
    if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_connection_refusal() {
        return KvError::Unavailable {
            backend: "redis",
            reason: e.to_string(),
        };
    }
    KvError::Backend {
        backend: "redis",
        reason: e.to_string(),
    }
}

/// Maps the error of a batched command over `keys`: a server error names the key of the
/// first failing command (MULTI/EXEC reports each command's error with its index).
fn map_batch_err(
    keys: &[&str],
    operation: &'static str,
    expected: &'static str,
    e: RedisError,
) -> KvError {
    let failed = e
        .clone()
        .into_server_errors()
        .and_then(|errors| errors.iter().map(|(i, _)| *i).min())
        .and_then(|i| keys.get(i).copied());
    match failed {
        Some(key) => map_err(key, operation, expected, e),
        None => map_err(&keys.join(","), operation, expected, e),
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[async_trait]
impl KvBackend for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        self.conn()
            .get(key)
            .await
            .map_err(|e| map_err(key, "Get", "a string", e))
    }

    async fn set(&self, key: &str, value: &str, expires: Option<Duration>) -> Result<(), KvError> {
        let mut conn = self.conn();
        let result = match expires {
            // Sub-second expiries round up: Redis's EX takes whole seconds, PX milliseconds.
            Some(d) => {
                let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
                conn.pset_ex(key, value, ms).await
            }
            None => conn.set(key, value).await,
        };
        result.map_err(|e| map_err(key, "Set", "a string", e))
    }

    async fn del(&self, key: &str) -> Result<bool, KvError> {
        let n: i64 = self
            .conn()
            .del(key)
            .await
            .map_err(|e| map_err(key, "Del", "any value", e))?;
        Ok(n > 0)
    }

    async fn exists(&self, key: &str) -> Result<bool, KvError> {
        self.conn()
            .exists(key)
            .await
            .map_err(|e| map_err(key, "KeyExists", "any value", e))
    }

    async fn add(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.conn()
            .incr(key, delta)
            .await
            .map_err(|e| map_err(key, "Add", "a string", e))
    }

    async fn list_push(&self, key: &str, value: &str) -> Result<u64, KvError> {
        let n: i64 = self
            .conn()
            .rpush(key, value)
            .await
            .map_err(|e| map_err(key, "Push", "a list", e))?;
        Ok(count(n))
    }

    async fn list_range(&self, key: &str, start: i64, stop: i64) -> Result<Vec<String>, KvError> {
        let (Ok(start), Ok(stop)) = (isize::try_from(start), isize::try_from(stop)) else {
            return Ok(Vec::new());
        };
        self.conn()
            .lrange(key, start, stop)
            .await
            .map_err(|e| map_err(key, "Range", "a list", e))
    }

    async fn list_remove(
        &self,
        key: &str,
        value: &str,
        which: Removal,
    ) -> Result<ListRemoval, KvError> {
        let n: isize = match which {
            Removal::All => 0,
            Removal::First => 1,
        };
        let (removed, len): (i64, i64) = ::redis::pipe()
            .atomic()
            .lrem(key, n, value)
            .llen(key)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| map_err(key, "ListItemDelete", "a list", e))?;
        Ok(ListRemoval {
            removed: count(removed),
            len: count(len),
        })
    }

    async fn set_add(&self, key: &str, member: &str) -> Result<SetChange, KvError> {
        let (added, len): (i64, i64) = ::redis::pipe()
            .atomic()
            .sadd(key, member)
            .scard(key)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| map_err(key, "SetAdd", "a set", e))?;
        Ok(SetChange {
            changed: added > 0,
            len: count(len),
        })
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<SetChange, KvError> {
        let (removed, len): (i64, i64) = ::redis::pipe()
            .atomic()
            .srem(key, member)
            .scard(key)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| map_err(key, "SetRemove", "a set", e))?;
        Ok(SetChange {
            changed: removed > 0,
            len: count(len),
        })
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, KvError> {
        let mut members: Vec<String> = self
            .conn()
            .smembers(key)
            .await
            .map_err(|e| map_err(key, "SetQuery", "a set", e))?;
        members.sort_unstable();
        Ok(members)
    }

    async fn set_union(&self, keys: &[String]) -> Result<Vec<String>, KvError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut members: Vec<String> = self
            .conn()
            .sunion(keys)
            .await
            .map_err(|e| map_err(&keys.join(","), "SetUnion", "a set", e))?;
        members.sort_unstable();
        Ok(members)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, KvError> {
        check_batch("GetMany", keys.len())?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        for key in keys {
            pipe.get(key);
        }
        let values: Vec<Option<String>> =
            pipe.query_async(&mut self.conn()).await.map_err(|e| {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                map_batch_err(&keys, "GetMany", "a string", e)
            })?;
        if values.len() != keys.len() {
            return Err(KvError::Backend {
                backend: "redis",
                reason: format!(
                    "GetMany asked for {} keys and got {} replies",
                    keys.len(),
                    values.len()
                ),
            });
        }
        Ok(values)
    }

    async fn set_many(&self, items: &[SetItem]) -> Result<(), KvError> {
        check_batch("SetMany", items.len())?;
        if items.is_empty() {
            return Ok(());
        }
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        for item in items {
            match item.expires {
                // As in `set`: sub-second expiries round up to a millisecond.
                Some(d) => {
                    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
                    pipe.pset_ex(&item.key, &item.value, ms).ignore();
                }
                None => {
                    pipe.set(&item.key, &item.value).ignore();
                }
            }
        }
        pipe.query_async::<()>(&mut self.conn()).await.map_err(|e| {
            let keys: Vec<&str> = items.iter().map(|i| i.key.as_str()).collect();
            map_batch_err(&keys, "SetMany", "a string", e)
        })
    }

    async fn del_many(&self, keys: &[String]) -> Result<u64, KvError> {
        check_batch("DelMany", keys.len())?;
        if keys.is_empty() {
            return Ok(0);
        }
        // DEL counts each existing key once, however often it is named.
        let n: i64 = self
            .conn()
            .del(keys)
            .await
            .map_err(|e| map_err(&keys.join(","), "DelMany", "any value", e))?;
        Ok(count(n))
    }

    async fn set_intersection(&self, keys: &[String]) -> Result<Vec<String>, KvError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut members: Vec<String> = self
            .conn()
            .sinter(keys)
            .await
            .map_err(|e| map_err(&keys.join(","), "SetIntersection", "a set", e))?;
        members.sort_unstable();
        Ok(members)
    }
}
