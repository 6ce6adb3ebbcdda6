//! Access control: bearer tokens with scopes (`--tokens FILE`).
//!
//! [`Tokens`] is the tokens file, read once at startup: a JSON list of
//! `{"token_sha256", "name", "scopes": ["commands", "queries", "admin"], "commands"?: [names]}`.
//! The server keeps only the SHA-256 digests; a presented token is hashed and looked up by
//! its digest, and digests are compared in constant time.
//!
//! With tokens, one layer (`AccessLayer`) is the one check every routed request passes before
//! anything else (before the request gate takes a place for it; the edge, which reads a
//! body before routing, reads none without a valid token and hands the token's grant on):
//! `/health` is open, every other route needs `Authorization: Bearer TOKEN`, missing or
//! unknown answers `401` (with `WWW-Authenticate: Bearer`), a token whose scopes do not
//! cover the route answers `403`. Which scope a route needs is the table [`ROUTES`]; a
//! route missing from it is `admin`-only, so a route added without a thought about access
//! is closed rather than open. A path no route matches needs a valid token too (then `404`),
//! so the route map is not disclosed to anyone without one.
//!
//! A token's `commands` list is checked where the command's name is known, before it is
//! submitted: `POST /update` (answers `403`) and every `/ws` frame (an
//! `invalid` frame with `error.code` `forbidden`). A command refused so never reaches the
//! engine, so it is never logged.
//!
//! ```
//! use writ_server::access::{Scope, Tokens};
//!
//! // printf %s 's3cret' | sha256sum
//! let file = r#"[{"token_sha256": "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0",
//!                 "name": "ci", "scopes": ["queries"]}]"#;
//! let tokens = Tokens::parse(file.as_bytes(), "tokens.json").unwrap();
//! let grant = tokens.grant("s3cret").expect("a known token");
//! assert_eq!(grant.name(), "ci");
//! assert!(grant.has(Scope::Queries) && !grant.has(Scope::Commands));
//! assert!(tokens.grant("wrong").is_none());
//! ```

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::problem::{ApiError, ProblemKind};
use crate::telemetry::{self, method_label, record_request};

/// What a token may do. `GET /openapi.json` and `GET /domains` take any valid token,
/// whatever its scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Scope {
    /// Send commands (`POST /update`, `/ws`) and read their statuses (`GET /update/{id}`).
    Commands,
    /// Reads, named queries, query code, events, streams, statuses, `GET /projections`.
    Queries,
    /// Rebuilds, replays, `/admin`, `/metrics`.
    Admin,
}

impl Scope {
    /// The scope's name in the tokens file.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Commands => "commands",
            Scope::Queries => "queries",
            Scope::Admin => "admin",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Scope::Commands => 1,
            Scope::Queries => 2,
            Scope::Admin => 4,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one token may do: its name (for logs), its scopes, and the commands it may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    name: String,
    scopes: u8,
    commands: Option<HashSet<String>>,
}

impl Grant {
    /// The token's name, as the tokens file gives it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the token has `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes & scope.bit() != 0
    }

    /// Whether the token may send the command `name`: it has the `commands` scope, and
    /// either no `commands` list or one that names it.
    pub fn allows_command(&self, name: &str) -> bool {
        self.has(Scope::Commands) && self.commands.as_ref().is_none_or(|c| c.contains(name))
    }

    /// The token's `commands` list, when it has one.
    pub fn commands(&self) -> Option<&HashSet<String>> {
        self.commands.as_ref()
    }
}

/// A SHA-256 digest of a token. Equality is constant-time, so a lookup tells nothing about
/// how close a presented token's digest came to a stored one.
#[derive(Clone, Copy)]
struct Digest([u8; 32]);

impl PartialEq for Digest {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Digest {}

impl Hash for Digest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Digest {
    fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }
}

/// The hex form of a digest as the tokens file gives it: 64 hex digits, either case.
fn parse_hex_digest(text: &str) -> Option<Digest> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut digest = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        digest[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(Digest(digest))
}

/// One entry of the tokens file, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(deserialize_with = "hex_digest")]
    token_sha256: Digest,
    name: String,
    scopes: Vec<Scope>,
    #[serde(default)]
    commands: Option<Vec<String>>,
}

fn hex_digest<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    parse_hex_digest(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "token_sha256 {text:?} is not 64 hex digits (the SHA-256 of the token: printf %s \"$TOKEN\" | sha256sum)"
        ))
    })
}

