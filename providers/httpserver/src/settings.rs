//! Listener settings of one link, read from the link's values.
//!
//! Keys follow the published httpserver provider where it had them (`address`, `port`,
//! `max_content_len`, `config_json`) and add `timeout_ms`, `header_timeout_ms` and
//! `body_timeout_ms`. Values in `config_json` (a JSON object with the same keys) are read
//! first; plain link values override them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Where the listener binds when a link names neither `address` nor `port`.
pub const DEFAULT_ADDRESS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8000);
/// Largest request body accepted when the link does not say (1 MiB, the NATS default
/// message size). The invocation that carries a body to the actor is limited too (the
/// host's max payload, 1 MiB less room for the envelope by default), so a body a little
/// under this limit may still be too large for the actor: the provider answers 413 for
/// that as well, as soon as the host refuses the invocation.
pub const DEFAULT_MAX_CONTENT_LEN: usize = 1024 * 1024;
/// How long a request may wait for the actor's answer when the link does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers when the link does not say.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to send a request's whole body, counted from the end of its
/// headers, when the link does not say.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// How one actor's listener behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// The socket address to bind.
    pub address: SocketAddr,
    /// Largest accepted request body in bytes; larger bodies get 413.
    pub max_content_len: usize,
    /// Time allowed for the actor to answer; after it the client gets 504.
    pub timeout: Duration,
    /// Time a client gets to send a request's headers; after it the connection is closed.
    pub header_timeout: Duration,
    /// Time a client gets to send a request's whole body (a total, not per read, so a
    /// body trickled a byte at a time is cut off too); after it the client gets 408 and
    /// the connection is closed.
    pub body_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            address: DEFAULT_ADDRESS,
            max_content_len: DEFAULT_MAX_CONTENT_LEN,
            timeout: DEFAULT_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

/// A link value that cannot be used; the message names the key and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("link value `{key}` = {value:?} is invalid: {expected}")]
pub struct SettingsError {
    /// The offending key.
    pub key: String,
    /// The value given.
    pub value: String,
    /// What would have been accepted.
    pub expected: &'static str,
}

impl ServerSettings {
    /// Reads the settings from a link's values; unknown keys are ignored so that links
    /// written for the published provider keep working.
    pub fn from_link_values(values: &HashMap<String, String>) -> Result<Self, SettingsError> {
        let mut merged: HashMap<String, String> = HashMap::new();
        if let Some(json) = values.get("config_json") {
            merged.extend(parse_config_json(json)?);
        }
        for (k, v) in values {
            if k != "config_json" {
                merged.insert(k.to_ascii_lowercase(), v.clone());
            }
        }

        let mut settings = ServerSettings::default();
        if let Some(port) = merged.get("port") {
            let port: u16 = port.trim().parse().map_err(|_| SettingsError {
                key: "port".into(),
                value: port.clone(),
                expected: "a TCP port number 0-65535 (binds 127.0.0.1)",
            })?;
            settings.address = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        }
        if let Some(address) = merged.get("address") {
            settings.address = address.trim().parse().map_err(|_| SettingsError {
                key: "address".into(),
                value: address.clone(),
                expected: "a socket address such as 0.0.0.0:8080 or 127.0.0.1:8000",
            })?;
        }
        if let Some(len) = merged.get("max_content_len") {
            settings.max_content_len = parse_size(len).ok_or_else(|| SettingsError {
                key: "max_content_len".into(),
                value: len.clone(),
                expected: "a byte count such as 1048576, 512K or 10M",
            })?;
        }
        if let Some(ms) = merged.get("timeout_ms") {
            settings.timeout = parse_millis("timeout_ms", ms)?;
        }
        if let Some(ms) = merged.get("header_timeout_ms") {
            settings.header_timeout = parse_millis("header_timeout_ms", ms)?;
        }
        if let Some(ms) = merged.get("body_timeout_ms") {
            settings.body_timeout = parse_millis("body_timeout_ms", ms)?;
        }
        Ok(settings)
    }
}

