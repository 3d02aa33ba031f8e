//! JSON body extractors whose every failure is an [`ApiError`]: 415 for another content type, 413
//! past the size limit, 400 for malformed JSON and 422 naming the field that does not fit.
//! [`OptionalJsonBody`] also lets the body be left out.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::http::error::{ApiError, FieldError};

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

/// A request body that may be left out: `None` for an empty body sent without a content type,
/// which is what a browser's `fetch` without a `body` sends (a cookie refresh). Any other body is
/// read as [`JsonBody`] reads it, so a body without a content type is still 415.
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if req.headers().contains_key(header::CONTENT_TYPE) {
            let body = JsonBody::<T>::from_request(req, payload);
            return Box::pin(async move { body.await.map(|JsonBody(value)| Self(Some(value))) });
        }
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            match body.await {
                Ok(bytes) if bytes.is_empty() => Ok(Self(None)),
                // Untyped bytes, or too many to tell: a body that is not declared JSON.
                _ => Err(ApiError::UnsupportedMediaType),
            }
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

/// For an optional member that may be left out but is not nullable in the contract: with
/// `#[serde(default, deserialize_with = "crate::http::extract::non_null")]` an absent member is `None`,
/// and an explicit `null` is a wrong type (422) instead of passing for "absent".
pub fn non_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body of the contract is an object, but serde also reads a struct from an array
    // (`["ada@example.com", "password"]` as `{email, password}`, `[]` as a patch of only optional
    // members): any JSON that is not an object is the wrong type for the whole body.
    if !bytes.trim_ascii_start().starts_with(b"{") {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => Err(field_error(
                ".",
                serde::de::Error::custom("the body is not a JSON object"),
            )),
            Err(_) => Err(ApiError::MalformedJson),
        };
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|err| field_error(&err.path().to_string(), err.into_inner()))?;
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

    #[derive(Debug, Deserialize)]
    struct Patch {
        #[serde(default, deserialize_with = "non_null")]
        name: Option<String>,
    }

    #[test]
    fn a_non_null_member_may_be_absent_but_not_null() {
        assert_eq!(parse::<Patch>(b"{}").unwrap().name, None);
        assert_eq!(
            parse::<Patch>(br#"{"name":"Ada"}"#)
                .unwrap()
                .name
                .as_deref(),
            Some("Ada")
        );
        let errors = match parse::<Patch>(br#"{"name":null}"#) {
            Err(ApiError::Validation(errors)) => errors,
            other => panic!("expected a validation error, got {other:?}"),
        };
        assert_eq!(
            errors,
            vec![FieldError::new(
                "name",
                "invalid_type",
                "has the wrong type"
            )]
        );
    }

    #[test]
    fn a_non_object_body_is_a_validation_error() {
        assert_eq!(errors(parse(b"[1,2]"))[0].field, "body");
    }

    #[test]
    fn an_array_is_not_read_as_a_struct() {
        // Found by schemathesis: serde fills a struct from an array in field order.
        let errors = errors(parse(br#" ["a@b.co", "correct horse"]"#));
        assert_eq!(errors[0].field, "body");
        assert_eq!(errors[0].code, "invalid_type");
        assert!(matches!(
            parse::<Patch>(b"[]"),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            parse::<Body>(b"[1,"),
            Err(ApiError::MalformedJson)
        ));
        assert!(matches!(
            parse::<Body>(b"[] x"),
            Err(ApiError::MalformedJson)
        ));
    }
}
