//! Where spans go and how they are batched, from the standard OpenTelemetry environment
//! variables (<https://opentelemetry.io/docs/specs/otel/protocol/exporter/>,
//! <https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/>).

use std::time::Duration;

/// An OTLP/HTTP traces endpoint, split for the exporter's HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The whole URL, for messages (e.g. `http://127.0.0.1:4318/v1/traces`).
    pub url: String,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port (80 when the URL names none).
    pub port: u16,
    /// The `Host` header value.
    pub authority: String,
    /// The request path (with query, if any).
    pub path: String,
}

/// Why an endpoint URL is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Only plain HTTP is spoken (no TLS stack in the exporter).
    #[error(
        "OTLP endpoint {0}: only http:// is supported; point it at a local collector or agent (e.g. http://127.0.0.1:4318) that forwards over TLS"
    )]
    UnsupportedScheme(String),
    /// The URL does not parse.
    #[error(
        "OTLP endpoint {url} is not a valid URL: {reason}; expected e.g. http://127.0.0.1:4318"
    )]
    Invalid {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
}

impl Endpoint {
    /// Parses `http://host[:port][/path]`.
    pub fn parse(url: &str) -> Result<Endpoint, EndpointError> {
        let url = url.trim();
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(EndpointError::UnsupportedScheme(url.to_string()));
        };
        let invalid = |reason| EndpointError::Invalid {
            url: url.to_string(),
            reason,
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(invalid("no host"));
        }
        if authority.contains('@') {
            return Err(invalid("credentials in the URL are not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some(end) = v6.find(']') else {
                return Err(invalid("unclosed [ in the host"));
            };
            let port = match &v6[end + 1..] {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| invalid("junk after ]"))?),
            };
            (&v6[..end], port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| invalid("the port is not a number"))?,
        };
        Ok(Endpoint {
            url: url.to_string(),
            host: host.to_string(),
            port,
            authority: authority.to_string(),
            path: path.to_string(),
        })
    }
}

/// The exporter's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where batches are POSTed.
    pub endpoint: Endpoint,
    /// The `service.name` resource attribute (e.g. `nimbus-host`).
    pub service_name: String,
    /// Extra resource attributes (`process.pid` is always added).
    pub resource_attributes: Vec<(String, String)>,
    /// Spans waiting for export at most; more are dropped (`OTEL_BSP_MAX_QUEUE_SIZE`).
    pub max_queue_size: usize,
    /// Spans per POST at most (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`).
    pub max_export_batch_size: usize,
    /// How long a batch gathers before it is sent (`OTEL_BSP_SCHEDULE_DELAY`).
    pub schedule_delay: Duration,
    /// How long one POST may take (`OTEL_EXPORTER_OTLP_TIMEOUT`).
    pub timeout: Duration,
}

/// The path OTLP/HTTP serves traces on, appended to `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub const TRACES_PATH: &str = "/v1/traces";

impl Config {
    /// Settings for `traces_url` with the defaults: queue 2048, batch 512, timeout 10 s,
    /// and a 1 s schedule delay (the specification's default is 5 s; traces of a
    /// development loop should show up while one still looks).
    pub fn new(traces_url: &str, service_name: impl Into<String>) -> Result<Config, EndpointError> {
        Ok(Config {
            endpoint: Endpoint::parse(traces_url)?,
            service_name: service_name.into(),
            resource_attributes: Vec::new(),
            max_queue_size: 2048,
            max_export_batch_size: 512,
            schedule_delay: Duration::from_millis(1000),
            timeout: Duration::from_secs(10),
        })
    }

    /// From the process environment; `Ok(None)` when no endpoint is configured or
    /// tracing is turned off (`OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none`).
    pub fn from_env(default_service_name: &str) -> Result<Option<Config>, EndpointError> {
        Self::from_vars(default_service_name, |k| std::env::var(k).ok())
    }

