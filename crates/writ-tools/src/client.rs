//! A lean HTTP/1.1 client for the tools that talk to a running server (`writ bench http`,
//! `writ bench query`, `writ rebuild`, `writ proof`, and `writ-compare --over http`, which
//! drives both sides of its comparison with it): one keep-alive connection, one request at
//! a time, whole bodies.
//!
//! It writes each request in one `write` and parses the answer itself (with `httparse`):
//! the load tool shares the machine with the server it measures, so every instruction it
//! spends per request is one the server does not get. Bodies come with `Content-Length`,
//! chunked, or up to the end of the connection; a `Connection: close` answer, or an
//! exchange that did not complete (an error, or its future dropped by a timeout), leaves
//! the client unusable rather than reading a stale answer as the next one.
//!
//! It speaks plain `http://` only (no TLS, no proxies, no redirects): what a tool needs
//! against a server on a known address, and no more. A [`Target`] may carry a bearer token
//! ([`Target::with_token`]; the tools take it from `--token` or `WRIT_TOKEN`), which every
//! request then sends, for a server that runs with `--tokens`.
//!
//! ```no_run
//! use writ_tools::client::{Bytes, Client, Method, StatusCode, Target};
//!
//! # async fn example() -> Result<(), String> {
//! let target = Target::parse("http://127.0.0.1:8080")?;
//! let mut client = Client::connect(&target).await?;
//! let body = Bytes::from_static(br#"{"id":"0b0e5b4c-9a53-4c9a-9d7c-6a3f0c2f7a10","command":"OpenTicket","version":2,"payload":{"ticketId":"t-1","title":"Printer on fire","reporter":"ann"}}"#);
//! let (status, answer) = client.send(Method::POST, "/update?wait=10", Some(body)).await?;
//! assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
//! # Ok(())
//! # }
//! ```

use std::fmt::Display;
use std::io::Write as _;

pub use hyper::body::Bytes;
pub use hyper::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Headers an answer may have, at most (the server sends a handful).
const HEADERS_MAX: usize = 32;
/// The bound on an answer's head, in bytes.
const HEAD_BYTES_MAX: usize = 64 * 1024;
/// Largest answer body read: far above anything the server sends (a page of events, a
/// query's result, `/metrics`), so a larger one is a broken or hostile peer.
const BODY_BYTES_MAX: usize = 64 << 20;

/// Refuses a body of `len` bytes above [`BODY_BYTES_MAX`].
fn body_fits(len: usize) -> Result<(), String> {
    if len > BODY_BYTES_MAX {
        return Err(format!(
            "an answer's body exceeds {BODY_BYTES_MAX} bytes ({len} at least)"
        ));
    }
    Ok(())
}
/// How much room each read asks for.
const READ_CHUNK: usize = 16 * 1024;

/// Where the server is, and the token to show it.
#[derive(Clone)]
pub struct Target {
    /// `http://HOST:PORT`, as given (without a trailing `/`); error messages name it.
    pub url: String,
    /// `HOST:PORT`.
    pub authority: String,
    /// The bearer token every request carries (`Authorization: Bearer TOKEN`), for a
    /// server that runs with `--tokens`.
    pub token: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of logs and error messages.
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("authority", &self.authority)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl Target {
    /// `http://HOST:PORT` (a trailing `/` is fine; the port defaults to 80).
    pub fn parse(url: &str) -> Result<Self, String> {
        let usage = || format!("--target {url:?} is not http://HOST:PORT");
        let rest = url.strip_prefix("http://").ok_or_else(usage)?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains('/') {
            return Err(usage());
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            authority,
            token: None,
        })
    }

    /// The same server, every request carrying `token` (none when `None`).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    /// The `Authorization` header's value for the token, if there is one.
    pub fn authorization(&self) -> Option<String> {
        self.token.as_ref().map(|token| format!("Bearer {token}"))
    }
}

/// One keep-alive HTTP/1.1 connection, one request at a time.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    /// Bytes read from the connection and not yet consumed.
    input: Vec<u8>,
    /// The request being written.
    output: Vec<u8>,
    authority: String,
    url: String,
    /// The `Authorization` header line (with its CRLF), when the target has a token.
    authorization: Option<String>,
    /// Why the connection cannot carry another request, if it cannot.
    unusable: Option<&'static str>,
}

/// How an answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    /// Up to the end of the connection.
    Close,
}

/// An answer's head, parsed.
#[derive(Debug)]
struct Head {
    status: StatusCode,
    /// Its length in bytes.
    len: usize,
    framing: Framing,
    close: bool,
}

