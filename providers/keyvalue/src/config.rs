//! Which backend a link uses, parsed from the link's values (merged over the provider's
//! configuration). The actor never chooses: swapping `backend=memory` for `backend=redis`
//! is a link change, not a rebuild.
//!
//! | key | for | meaning |
//! |---|---|---|
//! | `backend` | all | `memory` (default), `file`, `redis` or `nats` |
//! | `path` | file | directory holding the database (created if missing) |
//! | `url` | redis | `redis://[user:password@]host[:port][/db]` |
//! | `url` | nats | `nats://host:port`, or several separated by commas |
//! | `bucket` | nats | JetStream KV bucket name (`A-Za-z0-9_-`), created if missing |
//! | `creds` | nats | `.creds` file to connect with (a secured lattice: `wash lattice init` writes `keyvalue.creds`) |
//! | `tls_ca` | nats | PEM file of the CA the server's certificate chains to |
//! | `connect_timeout_ms` | redis, nats | per connection attempt (default 2000) |
//! | `response_timeout_ms` | redis | per command (default 5000) |
//!
//! Keys are case-insensitive (older wasmCloud providers used `URL`). Other keys, such as
//! the host's `__wasmcloud_*` metadata, are ignored.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use ::redis::IntoConnectionInfo;

/// The allowed values of `backend`, for error messages.
pub const BACKENDS: &str = "memory, file, redis, nats";

/// Default per-attempt connection timeout for Redis and NATS.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default per-command timeout for Redis.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest timeout accepted in a link value.
const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// Why link values do not describe a usable backend. Each message names the link value to
/// fix and what it may be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `backend` names no known backend.
    #[error("link value `backend` is {value:?}; allowed values are {BACKENDS}")]
    UnknownBackend {
        /// The value given.
        value: String,
    },
    /// A value the chosen backend needs is missing.
    #[error("link value `{key}` is required with backend={backend}: {hint}")]
    Missing {
        /// The missing link value.
        key: &'static str,
        /// The chosen backend.
        backend: &'static str,
        /// What to put there.
        hint: &'static str,
    },
    /// A value is present but unusable.
    #[error("link value `{key}` = {value:?} is invalid: {reason}")]
    Invalid {
        /// The offending link value.
        key: &'static str,
        /// What was given.
        value: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

/// Settings of the file backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileConfig {
    /// The directory holding the database.
    pub dir: PathBuf,
}

/// Settings of the Redis backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The server URL.
    pub url: String,
    /// Timeout of one connection attempt.
    pub connect_timeout: Duration,
    /// Timeout of one command.
    pub response_timeout: Duration,
}

/// Settings of the NATS JetStream KV backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// One or more server URLs, comma-separated.
    pub url: String,
    /// The KV bucket.
    pub bucket: String,
    /// Timeout of one connection attempt.
    pub connect_timeout: Duration,
    /// A `.creds` file (user JWT and seed) to connect with.
    pub creds: Option<PathBuf>,
    /// Extra root certificate (PEM) for a server with a private CA.
    pub tls_ca: Option<PathBuf>,
}

/// The backend a link asks for, with its settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BackendConfig {
    /// Process memory; data lives as long as the link.
    #[default]
    Memory,
    /// An embedded redb database in a directory; survives restarts.
    File(FileConfig),
    /// A Redis server.
    Redis(RedisConfig),
    /// A JetStream KV bucket on a NATS server.
    Nats(NatsConfig),
}

