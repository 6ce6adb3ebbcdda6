//! Reading what requests carry besides their body: query numbers, media types, and the
//! id in a path.

use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderMap, header};
use uuid::Uuid;

use crate::problem::{ApiError, ProblemKind};

/// A query parameter that must be a non-negative integer, when present. Digits beyond
/// `u64` saturate: every parameter that takes them is cut to a bound anyway.
pub(crate) fn number(name: &str, value: Option<&str>) -> Result<Option<u64>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::malformed(format!(
            "`{name}` must be a non-negative integer, not {value:?}"
        )));
    }
    Ok(Some(value.parse().unwrap_or(u64::MAX)))
}

/// A query string that does not decode.
pub(crate) fn query_error(rejection: QueryRejection) -> ApiError {
    ApiError::malformed(rejection.body_text())
}

/// A command id from a path.
pub(crate) fn command_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|e| ApiError::malformed(format!("{text:?} is not a command id (a UUID): {e}")))
}

/// The problem for an id never seen, or seen longer ago than the dedupe window.
pub(crate) fn unknown_command(id: Uuid) -> ApiError {
    ApiError::new(
        ProblemKind::NotFound,
        format!("no command {id} within the dedupe window"),
    )
}

/// Whether the client asks for server-sent events.
pub(crate) fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',')
                .any(|item| media_type(item).eq_ignore_ascii_case("text/event-stream"))
        })
    })
}

/// Whether the body is declared JSON: `application/json` or `application/*+json`.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = media_type(value);
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5
                && subtype.as_bytes()[subtype.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

/// The media type of a header item, without parameters.
fn media_type(item: &str) -> &str {
    item.split(';').next().unwrap_or_default().trim()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn json_media_types() {
        for yes in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/problem+json",
            "application/vnd.writ.command+json ;v=1",
        ] {
            assert!(is_json(&headers(header::CONTENT_TYPE, yes)), "{yes}");
        }
        for no in [
            "text/plain",
            "application/jsonl",
            "application/+json",
            "json",
            "text/json",
            "",
        ] {
            assert!(!is_json(&headers(header::CONTENT_TYPE, no)), "{no}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn event_stream_is_found_among_other_types() {
        assert!(wants_event_stream(&headers(
            header::ACCEPT,
            "text/event-stream"
        )));
        assert!(wants_event_stream(&headers(
            header::ACCEPT,
            "application/json;q=0.5, Text/Event-Stream"
        )));
        assert!(!wants_event_stream(&headers(
            header::ACCEPT,
            "application/json"
        )));
        assert!(!wants_event_stream(&HeaderMap::new()));
    }

    #[test]
    fn numbers() {
        assert_eq!(number("n", None).unwrap(), None);
        assert_eq!(number("n", Some("0")).unwrap(), Some(0));
        assert_eq!(number("n", Some("60")).unwrap(), Some(60));
        assert_eq!(
            number("n", Some("99999999999999999999999")).unwrap(),
            Some(u64::MAX)
        );
        for bad in ["", "-1", "1.5", "x", " 1", "+1"] {
            assert!(number("n", Some(bad)).is_err(), "{bad}");
        }
    }
}
