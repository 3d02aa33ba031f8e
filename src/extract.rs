//! A JSON body extractor whose every failure is an [`ApiError`]: 415 for another content type, 413
//! past the size limit, 400 for malformed JSON and 422 naming the field that does not fit.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::{ApiError, FieldError};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A request body parsed from JSON into `T`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = is_json(req);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            let bytes = body
                .await
                .map_err(|err| match err.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => ApiError::PayloadTooLarge(MAX_BODY_BYTES),
                    _ => ApiError::MalformedJson,
                })?;
            parse(&bytes).map(JsonBody)
        })
    }
}

/// `application/json`, or any `application/…+json` type.
fn is_json(req: &HttpRequest) -> bool {
    let Some(Ok(value)) = req.headers().get(header::CONTENT_TYPE).map(|v| v.to_str()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let is_object = bytes.trim_ascii_start().starts_with(b"{");
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        // serde also reads a struct from an array; only an object has named fields to blame.
        let path = if is_object {
            err.path().to_string()
        } else {
            ".".to_owned()
        };
        field_error(&path, err.into_inner())
    })?;
    deserializer.end().map_err(|_| ApiError::MalformedJson)?;
    Ok(value)
}

/// Turns a serde error into a field error without echoing the value the client sent: that value
/// may be a password.
fn field_error(path: &str, err: serde_json::Error) -> ApiError {
    if err.classify() != Category::Data {
        return ApiError::MalformedJson;
    }
    let message = err.to_string();
    let parent = if path == "." { "" } else { path };
    let field_error = match missing_field(&message) {
        Some(name) if parent.is_empty() => FieldError::new(name, "required", "is required"),
        Some(name) => FieldError::new(format!("{parent}.{name}"), "required", "is required"),
        None if parent.is_empty() => FieldError::new(
            "body",
            "invalid_type",
            "must be a JSON object with the documented fields",
        ),
        None => FieldError::new(parent, "invalid_type", "has the wrong type"),
    };
    ApiError::Validation(vec![field_error])
}

fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        password: String,
    }

    fn errors(result: Result<Body, ApiError>) -> Vec<FieldError> {
        match result {
            Err(ApiError::Validation(errors)) => errors,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_field_is_named() {
        let errors = errors(parse(br#"{"email":"a@b.co"}"#));
        assert_eq!(
            errors,
            vec![FieldError::new("password", "required", "is required")]
        );
    }

    #[test]
    fn a_wrong_type_names_the_field_but_not_the_value() {
        let errors = errors(parse(br#"{"email":"a@b.co","password":12345678}"#));
        assert_eq!(errors[0].field, "password");
        assert!(!errors[0].message.contains("12345678"));
    }

    #[test]
    fn syntax_errors_and_trailing_garbage_are_malformed() {
        assert!(matches!(
            parse::<Body>(b"{\"email\":"),
            Err(ApiError::MalformedJson)
        ));
        assert!(matches!(
            parse::<Body>(br#"{"email":"a","password":"b"} x"#),
            Err(ApiError::MalformedJson)
        ));
    }

    #[test]
    fn a_non_object_body_is_a_validation_error() {
        assert_eq!(errors(parse(b"[1,2]"))[0].field, "body");
    }
}
