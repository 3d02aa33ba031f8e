//! Logs: human-readable or JSON lines through `tracing`, one line per request with a request id,
//! and audit events under their own target (`latchkey::audit`).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use clap::ValueEnum;
use tracing_subscriber::EnvFilter;
use uuid::Uuid;

use crate::metrics;
use crate::startup::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest client-supplied request id that is kept; anything longer or odd is replaced.
const MAX_REQUEST_ID: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The filter when `RUST_LOG` is unset. PostgreSQL's NOTICE messages reach sqlx's log at INFO,
/// and the migrator's `CREATE TABLE IF NOT EXISTS` draws one ("relation _sqlx_migrations already
/// exists, skipping") on every start: noise, not news. sqlx has no setting for the level of
/// notices, so the filter keeps only its warnings; `RUST_LOG` can bring them back.
const DEFAULT_FILTER: &str = "info,sqlx::postgres::notice=warn";

/// Installs the global subscriber. `RUST_LOG` filters (default [`DEFAULT_FILTER`]).
pub fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only for a person at a terminal: in a file or a log collector they are
        // garbage around every level and field name.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// The request id a handler's log lines can name.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Middleware: takes the caller's `X-Request-Id` (or makes one), echoes it back, counts the
/// request in the metrics and logs one line for it.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty() && id.len() <= MAX_REQUEST_ID && id.bytes().all(|b| b.is_ascii_graphic())
        })
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = metrics::method_label(req.method());
    let state = req.app_data::<web::Data<AppState>>().cloned();

    let mut res = next.call(req).await?;

    // The matched pattern (`/v1/users/{id}`), never the raw path: bounded label values.
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16();
    let latency = started.elapsed();
    if let Some(state) = state {
        state.metrics.request(method, &route, status, latency);
    }
    tracing::info!(
        target: "latchkey::http",
        request_id = %request_id,
        method,
        route = %route,
        status,
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request"
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}