    /// As [`Config::from_env`], reading variables through `var`.
    ///
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is used as it is; otherwise `/v1/traces` is
    /// appended to `OTEL_EXPORTER_OTLP_ENDPOINT`. `OTEL_SERVICE_NAME` overrides the service
    /// name.
    pub fn from_vars(
        default_service_name: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Config>, EndpointError> {
        let set = |k: &str| {
            var(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        if let Some(exporters) = set("OTEL_TRACES_EXPORTER")
            && !exporters.split(',').any(|e| e.trim() == "otlp")
        {
            return Ok(None);
        }
        let url = match (
            set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            set("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(traces), _) => traces,
            (None, Some(base)) => traces_url(&base),
            (None, None) => return Ok(None),
        };
        let service = set("OTEL_SERVICE_NAME").unwrap_or_else(|| default_service_name.to_string());
        let mut config = Config::new(&url, service)?;
        let number = |k: &str| set(k).and_then(|v| v.parse::<u64>().ok());
        if let Some(n) = number("OTEL_BSP_MAX_QUEUE_SIZE").filter(|n| *n > 0) {
            config.max_queue_size = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE").filter(|n| *n > 0) {
            config.max_export_batch_size = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(ms) = number("OTEL_BSP_SCHEDULE_DELAY") {
            config.schedule_delay = Duration::from_millis(ms);
        }
        if let Some(ms) = number("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
            .or_else(|| number("OTEL_EXPORTER_OTLP_TIMEOUT"))
            .filter(|ms| *ms > 0)
        {
            config.timeout = Duration::from_millis(ms);
        }
        Ok(Some(config))
    }

    /// The base endpoint to hand to child processes as `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// (this endpoint without `/v1/traces`); `None` when the traces URL has another path.
    pub fn base_endpoint(&self) -> Option<String> {
        self.endpoint
            .url
            .strip_suffix(TRACES_PATH)
            .map(|base| base.to_string())
    }

    /// The resource attributes every exported span carries.
    pub(crate) fn resource(&self) -> Vec<(String, crate::AttrValue)> {
        let mut attrs = vec![
            (
                "service.name".to_string(),
                crate::AttrValue::Str(self.service_name.clone()),
            ),
            (
                "process.pid".to_string(),
                crate::AttrValue::Int(i64::from(std::process::id())),
            ),
            (
                "telemetry.sdk.name".to_string(),
                crate::AttrValue::Str("nimbus-telemetry".to_string()),
            ),
        ];
        attrs.extend(
            self.resource_attributes
                .iter()
                .map(|(k, v)| (k.clone(), crate::AttrValue::Str(v.clone()))),
        );
        attrs
    }
}

/// `base` + `/v1/traces`, with one slash between.
pub fn traces_url(base: &str) -> String {
    format!("{}{TRACES_PATH}", base.trim_end_matches('/'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Option<Config> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars("svc", |k| vars.get(k).cloned()).unwrap()
    }

    #[test]
    fn the_base_endpoint_gets_the_traces_path_and_the_traces_endpoint_is_used_as_is() {
        let c = from(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).unwrap();
        assert_eq!(c.endpoint.url, "http://collector:4318/v1/traces");
        assert_eq!(c.endpoint.path, "/v1/traces");
        assert_eq!(
            (c.endpoint.host.as_str(), c.endpoint.port),
            ("collector", 4318)
        );
        assert_eq!(c.base_endpoint().as_deref(), Some("http://collector:4318"));
        assert_eq!(c.service_name, "svc");

        let c = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:1"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://[::1]:9999/custom",
            ),
            ("OTEL_SERVICE_NAME", "named"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ])
        .unwrap();
        assert_eq!((c.endpoint.host.as_str(), c.endpoint.port), ("::1", 9999));
        assert_eq!(c.endpoint.path, "/custom");
        assert_eq!(c.endpoint.authority, "[::1]:9999");
        assert_eq!(c.base_endpoint(), None);
        assert_eq!(c.service_name, "named");
        assert_eq!(c.schedule_delay, Duration::from_millis(50));
    }

    #[test]
    fn no_endpoint_or_tracing_turned_off_configures_nothing() {
        assert_eq!(from(&[]), None);
        assert_eq!(from(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")]), None);
        let on = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        assert_eq!(from(&[on, ("OTEL_TRACES_EXPORTER", "none")]), None);
        assert_eq!(from(&[on, ("OTEL_SDK_DISABLED", "true")]), None);
        assert!(from(&[on, ("OTEL_TRACES_EXPORTER", "otlp")]).is_some());
    }

    #[test]
    fn unusable_endpoints_say_what_to_use() {
        let err = Endpoint::parse("https://c:4318").unwrap_err();
        assert!(err.to_string().contains("only http://"), "{err}");
        for bad in [
            "http://",
            "http://:4318",
            "http://c:port",
            "http://[::1",
            "http://u@c",
        ] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert!(err.to_string().contains("expected e.g."), "{bad}: {err}");
        }
        let e = Endpoint::parse("http://c").unwrap();
        assert_eq!((e.port, e.path.as_str()), (80, "/"));
    }
}
