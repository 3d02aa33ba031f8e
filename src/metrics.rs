//! Prometheus metrics, rendered in the text exposition format at `GET /metrics`.

use std::time::Duration;

use actix_web::http::Method;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::store::Store;

/// Cheap to clone: every clone counts into the same registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    logins: IntCounterVec,
    refresh_reuse: IntCounter,
    rate_limited: IntCounter,
    sessions_revoked: IntCounter,
    mail_dead_letters: IntCounter,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("latchkey".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )?;
        let logins = IntCounterVec::new(
            Opts::new("logins_total", "Password logins by result"),
            &["result"],
        )?;
        let refresh_reuse = IntCounter::new(
            "refresh_token_reuse_total",
            "Rotated-away refresh tokens presented again (sessions revoked as stolen)",
        )?;
        let rate_limited =
            IntCounter::new("rate_limited_total", "Requests refused for a rate limit")?;
        let sessions_revoked =
            IntCounter::new("sessions_revoked_total", "Sessions revoked, for any reason")?;
        let mail_dead_letters = IntCounter::new(
            "mail_dead_letters_total",
            "Mails given up after LATCHKEY_MAIL_MAX_ATTEMPTS failed deliveries",
        )?;
        let pool_connections = IntGauge::new("db_pool_connections", "Open database connections")?;
        let pool_idle = IntGauge::new("db_pool_idle_connections", "Idle database connections")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        registry.register(Box::new(refresh_reuse.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(sessions_revoked.clone()))?;
        registry.register(Box::new(mail_dead_letters.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_idle.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            logins,
            refresh_reuse,
            rate_limited,
            sessions_revoked,
            mail_dead_letters,
            pool_connections,
            pool_idle,
        })
    }

    /// Counts one request. `route` must be a registered pattern or `"unmatched"` and `method` a
    /// [`method_label`]: every label value comes from a small fixed set, so no request can add a
    /// time series (each one is memory kept for the life of the process and bytes in every scrape).
    pub fn request(&self, method: &'static str, route: &str, status: u16, latency: Duration) {
        self.requests
            .with_label_values(&[method, route, status.to_string().as_str()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(latency.as_secs_f64());
        if status == 429 {
            self.rate_limited.inc();
        }
    }

    pub fn login(&self, succeeded: bool) {
        let result = if succeeded { "success" } else { "failure" };
        self.logins.with_label_values(&[result]).inc();
    }

    pub fn refresh_reuse(&self) {
        self.refresh_reuse.inc();
    }

    pub fn sessions_revoked(&self, count: usize) {
        self.sessions_revoked.inc_by(count as u64);
    }

    pub fn mail_dead_letter(&self) {
        self.mail_dead_letters.inc();
    }

    /// The exposition text, with the pool gauges read now.
    pub fn render(&self, store: &dyn Store) -> Result<String, prometheus::Error> {
        let pool = store.pool_stats();
        self.pool_connections.set(i64::from(pool.connections));
        self.pool_idle.set(pool.idle as i64);
        let mut text = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut text)?;
        Ok(String::from_utf8_lossy(&text).into_owned())
    }
}

/// The label of a request method: one of the standard methods, or `"other"` for any extension
/// method a client makes up (actix accepts any token as a method).
pub fn method_label(method: &Method) -> &'static str {
    [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::TRACE, "TRACE"),
        (Method::CONNECT, "CONNECT"),
    ]
    .into_iter()
    .find(|(standard, _)| standard == method)
    .map_or("other", |(_, label)| label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_methods_keep_their_name_and_any_other_is_other() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for made_up in ["FOO", "get", "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"] {
            let method = Method::from_bytes(made_up.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other", "{made_up}");
        }
    }
}