impl Client {
    /// Opens the connection (with `TCP_NODELAY`: each request is one write).
    pub async fn connect(target: &Target) -> Result<Self, String> {
        let stream = TcpStream::connect(&target.authority)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", target.url))?;
        let _ = stream.set_nodelay(true);
        Ok(Self {
            stream,
            input: Vec::with_capacity(READ_CHUNK),
            output: Vec::with_capacity(1024),
            authority: target.authority.clone(),
            url: target.url.clone(),
            authorization: target
                .authorization()
                .map(|value| format!("authorization: {value}\r\n")),
            unusable: None,
        })
    }

    /// Sends a request (a body is sent as JSON) and reads the whole answer: its status and
    /// body. An `Err` is a sentence naming the request; the connection is then unusable.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), String> {
        let fail = |url: &str, e: &dyn Display| format!("{method} {url}{path}: {e}");
        if let Some(why) = self.unusable {
            return Err(fail(&self.url, &why));
        }
        // Until the answer is read whole: dropped half-way, the connection is out of step.
        self.unusable = Some("an earlier exchange on this connection did not complete");
        self.output.clear();
        write!(
            self.output,
            "{method} {path} HTTP/1.1\r\nhost: {}\r\n",
            self.authority
        )
        .expect("writing to a Vec never fails");
        if let Some(authorization) = &self.authorization {
            self.output.extend_from_slice(authorization.as_bytes());
        }
        match &body {
            Some(body) => write!(
                self.output,
                "content-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            ),
            None if method == Method::GET || method == Method::HEAD => {
                write!(self.output, "\r\n")
            }
            None => write!(self.output, "content-length: 0\r\n\r\n"),
        }
        .expect("writing to a Vec never fails");
        if let Some(body) = &body {
            self.output.extend_from_slice(body);
        }
        self.stream
            .write_all(&self.output)
            .await
            .map_err(|e| fail(&self.url, &e))?;
        let received = self.receive(&method).await;
        let (status, answer, close) = received.map_err(|e| fail(&self.url, &e))?;
        self.unusable = if close {
            Some("the server closed the connection")
        } else if !self.input.is_empty() {
            // One request at a time: bytes beyond the answer belong to no request.
            Some("the server sent bytes beyond its answer")
        } else {
            None
        };
        Ok((status, answer))
    }

