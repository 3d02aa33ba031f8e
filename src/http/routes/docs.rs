//! `GET /docs`: the API reference, `openapi.yaml` rendered in the browser by Redoc, from assets
//! embedded in the binary (assets/redoc/), so the page needs no CDN and works offline.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::http::header;
use actix_web::web::Bytes;

/// The vendored Redoc release (assets/redoc/README.md). It is also in the script's URL, so an
/// upgrade changes the URL and no browser keeps running the old bundle from its cache. A macro,
/// because `concat!` below takes literals only.
macro_rules! redoc_version {
    () => {
        "2.5.4"
    };
}

/// Redoc's standalone bundle as published: a classic script that renders the `<redoc spec-url>`
/// element of the page by itself.
const REDOC_JS: &[u8] = include_bytes!("../../../assets/redoc/redoc.standalone.js");

/// The one thing the bundle loads from another host: the Redocly logo of the side menu's
/// "API docs by Redocly" link, an `<img>` it always renders. The page's CSP would block it
/// (a console error in every visit); served without the URL, the `<img src="">` loads nothing
/// and Redoc's own `onError` hides it. The link itself stays.
const REMOTE_LOGO: &[u8] = b"\"https://cdn.redoc.ly/redoc/logo-mini.svg\"";

/// The bundle as served: [`REDOC_JS`] without [`REMOTE_LOGO`], patched once, on first use, so the
/// vendored file stays byte for byte the published one.
static SERVED_JS: LazyLock<Bytes> = LazyLock::new(|| Bytes::from(without_remote_logo(REDOC_JS)));

fn without_remote_logo(bundle: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bundle.len());
    let mut rest = bundle;
    while let Some(at) = rest
        .windows(REMOTE_LOGO.len())
        .position(|window| window == REMOTE_LOGO)
    {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(b"\"\"");
        rest = &rest[at + REMOTE_LOGO.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// The page. Both URLs are relative (from `/docs`: `/openapi.yaml` and
/// `/docs/redoc.standalone.js`), so it also works behind a gateway that mounts the API under a
/// path prefix, and it names no other host.
const PAGE: &str = concat!(
    r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Latchkey API reference</title>
  <style>body { margin: 0; padding: 0; }</style>
</head>
<body>
  <noscript>This page needs JavaScript. The contract itself is <a href="openapi.yaml">openapi.yaml</a>.</noscript>
  <redoc spec-url="openapi.yaml"></redoc>
  <script src="docs/redoc.standalone.js?v="#,
    redoc_version!(),
    r#""></script>
</body>
</html>
"#
);

/// What the page may load, for `/docs` alone (no other route gets a CSP): scripts from this
/// origin only (no inline script, no eval); inline styles, because Redoc's styled-components
/// inject `<style>` elements; its search index runs in a worker made from a `blob:` URL;
/// `connect-src 'self'` for the fetch of `/openapi.yaml`; `data:` images and fonts for icons
/// inlined in its CSS. Nothing else, and the page may not be framed.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, DOCS_CSP))
        .body(PAGE)
}

/// The bundle never changes under its versioned URL: browsers may keep it for a year (the page
/// itself keeps the server-wide `no-store`, so an upgrade is picked up at once).
pub async fn redoc_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(SERVED_JS.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_the_vendored_version() {
        // The bundle's own licence banner names its version: the URL must name the same.
        let banner = include_str!("../../../assets/redoc/redoc.standalone.js.LICENSE.txt");
        assert!(banner.contains(concat!("Version: \"", redoc_version!(), "\"")));
        assert!(PAGE.contains(concat!(
            "docs/redoc.standalone.js?v=",
            redoc_version!(),
            "\""
        )));
    }

    #[test]
    fn the_served_bundle_names_no_other_host_to_load_from() {
        // Exactly one occurrence in this release; an upgrade that moves it fails here.
        let count = |bundle: &[u8]| {
            bundle
                .windows(REMOTE_LOGO.len())
                .filter(|w| *w == REMOTE_LOGO)
                .count()
        };
        assert_eq!(count(REDOC_JS), 1);
        let served = &SERVED_JS[..];
        assert_eq!(count(served), 0);
        assert!(!served.windows(12).any(|w| w == b"cdn.redoc.ly"));
        assert_eq!(served.len(), REDOC_JS.len() - REMOTE_LOGO.len() + 2);
    }
}
