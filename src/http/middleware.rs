//! Request middleware: the request id, the request's metrics and its log line.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use uuid::Uuid;

use crate::http::state::AppState;
use crate::metrics;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest client-supplied request id that is kept; anything longer or odd is replaced.
const MAX_REQUEST_ID: usize = 128;

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
