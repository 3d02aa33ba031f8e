use actix_web::HttpResponse;

/// The contract this build implements, embedded at compile time.
const SPEC: &str = include_str!("../../../openapi.yaml");

pub async fn spec() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(SPEC)
}