/// The tokens a server knows, by the SHA-256 of each. Cheap to clone.
#[derive(Clone)]
pub struct Tokens {
    by_digest: Arc<HashMap<Digest, Arc<Grant>>>,
    /// The names, in the file's order.
    names: Arc<[String]>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: digests stay out of logs.
        f.debug_struct("Tokens")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

/// Why a tokens file was refused; each message names the file and the place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokensError {
    /// The file could not be read.
    #[error("cannot read the tokens file {}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Not a JSON list of entries: malformed JSON, a missing or unknown field, an unknown
    /// scope, a `token_sha256` that is not 64 hex digits. The message gives line and column.
    #[error("tokens file {file}: {detail}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong and where (serde_json's line and column).
        detail: String,
    },
    /// Two entries have one name, or one token digest.
    #[error("tokens file {file}: entries {first} and {second} have the same {what}")]
    Duplicate {
        /// The file.
        file: String,
        /// `name` or `token_sha256`.
        what: &'static str,
        /// The first entry (1-based) and its name.
        first: String,
        /// The second entry and its name.
        second: String,
    },
    /// An entry lists `commands` without the `commands` scope: it could send none.
    #[error(
        "tokens file {file}: entry {entry} lists commands but has no \"commands\" scope; add the scope or remove the list"
    )]
    CommandsWithoutScope {
        /// The file.
        file: String,
        /// The entry (1-based) and its name.
        entry: String,
    },
    /// The list is empty: every request but `/health` would be refused.
    #[error(
        "tokens file {file} lists no token: every request would be refused; add one, or run without --tokens"
    )]
    Empty {
        /// The file.
        file: String,
    },
}

impl Tokens {
    /// Reads the tokens file at `path`.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let text = std::fs::read(path).map_err(|source| TokensError::Read {
            file: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses a tokens file's content; `file` names it in errors.
    pub fn parse(text: &[u8], file: &str) -> Result<Self, TokensError> {
        let entries: Vec<Entry> =
            serde_json::from_slice(text).map_err(|e| TokensError::Invalid {
                file: file.to_owned(),
                detail: e.to_string(),
            })?;
        if entries.is_empty() {
            return Err(TokensError::Empty {
                file: file.to_owned(),
            });
        }
        let label = |at: usize, entry: &Entry| format!("{} ({:?})", at + 1, entry.name);
        let mut by_digest = HashMap::with_capacity(entries.len());
        let mut first_of_name: HashMap<&str, usize> = HashMap::new();
        let mut first_of_digest: HashMap<Digest, usize> = HashMap::new();
        for (at, entry) in entries.iter().enumerate() {
            if let Some(&first) = first_of_name.get(entry.name.as_str()) {
                return Err(TokensError::Duplicate {
                    file: file.to_owned(),
                    what: "name",
                    first: label(first, &entries[first]),
                    second: label(at, entry),
                });
            }
            first_of_name.insert(&entry.name, at);
            if let Some(&first) = first_of_digest.get(&entry.token_sha256) {
                return Err(TokensError::Duplicate {
                    file: file.to_owned(),
                    what: "token_sha256",
                    first: label(first, &entries[first]),
                    second: label(at, entry),
                });
            }
            first_of_digest.insert(entry.token_sha256, at);
            let scopes = entry.scopes.iter().fold(0, |bits, s| bits | s.bit());
            if entry.commands.is_some() && scopes & Scope::Commands.bit() == 0 {
                return Err(TokensError::CommandsWithoutScope {
                    file: file.to_owned(),
                    entry: label(at, entry),
                });
            }
            let grant = Grant {
                name: entry.name.clone(),
                scopes,
                commands: entry.commands.as_ref().map(|c| c.iter().cloned().collect()),
            };
            by_digest.insert(entry.token_sha256, Arc::new(grant));
        }
        Ok(Self {
            by_digest: Arc::new(by_digest),
            names: entries.into_iter().map(|e| e.name).collect(),
        })
    }

    /// What `token` may do; `None` for a token this server does not know.
    pub fn grant(&self, token: &str) -> Option<&Arc<Grant>> {
        self.by_digest.get(&Digest::of(token))
    }