    /// [`Client::send`] that expects `expected` and a JSON body, and says what came
    /// otherwise.
    pub async fn json(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        expected: StatusCode,
    ) -> Result<serde_json::Value, String> {
        let (status, answer) = self.send(method.clone(), path, body).await?;
        if status != expected {
            return Err(format!(
                "{method} {path} answered {status}: {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        serde_json::from_slice(&answer)
            .map_err(|e| format!("{method} {path}: the answer is not JSON: {e}"))
    }

    /// Reads one answer: its status, its body, and whether the connection ends with it.
    async fn receive(&mut self, method: &Method) -> Result<(StatusCode, Bytes, bool), String> {
        let head = loop {
            let head = loop {
                if let Some(head) = parse_head(&self.input)? {
                    break head;
                }
                if self.input.len() > HEAD_BYTES_MAX {
                    return Err(format!("an answer's head exceeds {HEAD_BYTES_MAX} bytes"));
                }
                if self.fill().await? == 0 {
                    return Err("the connection closed before an answer".to_owned());
                }
            };
            // Interim answers (`100 Continue`) precede the real one.
            if head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS {
                self.input.drain(..head.len);
                continue;
            }
            break head;
        };
        self.input.drain(..head.len);
        let bodiless = *method == Method::HEAD
            || head.status == StatusCode::NO_CONTENT
            || head.status == StatusCode::NOT_MODIFIED;
        let (body, close) = match head.framing {
            _ if bodiless => (Bytes::new(), head.close),
            Framing::Length(len) => {
                body_fits(len)?;
                while self.input.len() < len {
                    if self.fill().await? == 0 {
                        return Err(format!(
                            "the connection closed {} bytes into a {len}-byte body",
                            self.input.len()
                        ));
                    }
                }
                let body = Bytes::copy_from_slice(&self.input[..len]);
                self.input.drain(..len);
                (body, head.close)
            }
            Framing::Chunked => (self.chunked().await?, head.close),
            Framing::Close => {
                while self.fill().await? > 0 {
                    body_fits(self.input.len())?;
                }
                (Bytes::from(std::mem::take(&mut self.input)), true)
            }
        };
        Ok((head.status, body, close))
    }

    /// Reads a chunked body whole (trailers are read and dropped).
    async fn chunked(&mut self) -> Result<Bytes, String> {
        let mut body = Vec::new();
        loop {
            let line = self.line().await?;
            let size = line.split(|b| *b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size)
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| {
                    format!(
                        "a malformed chunk size: {:?}",
                        String::from_utf8_lossy(&line)
                    )
                })?;
            if size == 0 {
                // Trailers, up to an empty line.
                while !self.line().await?.is_empty() {}
                return Ok(Bytes::from(body));
            }
            // Cannot overflow: at most BODY_BYTES_MAX past the body read so far.
            body_fits(body.len().saturating_add(size))?;
            while self.input.len() < size + 2 {
                if self.fill().await? == 0 {
                    return Err("the connection closed inside a chunk".to_owned());
                }
            }
            if &self.input[size..size + 2] != b"\r\n" {
                return Err("a chunk does not end with CRLF".to_owned());
            }
            body.extend_from_slice(&self.input[..size]);
            self.input.drain(..size + 2);
        }
    }

    /// Reads one CRLF-terminated line, without its CRLF.
    async fn line(&mut self) -> Result<Vec<u8>, String> {
        loop {
            if let Some(end) = self.input.windows(2).position(|w| w == b"\r\n") {
                let line = self.input[..end].to_vec();
                self.input.drain(..end + 2);
                return Ok(line);
            }
            if self.input.len() > HEAD_BYTES_MAX {
                return Err(format!("a chunk line exceeds {HEAD_BYTES_MAX} bytes"));
            }
            if self.fill().await? == 0 {
                return Err("the connection closed inside a chunked body".to_owned());
            }
        }
    }

    /// Reads what the connection has into `input`; `0` at its end.
    async fn fill(&mut self) -> Result<usize, String> {
        self.input.reserve(READ_CHUNK);
        self.stream
            .read_buf(&mut self.input)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The head at the start of `input`, once it is there whole.
fn parse_head(input: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("a malformed answer: {e}")),
    };
    let code = response.code.expect("a complete head has a status");
    let status =
        StatusCode::from_u16(code).map_err(|e| format!("a malformed status {code}: {e}"))?;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut close = response.version == Some(0);
    for header in response.headers.iter() {
        // Only the headers that delimit the body are read; the rest are skipped unread.
        let name = header.name;
        let is = |wanted: &str| name.eq_ignore_ascii_case(wanted);
        let (is_length, is_encoding) = (is("content-length"), is("transfer-encoding"));
        if !(is_length || is_encoding || is("connection")) {
            continue;
        }
        let value = std::str::from_utf8(header.value)
            .map_err(|_| format!("header {name} is not text"))?
            .trim();
        if is_length {
            let parsed = value
                .parse::<usize>()
                .map_err(|_| format!("a malformed content-length: {value:?}"))?;
            if length.is_some_and(|l| l != parsed) {
                return Err("conflicting content-length headers".to_owned());
            }
            length = Some(parsed);
        } else if is_encoding {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if value
            .split(',')
            .any(|option| option.trim().eq_ignore_ascii_case("close"))
        {
            close = true;
        }
    }
    // Transfer-Encoding wins over Content-Length (RFC 9112, section 6.3).
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(len)) => Framing::Length(len),
        (false, None) => Framing::Close,
    };
    Ok(Some(Head {
        status,
        len,
        framing,
        close,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A one-connection server that answers each request (read up to its blank line, and
    /// its `content-length` body) with the next of `answers`, then closes.
    async fn serve(answers: Vec<&'static [u8]>) -> (Target, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut input = Vec::new();
            for answer in answers {
                let end = loop {
                    if let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") {
                        break end + 4;
                    }
                    let mut chunk = [0u8; 4096];
                    let n = socket.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "the client closed mid-request");
                    input.extend_from_slice(&chunk[..n]);
                };
                let head = String::from_utf8(input[..end].to_vec()).unwrap();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |l| l.trim().parse::<usize>().unwrap());
                while input.len() < end + length {
                    let mut chunk = [0u8; 4096];
                    let n = socket.read(&mut chunk).await.unwrap();
                    input.extend_from_slice(&chunk[..n]);
                }
                let request: Vec<u8> = input.drain(..end + length).collect();
                seen.push(String::from_utf8(request).unwrap());
                // In two writes, to exercise reads that stop half-way.
                let half = answer.len() / 2;
                socket.write_all(&answer[..half]).await.unwrap();
                socket.flush().await.unwrap();
                tokio::task::yield_now().await;
                socket.write_all(&answer[half..]).await.unwrap();
            }
            seen
        });
        let target = Target::parse(&format!("http://{address}")).unwrap();
        (target, task)
    }

