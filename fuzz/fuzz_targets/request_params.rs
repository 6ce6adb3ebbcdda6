//! What requests carry besides their body, read the way the server reads it: query strings
//! (`PageParams`, `StatusParams`) and the headers `Last-Event-ID`, `Content-Type` and
//! `Accept`. The input is used as a query string and as each header's value.
//!
//! Properties: nothing panics; a query that decodes re-encodes to one that decodes equal;
//! every refusal is a `400`; `Last-Event-ID` is accepted exactly when it is a run of ASCII
//! digits, with its value (saturating).

#![no_main]

use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Uri};
use libfuzzer_sys::fuzz_target;
use writ_server::problem::ProblemKind;
use writ_server::wire::{PageParams, StatusParams, is_json, last_event_id, wants_event_stream};

fn uri(path_and_query: String) -> Uri {
    path_and_query.parse().expect("a query of digits is a URI")
}

fuzz_target!(|data: &[u8]| {
    let mut target = b"/events?".to_vec();
    target.extend_from_slice(data);
    // What is not a URI never reaches a handler: the HTTP parser refuses it first.
    if let Ok(target) = Uri::try_from(target) {
        match PageParams::from_uri(&target) {
            Ok(page) => {
                let mut query = String::new();
                if let Some(from) = page.from {
                    query.push_str(&format!("from={from}&"));
                }
                if let Some(limit) = page.limit {
                    query.push_str(&format!("limit={limit}"));
                }
                let again = PageParams::from_uri(&uri(format!("/events?{query}"))).unwrap();
                assert_eq!(again, page);
            }
            Err(error) => assert_eq!(error.kind, ProblemKind::Malformed),
        }
        match StatusParams::from_uri(&target) {
            Ok(status) => {
                let query = status.wait.map(|w| format!("wait={w}")).unwrap_or_default();
                let again = StatusParams::from_uri(&uri(format!("/update/x?{query}"))).unwrap();
                assert_eq!(again, status);
            }
            Err(error) => assert_eq!(error.kind, ProblemKind::Malformed),
        }
    }

    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert("last-event-id", value.clone());
    let digits = !data.is_empty() && data.iter().all(u8::is_ascii_digit);
    match last_event_id(&headers) {
        Ok(Some(position)) => {
            assert!(digits);
            let text = std::str::from_utf8(data).unwrap();
            assert_eq!(position, text.parse().unwrap_or(u64::MAX));
        }
        Ok(None) => panic!("the header is there"),
        Err(error) => {
            assert!(!digits);
            assert_eq!(error.kind, ProblemKind::Malformed);
        }
    }

    headers.insert(CONTENT_TYPE, value.clone());
    if is_json(&headers) {
        let essence = value.to_str().unwrap().split(';').next().unwrap();
        let essence = essence.trim().to_ascii_lowercase();
        assert!(
            essence == "application/json"
                || essence.starts_with("application/")
                    && essence.ends_with("+json")
                    && essence.len() > "application/+json".len(),
            "{essence}"
        );
    }

    headers.insert(ACCEPT, value.clone());
    if wants_event_stream(&headers) {
        let text = value.to_str().unwrap().to_ascii_lowercase();
        assert!(text.contains("text/event-stream"), "{text}");
    }
});
