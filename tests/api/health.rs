use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_and_readyz_answer_200() {
    let app = spawn_app().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        json!({ "status": "ok" })
    );
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({ "status": "ready" })
    );
}

#[tokio::test]
async fn the_spec_is_served_as_yaml() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/openapi.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/yaml");
    let body = response.text().await.unwrap();
    assert_eq!(body, include_str!("../../openapi.yaml"));
}

/// The values of every `src`, `href` and `spec-url` attribute in an HTML page.
fn referenced_urls(html: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for attribute in ["src=\"", "href=\"", "spec-url=\""] {
        for (at, _) in html.match_indices(attribute) {
            let rest = &html[at + attribute.len()..];
            let end = rest.find('"').expect("an unterminated attribute");
            urls.push(rest[..end].to_owned());
        }
    }
    urls
}

#[tokio::test]
async fn docs_page_is_html_that_loads_only_same_origin_assets() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self';",
        "connect-src 'self'",
        "worker-src blob:",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    // The server-wide headers still apply.
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let page = response.text().await.unwrap();

    // No URL of another host anywhere in the page, not even protocol-relative.
    assert!(
        !page.contains("http://") && !page.contains("https://") && !page.contains("//"),
        "the page names another host:\n{page}"
    );
    let urls = referenced_urls(&page);
    assert!(
        urls.iter()
            .any(|u| u.starts_with("docs/redoc.standalone.js")),
        "{urls:?}"
    );
    assert!(urls.contains(&"openapi.yaml".to_owned()), "{urls:?}");
    // Each reference, resolved against the page's URL as a browser does, is served here.
    let base = url::Url::parse(&app.url("/docs")).unwrap();
    for reference in &urls {
        let resolved = base.join(reference).unwrap();
        assert_eq!(resolved.origin(), base.origin(), "{reference}");
        let asset = app.client.get(resolved.as_str()).send().await.unwrap();
        assert_eq!(asset.status(), StatusCode::OK, "{resolved}");
    }
}

#[tokio::test]
async fn docs_script_is_the_vendored_redoc_bundle_cached_long() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/docs/redoc.standalone.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body = response.text().await.unwrap();
    let vendored = include_str!("../../assets/redoc/redoc.standalone.js");
    // The vendored bundle less the one URL of another host it loads from (src/http/routes/docs.rs).
    assert_eq!(
        body,
        vendored.replace("\"https://cdn.redoc.ly/redoc/logo-mini.svg\"", "\"\"")
    );
    assert_ne!(body, vendored);
    assert!(!body.contains("cdn.redoc.ly"));
}

#[tokio::test]
async fn docs_routes_alone_get_a_content_security_policy() {
    let app = spawn_app().await;
    for path in ["/openapi.yaml", "/healthz", "/v1/me"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert!(
            !response.headers().contains_key("content-security-policy"),
            "{path} got a CSP"
        );
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
    }
    let post = app.client.post(app.url("/docs")).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
}
