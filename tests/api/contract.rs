//! Keeps openapi.yaml true: every operation it documents is served, and every route the server
//! serves is documented.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::spawn_app_with;

const SPEC: &str = include_str!("../../openapi.yaml");

/// Every route the application registers (src/http/routes/mod.rs), as `METHOD /path`.
const SERVED: &[&str] = &[
    "POST /v1/auth/signup",
    "POST /v1/auth/login",
    "POST /v1/auth/refresh",
    "POST /v1/auth/logout",
    "GET /v1/auth/verify",
    "POST /v1/auth/mfa/verify",
    "POST /v1/auth/mfa/step-up",
    "POST /v1/auth/password/forgot",
    "POST /v1/auth/password/reset",
    "POST /v1/auth/email/verify",
    "POST /v1/auth/email/resend",
    "POST /v1/auth/email/confirm-change",
    "GET /v1/me",
    "PATCH /v1/me",
    "DELETE /v1/me",
    "PUT /v1/me/password",
    "GET /v1/me/mfa",
    "POST /v1/me/mfa/totp",
    "DELETE /v1/me/mfa/totp",
    "POST /v1/me/mfa/totp/confirm",
    "POST /v1/me/mfa/recovery-codes",
    "GET /v1/me/sessions",
    "DELETE /v1/me/sessions/{id}",
    "GET /v1/users",
    "GET /v1/users/{id}",
    "PATCH /v1/users/{id}",
    "DELETE /v1/users/{id}",
    "DELETE /v1/users/{id}/mfa",
    "GET /.well-known/jwks.json",
    "GET /healthz",
    "GET /readyz",
    "GET /openapi.yaml",
    "GET /docs",
    "GET /docs/redoc.standalone.js",
    "GET /metrics",
];

/// `METHOD /path` for every operation under `paths:`, read from the YAML's indentation.
fn documented_operations() -> BTreeSet<String> {
    let methods = ["get", "post", "put", "patch", "delete"];
    let mut operations = BTreeSet::new();
    let mut in_paths = false;
    let mut path = String::new();
    for line in SPEC.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            in_paths = line.trim_end() == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /") {
            path = format!("/{}", p.trim_end().trim_end_matches(':'));
        } else if let Some(m) = line.strip_prefix("    ") {
            let method = m.trim_end().trim_end_matches(':');
            if methods.contains(&method) {
                operations.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    operations
}

#[test]
fn every_served_route_is_documented_and_every_documented_route_served() {
    let documented = documented_operations();
    let served: BTreeSet<String> = SERVED.iter().map(|s| s.to_string()).collect();
    assert_eq!(documented, served);
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = spawn_app_with(|config| config.operations.metrics_on_api = true).await;
    for operation in documented_operations() {
        let (method, path) = operation.split_once(' ').unwrap();
        let response = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let code = body["code"].as_str().unwrap_or("");
        assert!(
            code != "not_found" && code != "method_not_allowed",
            "{operation} is documented but not routed ({status})"
        );
    }
}
