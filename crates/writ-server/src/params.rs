//! Reading what requests carry besides their body: query numbers, media types, and the
//! id in a path.
//!
//! The decoders of bytes that come off the network ([`PageParams`], [`StatusParams`],
//! [`last_event_id`], [`is_json`], [`wants_event_stream`]) are public through
//! [`wire`](crate::wire), so that the fuzz targets in `fuzz/` test the server's own code.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderMap, HeaderName, Uri, header};
use serde::Deserialize;
use uuid::Uuid;

use crate::problem::{ApiError, ProblemKind};

/// The paging parameters of `GET /streams/{stream}` and `GET /events`, as the query string
/// carries them. Other parameters are ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageParams {
    /// `from`: the first version (streams) or position (the global log) to return.
    pub from: Option<u64>,
    /// `limit`: most events on the page, before the server cuts it to its bound.
    pub limit: Option<u64>,
}

#[derive(Deserialize)]
struct PageQuery {
    from: Option<String>,
    limit: Option<String>,
}

impl PageParams {
    /// Reads the query string of `uri`. A parameter that is given twice, or is not a
    /// non-negative integer, is a malformed request (`400`): the client should fix it.
    pub fn from_uri(uri: &Uri) -> Result<Self, ApiError> {
        let Query(query) = Query::<PageQuery>::try_from_uri(uri).map_err(query_error)?;
        Ok(Self {
            from: number("from", query.from.as_deref())?,
            limit: number("limit", query.limit.as_deref())?,
        })
    }
}

/// The parameters of `GET /update/{id}`, as the query string carries them. Other
/// parameters are ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusParams {
    /// `wait`: seconds to wait for a final status, before the server cuts it to its bound.
    pub wait: Option<u64>,
}

#[derive(Deserialize)]
struct StatusQuery {
    wait: Option<String>,
}

impl StatusParams {
    /// Reads the query string of `uri`; errors as [`PageParams::from_uri`].
    pub fn from_uri(uri: &Uri) -> Result<Self, ApiError> {
        let Query(query) = Query::<StatusQuery>::try_from_uri(uri).map_err(query_error)?;
        Ok(Self {
            wait: number("wait", query.wait.as_deref())?,
        })
    }
}

/// The `Last-Event-ID` header.
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// The position in the `Last-Event-ID` header (the last event a reconnecting live tail
/// has seen), when the header is there. A value that is not a non-negative integer is a
/// malformed request (`400`). When the header is repeated, the first one counts.
pub fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(LAST_EVENT_ID) else {
        return Ok(None);
    };
    // Not visible ASCII: not a number either, and the error shows it as `?`.
    number("Last-Event-ID", Some(value.to_str().unwrap_or("?")))
}

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

/// Whether the client asks for server-sent events: an `Accept` header lists
/// `text/event-stream` (parameters and case aside).
pub fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',')
                .any(|item| media_type(item).eq_ignore_ascii_case("text/event-stream"))
        })
    })
}

/// Whether the body is declared JSON: `Content-Type` is `application/json` or
/// `application/*+json` (parameters and case aside).
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    // What nearly every client sends, without splitting and comparing piece by piece.
    if value.as_bytes() == b"application/json" {
        return true;
    }
    let Ok(value) = value.to_str() else {
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
pub(crate) fn media_type(item: &str) -> &str {
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

    fn page(query: &str) -> Result<PageParams, ApiError> {
        PageParams::from_uri(&format!("/events?{query}").parse().unwrap())
    }

    #[test]
    fn page_params_from_query_strings() {
        assert_eq!(page("").unwrap(), PageParams::default());
        assert_eq!(
            page("from=3&limit=10&other=x").unwrap(),
            PageParams {
                from: Some(3),
                limit: Some(10)
            }
        );
        // Percent-encoded digits are digits.
        assert_eq!(page("from=%31%32").unwrap().from, Some(12));
        assert_eq!(
            page("limit=99999999999999999999999").unwrap().limit,
            Some(u64::MAX)
        );
        for bad in [
            "from=",
            "from=-1",
            "limit=1e3",
            "from=1&from=2",
            "limit=%FF",
        ] {
            let error = page(bad).unwrap_err();
            assert_eq!(error.kind, ProblemKind::Malformed, "{bad}");
        }
        let status =
            |query: &str| StatusParams::from_uri(&format!("/update/x?{query}").parse().unwrap());
        assert_eq!(status("wait=5").unwrap().wait, Some(5));
        assert_eq!(status("").unwrap().wait, None);
        assert!(status("wait=5s").is_err());
    }

    #[test]
    fn last_event_ids() {
        assert_eq!(last_event_id(&HeaderMap::new()).unwrap(), None);
        assert_eq!(
            last_event_id(&headers(LAST_EVENT_ID, "41")).unwrap(),
            Some(41)
        );
        for bad in ["", "-1", "x", "4 1"] {
            let mut map = HeaderMap::new();
            map.insert(LAST_EVENT_ID, HeaderValue::from_str(bad).unwrap());
            assert!(last_event_id(&map).is_err(), "{bad:?}");
        }
        let mut map = HeaderMap::new();
        map.insert(LAST_EVENT_ID, HeaderValue::from_bytes(b"4\xff").unwrap());
        assert!(last_event_id(&map).is_err());
    }
}