    /// The tokens' names, in the file's order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Command names some token's `commands` list gives, sorted and once each (to check
    /// them against the commands a server has).
    pub fn listed_commands(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .by_digest
            .values()
            .filter_map(|g| g.commands.as_ref())
            .flatten()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// What a route needs of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: open to all (`/health`).
    Open,
    /// A valid token with any of these scopes; any valid token at all when empty.
    AnyOf(&'static [Scope]),
}

/// Which scope each route needs, by method and route template (`GET` covers `HEAD`);
/// [`RESOURCE_ROUTES`] adds the routes of resource types. A route missing from both is
/// `admin`-only; a path no route matches, or a route's other
/// methods (then `404` or `405`), needs any valid token.
pub const ROUTES: &[(Method, &str, Need)] = &[
    (Method::GET, "/health", Need::Open),
    (Method::GET, "/openapi.json", Need::AnyOf(&[])),
    (Method::GET, "/domains", Need::AnyOf(&[])),
    (Method::POST, "/update", Need::AnyOf(&[Scope::Commands])),
    (Method::GET, "/ws", Need::AnyOf(&[Scope::Commands])),
    (
        Method::GET,
        "/update/{id}",
        Need::AnyOf(&[Scope::Commands, Scope::Queries]),
    ),
    (
        Method::GET,
        "/streams/{stream}",
        Need::AnyOf(&[Scope::Queries]),
    ),
    (Method::GET, "/events", Need::AnyOf(&[Scope::Queries])),
    (
        Method::GET,
        "/query/{version}/{name}",
        Need::AnyOf(&[Scope::Queries]),
    ),
    (
        Method::POST,
        "/query/{version}",
        Need::AnyOf(&[Scope::Queries]),
    ),
    (Method::GET, "/projections", Need::AnyOf(&[Scope::Queries])),
    (
        Method::POST,
        "/projections/{name}/rebuild",
        Need::AnyOf(&[Scope::Admin]),
    ),
    (Method::GET, "/metrics", Need::AnyOf(&[Scope::Admin])),
    (Method::POST, "/admin/replay", Need::AnyOf(&[Scope::Admin])),
    (Method::GET, "/admin/replay", Need::AnyOf(&[Scope::Admin])),
];

/// As [`ROUTES`], for the routes of resource types, which a server has only when it
/// serves some (`--app`): writes are commands, reads are reads.
pub const RESOURCE_ROUTES: &[(Method, &str, Need)] = &[
    (Method::POST, "/{resource}", Need::AnyOf(&[Scope::Commands])),
    (Method::GET, "/{resource}", Need::AnyOf(&[Scope::Queries])),
    (
        Method::GET,
        "/{resource}/{id}",
        Need::AnyOf(&[Scope::Queries]),
    ),
    (
        Method::PUT,
        "/{resource}/{id}",
        Need::AnyOf(&[Scope::Commands]),
    ),
    (
        Method::PATCH,
        "/{resource}/{id}",
        Need::AnyOf(&[Scope::Commands]),
    ),
    (
        Method::DELETE,
        "/{resource}/{id}",
        Need::AnyOf(&[Scope::Commands]),
    ),
    (
        Method::POST,
        "/{resource}/{id}/{command}",
        Need::AnyOf(&[Scope::Commands]),
    ),
];

/// Only `admin` tokens reach a route [`ROUTES`] does not list.
const UNLISTED: Need = Need::AnyOf(&[Scope::Admin]);

/// What a request to `route` (the matched template; `None` when no route matched) with
/// `method` needs.
pub fn need(method: &Method, route: Option<&str>) -> Need {
    let Some(route) = route else {
        return Need::AnyOf(&[]);
    };
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    let mut listed = false;
    for (m, r, need) in ROUTES.iter().chain(RESOURCE_ROUTES) {
        if *r == route {
            if m == method {
                return *need;
            }
            listed = true;
        }
    }
    if listed {
        // The route, not for this method: `405` to any valid token.
        Need::AnyOf(&[])
    } else {
        UNLISTED
    }
}

/// The token's grant, put in the request's extensions by [`AccessLayer`] for the handlers
/// that check a command's name.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Arc<Grant>);

/// Checks that the request's token may send the command `name` (and, for
/// `SwitchReadModel`, has the `admin` scope); `403` otherwise. Without tokens (no
/// [`Caller`]) everything is allowed.
pub(crate) fn check_command(caller: Option<&Caller>, name: &str) -> Result<(), ApiError> {
    match caller {
        // A structure change is an operator's: sent through `/update` or `/ws` too, it
        // needs the `admin` scope, as `POST /projections/{name}/rebuild` does.
        Some(Caller(grant))
            if name == writ_query::switch::SWITCH_READ_MODEL && !grant.has(Scope::Admin) =>
        {
            telemetry::record_refusal(telemetry::Refusal::Forbidden);
            tracing::debug!(token = grant.name(), command = name, "command refused");
            Err(ApiError::new(
                ProblemKind::Forbidden,
                format!(
                    "the token {:?} may not send the command {name:?}: it needs the admin scope",
                    grant.name()
                ),
            ))
        }
        Some(Caller(grant)) if !grant.allows_command(name) => {
            telemetry::record_refusal(telemetry::Refusal::Forbidden);
            tracing::debug!(token = grant.name(), command = name, "command refused");
            Err(ApiError::new(
                ProblemKind::Forbidden,
                format!(
                    "the token {:?} may not send the command {name:?}",
                    grant.name()
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// The token of an `Authorization: Bearer TOKEN` header; `None` without one (or with
/// another scheme).
fn bearer(request: &Request) -> Option<&str> {
    bearer_token(request.headers())
}

/// [`bearer`] over a request's headers.
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Why a request was refused: the problem to answer.
fn refuse(reason: telemetry::Refusal, detail: String) -> Response {
    telemetry::record_refusal(reason);
    let kind = match reason {
        telemetry::Refusal::Unauthorized => ProblemKind::Unauthorized,
        telemetry::Refusal::Forbidden => ProblemKind::Forbidden,
    };
    ApiError::new(kind, detail).into_response()
}

/// The access check every routed request passes first, with tokens; see the module
/// documentation. A refusal is answered at once and the request gate never admits it; a
/// request without a valid token never has its body read (the edge leaves it unread).
///
/// A plain tower layer, like the gate, since it sits on the hot path.
#[derive(Debug, Clone)]
pub(crate) struct AccessLayer {
    tokens: Tokens,
}

impl AccessLayer {
    pub(crate) fn new(tokens: Tokens) -> Self {
        Self { tokens }
    }
}

impl<S> Layer<S> for AccessLayer {
    type Service = Access<S>;

    fn layer(&self, inner: S) -> Access<S> {
        Access {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

/// See [`AccessLayer`].
#[derive(Debug, Clone)]
pub(crate) struct Access<S> {
    inner: S,
    tokens: Tokens,
}

impl<S> Service<Request> for Access<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AccessFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let route_name = route.as_ref().map(MatchedPath::as_str);
        let scopes = match need(request.method(), route_name) {
            Need::Open => return AccessFuture::Admitted(self.inner.call(request)),
            Need::AnyOf(scopes) => scopes,
        };
        // The edge looked the token of a request with a body up already.
        let known = request
            .extensions()
            .get::<Caller>()
            .map(|c| Arc::clone(&c.0));
        let grant = match known {
            Some(grant) => Some(Some(grant)),
            None => bearer(&request).map(|token| self.tokens.grant(token).cloned()),
        };
        let refused = match grant {
            None => refuse(
                telemetry::Refusal::Unauthorized,
                "this server needs a token: send Authorization: Bearer TOKEN".to_owned(),
            ),
            Some(None) => refuse(
                telemetry::Refusal::Unauthorized,
                "the bearer token is not one this server knows".to_owned(),
            ),
            Some(Some(grant)) if scopes.is_empty() || scopes.iter().any(|s| grant.has(*s)) => {
                request.extensions_mut().insert(Caller(grant));
                return AccessFuture::Admitted(self.inner.call(request));
            }
            Some(Some(grant)) => {
                let needed: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
                refuse(
                    telemetry::Refusal::Forbidden,
                    format!(
                        "{} {} needs a token with the scope {}; the token {:?} has not",
                        request.method(),
                        request.uri().path(),
                        needed.join(" or "),
                        grant.name()
                    ),
                )
            }
        };
        // Counted with the other requests: the gate never sees a refused one.
        record_request(
            method_label(request.method()),
            route_name.unwrap_or("unmatched"),
            refused.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
        AccessFuture::Refused(Some(refused))
    }
}

/// The response of an [`Access`]-checked request.
#[derive(Debug)]
pub(crate) enum AccessFuture<F> {
    Admitted(F),
    Refused(Option<Response>),
}

impl<F> Future for AccessFuture<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            AccessFuture::Admitted(inner) => Pin::new(inner).poll(cx),
            AccessFuture::Refused(response) => Poll::Ready(Ok(response
                .take()
                .expect("a refused request is polled to completion once"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `printf %s TOKEN | sha256sum`
    fn sha256_hex(token: &str) -> String {
        Digest::of(token)
            .0
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn file(entries: &str) -> Result<Tokens, TokensError> {
        Tokens::parse(entries.as_bytes(), "tokens.json")
    }

    #[test]
    fn a_token_is_found_by_its_digest_and_only_by_it() {
        let tokens = file(&format!(
            r#"[{{"token_sha256": "{}", "name": "writer", "scopes": ["commands"], "commands": ["CreateCounter"]}},
                {{"token_sha256": "{}", "name": "reader", "scopes": ["queries"]}}]"#,
            sha256_hex("w-secret"),
            sha256_hex("r-secret").to_uppercase(),
        ))
        .unwrap();
        let writer = tokens.grant("w-secret").unwrap();
        assert_eq!(writer.name(), "writer");
        assert!(writer.has(Scope::Commands) && !writer.has(Scope::Queries));
        assert!(writer.allows_command("CreateCounter"));
        assert!(!writer.allows_command("CloseCounter"));
        let reader = tokens.grant("r-secret").unwrap();
        assert!(reader.has(Scope::Queries) && !reader.allows_command("CreateCounter"));
        assert!(tokens.grant("w-secre").is_none());
        assert!(tokens.grant(&sha256_hex("w-secret")).is_none());
        assert_eq!(tokens.names(), ["writer", "reader"]);
        assert_eq!(tokens.listed_commands(), ["CreateCounter"]);
        assert!(!format!("{tokens:?}").contains(&sha256_hex("w-secret")));
    }

    #[test]
    fn the_known_digest_of_a_token_matches_sha256sum() {
        // printf %s 'hello' | sha256sum
        assert_eq!(
            sha256_hex("hello"),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }

    #[test]
    fn a_bad_file_is_refused_naming_the_file_and_the_place() {
        let digest = sha256_hex("t");
        let cases = [
            ("[", "line 1 column 1"),
            ("{}", "expected a sequence"),
            ("[]", "lists no token"),
            (
                &format!(r#"[{{"token_sha256": "{digest}", "name": "a", "scopes": ["root"]}}]"#),
                "unknown variant `root`, expected one of `commands`, `queries`, `admin` at line 1",
            ),
            (
                r#"[{"token_sha256": "abc", "name": "a", "scopes": []}]"#,
                "token_sha256 \"abc\" is not 64 hex digits",
            ),
            (
                &format!(
                    r#"[{{"token_sha256": "{}", "name": "a", "scopes": []}}]"#,
                    "g".repeat(64)
                ),
                "is not 64 hex digits",
            ),
            (
                &format!(r#"[{{"token_sha256": "{digest}", "scopes": []}}]"#),
                "missing field `name`",
            ),
            (
                &format!(
                    r#"[{{"token_sha256": "{digest}", "name": "a", "scopes": [], "role": 1}}]"#
                ),
                "unknown field `role`",
            ),
            (
                &format!(
                    r#"[{{"token_sha256": "{digest}", "name": "a", "scopes": []}},
                        {{"token_sha256": "{}", "name": "a", "scopes": []}}]"#,
                    sha256_hex("u")
                ),
                "entries 1 (\"a\") and 2 (\"a\") have the same name",
            ),
            (
                &format!(
                    r#"[{{"token_sha256": "{digest}", "name": "a", "scopes": []}},
                        {{"token_sha256": "{}", "name": "b", "scopes": []}}]"#,
                    digest.to_uppercase()
                ),
                "entries 1 (\"a\") and 2 (\"b\") have the same token_sha256",
            ),
            (
                &format!(
                    r#"[{{"token_sha256": "{digest}", "name": "a", "scopes": ["queries"], "commands": []}}]"#
                ),
                "entry 1 (\"a\") lists commands but has no \"commands\" scope",
            ),
        ];
        for (text, expected) in cases {
            let error = file(text).unwrap_err().to_string();
            assert!(error.starts_with("tokens file tokens.json"), "{error}");
            assert!(error.contains(expected), "{text}: {error}");
        }
        let missing = Tokens::load(Path::new("no/such/tokens.json")).unwrap_err();
        assert!(
            missing.to_string().contains("no/such/tokens.json"),
            "{missing}"
        );
    }

    #[test]
    fn routes_need_their_scopes() {
        let any: &[Scope] = &[];
        assert_eq!(need(&Method::GET, Some("/health")), Need::Open);
        assert_eq!(need(&Method::HEAD, Some("/health")), Need::Open);
        assert_eq!(need(&Method::GET, Some("/domains")), Need::AnyOf(any));
        assert_eq!(
            need(&Method::POST, Some("/update")),
            Need::AnyOf(&[Scope::Commands])
        );
        assert_eq!(
            need(&Method::GET, Some("/update/{id}")),
            Need::AnyOf(&[Scope::Commands, Scope::Queries])
        );
        // Another method of a route: 405 to any valid token.
        assert_eq!(need(&Method::DELETE, Some("/update")), Need::AnyOf(any));
        // A route the table forgot: admin only.
        assert_eq!(
            need(&Method::GET, Some("/someday/{x}")),
            Need::AnyOf(&[Scope::Admin])
        );
        // No route at all: 404 to any valid token.
        assert_eq!(need(&Method::GET, None), Need::AnyOf(any));
    }
}