    #[tokio::test]
    async fn requests_are_written_whole_and_answers_read_by_their_framing() {
        let (target, server) = serve(vec![
            b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{\"a\":1}",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\nContent-Length: 2\r\n\r\nno",
        ])
        .await;
        let mut client = Client::connect(&target).await.unwrap();
        let (status, body) = client
            .send(
                Method::POST,
                "/update",
                Some(Bytes::from_static(b"{\"x\":2}")),
            )
            .await
            .unwrap();
        assert_eq!(
            (status, &body[..]),
            (StatusCode::ACCEPTED, &b"{\"a\":1}"[..])
        );
        let (status, body) = client.send(Method::GET, "/a?b=c", None).await.unwrap();
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"abcde"[..]));
        let (status, body) = client.send(Method::DELETE, "/d", None).await.unwrap();
        assert_eq!((status, &body[..]), (StatusCode::NO_CONTENT, &b""[..]));
        let (status, body) = client.send(Method::GET, "/e", None).await.unwrap();
        assert_eq!(
            (status, &body[..]),
            (StatusCode::SERVICE_UNAVAILABLE, &b"no"[..])
        );
        let seen = server.await.unwrap();
        let authority = &target.authority;
        assert_eq!(
            seen,
            [
                format!(
                    "POST /update HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{{\"x\":2}}"
                ),
                format!("GET /a?b=c HTTP/1.1\r\nhost: {authority}\r\n\r\n"),
                format!("DELETE /d HTTP/1.1\r\nhost: {authority}\r\ncontent-length: 0\r\n\r\n"),
                format!("GET /e HTTP/1.1\r\nhost: {authority}\r\n\r\n"),
            ]
        );
    }

    #[tokio::test]
    async fn a_target_with_a_token_sends_it_with_every_request() {
        let (target, server) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
        ])
        .await;
        let target = target.with_token(Some("s3cret".to_owned()));
        assert!(!format!("{target:?}").contains("s3cret"));
        let mut client = Client::connect(&target).await.unwrap();
        client.send(Method::GET, "/events", None).await.unwrap();
        client
            .send(Method::POST, "/update", Some(Bytes::from_static(b"{}")))
            .await
            .unwrap();
        let authority = &target.authority;
        assert_eq!(
            server.await.unwrap(),
            [
                format!(
                    "GET /events HTTP/1.1\r\nhost: {authority}\r\nauthorization: Bearer s3cret\r\n\r\n"
                ),
                format!(
                    "POST /update HTTP/1.1\r\nhost: {authority}\r\nauthorization: Bearer s3cret\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}"
                ),
            ]
        );
        // An empty token is none.
        assert!(target.with_token(Some(String::new())).token.is_none());
    }

    /// One answer on a fresh connection: the body the first exchange reads, then why a
    /// second exchange on the same connection is refused.
    #[tokio::test]
    async fn what_follows_an_answer_decides_whether_the_connection_is_reused() {
        let cases: [(&'static [u8], &[u8], &str); 3] = [
            // A body up to the close ends the connection.
            (
                b"HTTP/1.1 200 OK\r\n\r\nall of it",
                b"all of it",
                "closed the connection",
            ),
            // So does `Connection: close` (not merely the socket closing after it).
            (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
                b"x",
                "the server closed the connection",
            ),
            // Bytes beyond the answer belong to no request.
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n",
                b"x",
                "beyond its answer",
            ),
        ];
        for (answer, expected, refused) in cases {
            let (target, server) = serve(vec![answer]).await;
            let mut client = Client::connect(&target).await.unwrap();
            let (status, body) = client.send(Method::GET, "/", None).await.unwrap();
            assert_eq!((status, &body[..]), (StatusCode::OK, expected));
            server.await.unwrap();
            let error = client.send(Method::GET, "/", None).await.unwrap_err();
            assert!(error.contains(refused), "{error}");
        }
    }

    #[tokio::test]
    async fn a_body_beyond_the_bound_is_refused_before_it_is_read() {
        for answer in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\nx"[..],
            // A chunk size that would overflow `size + 2`.
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nx"[..],
        ] {
            let (target, server) = serve(vec![answer]).await;
            let mut client = Client::connect(&target).await.unwrap();
            let error = client.send(Method::GET, "/", None).await.unwrap_err();
            assert!(error.contains("body exceeds"), "{error}");
            server.await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_truncated_or_malformed_answer_is_an_error() {
        let (target, server) =
            serve(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"]).await;
        let mut client = Client::connect(&target).await.unwrap();
        let error = client.send(Method::GET, "/", None).await.unwrap_err();
        assert!(error.contains("5 bytes into a 10-byte body"), "{error}");
        server.await.unwrap();

        let (target, server) = serve(vec![b"HTTP/1.1 two hundred\r\n\r\n"]).await;
        let mut client = Client::connect(&target).await.unwrap();
        let error = client.send(Method::GET, "/", None).await.unwrap_err();
        assert!(error.contains("malformed answer"), "{error}");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn an_exchange_cut_short_leaves_the_connection_unusable() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // Accepts and never answers.
        let _server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
            drop(socket);
        });
        let target = Target::parse(&format!("http://{address}")).unwrap();
        let mut client = Client::connect(&target).await.unwrap();
        let waited = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            client.send(Method::GET, "/", None),
        )
        .await;
        assert!(waited.is_err(), "no answer came");
        let error = client.send(Method::GET, "/", None).await.unwrap_err();
        assert!(error.contains("did not complete"), "{error}");
    }
}