impl BackendConfig {
    /// The backend's name as written in `backend=`.
    pub fn kind(&self) -> &'static str {
        match self {
            BackendConfig::Memory => "memory",
            BackendConfig::File(_) => "file",
            BackendConfig::Redis(_) => "redis",
            BackendConfig::Nats(_) => "nats",
        }
    }

    /// Parses link values (see the module docs for the keys).
    pub fn from_values(values: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let values: HashMap<String, &str> = values
            .iter()
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
            .collect();
        let get = |key: &str| values.get(key).copied().filter(|v| !v.is_empty());
        let backend = get("backend").unwrap_or("memory").to_ascii_lowercase();
        match backend.as_str() {
            "memory" => Ok(BackendConfig::Memory),
            "file" => {
                let path = get("path").ok_or(ConfigError::Missing {
                    key: "path",
                    backend: "file",
                    hint: "a directory for the database file, e.g. path=/var/lib/nimbus/kv",
                })?;
                Ok(BackendConfig::File(FileConfig {
                    dir: PathBuf::from(path),
                }))
            }
            "redis" => {
                let url = get("url").ok_or(ConfigError::Missing {
                    key: "url",
                    backend: "redis",
                    hint: "the server URL, e.g. url=redis://127.0.0.1:6379",
                })?;
                validate_redis_url(url)?;
                Ok(BackendConfig::Redis(RedisConfig {
                    url: url.to_string(),
                    connect_timeout: timeout(get("connect_timeout_ms"), "connect_timeout_ms")?
                        .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
                    response_timeout: timeout(get("response_timeout_ms"), "response_timeout_ms")?
                        .unwrap_or(DEFAULT_RESPONSE_TIMEOUT),
                }))
            }
            "nats" => {
                let url = get("url").ok_or(ConfigError::Missing {
                    key: "url",
                    backend: "nats",
                    hint: "the server URL, e.g. url=nats://127.0.0.1:4222",
                })?;
                validate_nats_url(url)?;
                let bucket = get("bucket").ok_or(ConfigError::Missing {
                    key: "bucket",
                    backend: "nats",
                    hint: "the JetStream key-value bucket, e.g. bucket=nimbus_kv",
                })?;
                if !bucket
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    return Err(ConfigError::Invalid {
                        key: "bucket",
                        value: bucket.to_string(),
                        reason: "a bucket name may contain only letters, digits, `_` and `-`"
                            .to_string(),
                    });
                }
                let file = |key| {
                    get(key)
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(PathBuf::from)
                };
                Ok(BackendConfig::Nats(NatsConfig {
                    url: url.to_string(),
                    bucket: bucket.to_string(),
                    connect_timeout: timeout(get("connect_timeout_ms"), "connect_timeout_ms")?
                        .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
                    creds: file("creds"),
                    tls_ca: file("tls_ca"),
                }))
            }
            _ => Err(ConfigError::UnknownBackend {
                value: get("backend").unwrap_or_default().to_string(),
            }),
        }
    }
}

fn validate_redis_url(url: &str) -> Result<(), ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        key: "url",
        value: url.to_string(),
        reason,
    };
    if url.starts_with("rediss://") {
        return Err(invalid(
            "TLS (rediss://) is not built into this provider; use redis:// on a trusted network or a TLS-terminating proxy".to_string(),
        ));
    }
    if !(url.starts_with("redis://")
        || url.starts_with("redis+unix://")
        || url.starts_with("unix://"))
    {
        return Err(invalid(
            "expected redis://host[:port][/db] (or redis+unix:///path/to/socket)".to_string(),
        ));
    }
    url.into_connection_info()
        .map(drop)
        .map_err(|e| invalid(e.to_string()))
}

fn validate_nats_url(url: &str) -> Result<(), ConfigError> {
    for part in url.split(',').map(str::trim) {
        if !part.contains("://") {
            return Err(ConfigError::Invalid {
                key: "url",
                value: url.to_string(),
                reason: format!("{part:?} has no scheme; expected nats://host:port"),
            });
        }
        part.parse::<async_nats::ServerAddr>()
            .map_err(|e| ConfigError::Invalid {
                key: "url",
                value: url.to_string(),
                reason: e.to_string(),
            })?;
    }
    Ok(())
}