/// A positive number of milliseconds, the value of link value `key`.
fn parse_millis(key: &str, value: &str) -> Result<Duration, SettingsError> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .ok_or_else(|| SettingsError {
            key: key.into(),
            value: value.to_string(),
            expected: "a positive number of milliseconds",
        })
}

/// The keys of a `config_json` object, with numbers and strings both accepted.
fn parse_config_json(json: &str) -> Result<HashMap<String, String>, SettingsError> {
    let invalid = || SettingsError {
        key: "config_json".into(),
        value: json.to_string(),
        expected: "a JSON object such as {\"address\": \"0.0.0.0:8080\"}",
    };
    let value: serde_json::Value = serde_json::from_str(json).map_err(|_| invalid())?;
    let object = value.as_object().ok_or_else(invalid)?;
    Ok(object
        .iter()
        .filter_map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((k.to_ascii_lowercase(), text))
        })
        .collect())
}

/// `1048576`, `512K`, `10M` (binary units), or `1G`.
fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, factor) = match text.chars().last()?.to_ascii_uppercase() {
        'K' => (&text[..text.len() - 1], 1024),
        'M' => (&text[..text.len() - 1], 1024 * 1024),
        'G' => (&text[..text.len() - 1], 1024 * 1024 * 1024),
        _ => (text, 1),
    };
    digits.trim().parse::<usize>().ok()?.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_when_the_link_says_nothing() {
        assert_eq!(
            ServerSettings::from_link_values(&HashMap::new()).unwrap(),
            ServerSettings::default()
        );
    }

    #[test]
    fn port_binds_loopback_and_address_wins() {
        let s = ServerSettings::from_link_values(&values(&[("PORT", "9001")])).unwrap();
        assert_eq!(s.address, "127.0.0.1:9001".parse().unwrap());
        let s = ServerSettings::from_link_values(&values(&[
            ("port", "9001"),
            ("address", "0.0.0.0:9002"),
        ]))
        .unwrap();
        assert_eq!(s.address, "0.0.0.0:9002".parse().unwrap());
    }

    #[test]
    fn sizes_and_timeouts() {
        let s = ServerSettings::from_link_values(&values(&[
            ("max_content_len", "512K"),
            ("timeout_ms", "250"),
            ("header_timeout_ms", "1500"),
            ("body_timeout_ms", "1000"),
        ]))
        .unwrap();
        assert_eq!(s.max_content_len, 512 * 1024);
        assert_eq!(s.timeout, Duration::from_millis(250));
        assert_eq!(s.header_timeout, Duration::from_millis(1500));
        assert_eq!(s.body_timeout, Duration::from_secs(1));
        let defaults = ServerSettings::default();
        assert_eq!(defaults.header_timeout, Duration::from_secs(30));
        assert_eq!(defaults.body_timeout, Duration::from_secs(30));
        assert_eq!(parse_size("10M"), Some(10 * 1024 * 1024));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn config_json_is_read_and_plain_values_override_it() {
        let s = ServerSettings::from_link_values(&values(&[
            (
                "config_json",
                r#"{"address": "127.0.0.1:7000", "max_content_len": 100}"#,
            ),
            ("max_content_len", "200"),
        ]))
        .unwrap();
        assert_eq!(s.address, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(s.max_content_len, 200);
    }

    #[test]
    fn each_bad_value_names_its_key() {
        for (key, value) in [
            ("port", "eighty"),
            ("address", "localhost"),
            ("max_content_len", "lots"),
            ("timeout_ms", "0"),
            ("header_timeout_ms", "soon"),
            ("body_timeout_ms", "0"),
            ("config_json", "[1]"),
        ] {
            let err = ServerSettings::from_link_values(&values(&[(key, value)])).unwrap_err();
            assert_eq!(err.key, key);
            assert!(err.to_string().contains(key), "{err}");
        }
    }
}