fn timeout(value: Option<&str>, key: &'static str) -> Result<Option<Duration>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let invalid = || ConfigError::Invalid {
        key,
        value: value.to_string(),
        reason: format!(
            "expected a whole number of milliseconds between 1 and {}",
            MAX_TIMEOUT.as_millis()
        ),
    };
    let ms: u64 = value.parse().map_err(|_| invalid())?;
    let d = Duration::from_millis(ms);
    if ms == 0 || d > MAX_TIMEOUT {
        return Err(invalid());
    }
    Ok(Some(d))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<BackendConfig, ConfigError> {
        let values = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BackendConfig::from_values(&values)
    }

    #[test]
    fn no_values_means_memory() {
        assert_eq!(parse(&[]).unwrap(), BackendConfig::Memory);
        assert_eq!(
            parse(&[("backend", "MEMORY")]).unwrap(),
            BackendConfig::Memory
        );
        assert_eq!(
            parse(&[("__wasmcloud_name", "x"), ("backend", "")]).unwrap(),
            BackendConfig::Memory
        );
    }

    #[test]
    fn unknown_backend_names_the_key_and_the_allowed_values() {
        let err = parse(&[("backend", "etcd")]).unwrap_err();
        assert_eq!(
            err,
            ConfigError::UnknownBackend {
                value: "etcd".into()
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains("`backend`") && msg.contains("\"etcd\""),
            "{msg}"
        );
        assert!(msg.contains("memory, file, redis, nats"), "{msg}");
    }

    #[test]
    fn file_needs_a_path() {
        let err = parse(&[("backend", "file")]).unwrap_err();
        assert!(matches!(err, ConfigError::Missing { key: "path", .. }));
        assert!(err.to_string().contains("`path`"));
        assert_eq!(
            parse(&[("backend", "file"), ("path", "/tmp/kv")]).unwrap(),
            BackendConfig::File(FileConfig {
                dir: "/tmp/kv".into()
            })
        );
    }

    #[test]
    fn redis_url_is_required_validated_and_keys_are_case_insensitive() {
        assert!(matches!(
            parse(&[("backend", "redis")]).unwrap_err(),
            ConfigError::Missing { key: "url", .. }
        ));
        for bad in ["http://x", "rediss://h:1", "redis://h:notaport"] {
            let err = parse(&[("backend", "redis"), ("url", bad)]).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { key: "url", .. }),
                "{bad}: {err}"
            );
        }
        assert_eq!(
            parse(&[
                ("BACKEND", "Redis"),
                ("URL", "redis://127.0.0.1:6380/2"),
                ("connect_timeout_ms", "150"),
            ])
            .unwrap(),
            BackendConfig::Redis(RedisConfig {
                url: "redis://127.0.0.1:6380/2".into(),
                connect_timeout: Duration::from_millis(150),
                response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            })
        );
    }

    #[test]
    fn timeouts_must_be_positive_whole_milliseconds() {
        for bad in ["0", "-5", "1.5", "abc", "600001"] {
            let err = parse(&[
                ("backend", "redis"),
                ("url", "redis://h"),
                ("response_timeout_ms", bad),
            ])
            .unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        key: "response_timeout_ms",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn nats_needs_url_and_a_valid_bucket() {
        assert!(matches!(
            parse(&[("backend", "nats"), ("bucket", "kv")]).unwrap_err(),
            ConfigError::Missing { key: "url", .. }
        ));
        assert!(matches!(
            parse(&[("backend", "nats"), ("url", "nats://h:4222")]).unwrap_err(),
            ConfigError::Missing { key: "bucket", .. }
        ));
        assert!(matches!(
            parse(&[("backend", "nats"), ("url", "redis://h"), ("bucket", "kv")]).unwrap_err(),
            ConfigError::Invalid { key: "url", .. }
        ));
        assert!(matches!(
            parse(&[("backend", "nats"), ("url", "nats://h"), ("bucket", "a.b")]).unwrap_err(),
            ConfigError::Invalid { key: "bucket", .. }
        ));
        assert_eq!(
            parse(&[
                ("backend", "nats"),
                ("url", "nats://a:4222, nats://b:4222"),
                ("bucket", "my_kv-1"),
            ])
            .unwrap(),
            BackendConfig::Nats(NatsConfig {
                url: "nats://a:4222, nats://b:4222".into(),
                bucket: "my_kv-1".into(),
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                creds: None,
                tls_ca: None,
            })
        );
        match parse(&[
            ("backend", "nats"),
            ("url", "nats://a:4222"),
            ("bucket", "kv"),
            ("creds", "/home/u/.wash/lattices/default/keyvalue.creds"),
        ])
        .unwrap()
        {
            BackendConfig::Nats(c) => assert_eq!(
                c.creds,
                Some(PathBuf::from(
                    "/home/u/.wash/lattices/default/keyvalue.creds"
                ))
            ),
            other => panic!("{other:?}"),
        }
    }
}
