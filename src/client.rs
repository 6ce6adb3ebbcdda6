//! A lean HTTP/1.1 client for the tools that talk to a running server (`writ rebuild`,
//! `writ bench query`): one keep-alive connection, whole bodies.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where the server is.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    /// `HOST:PORT`.
    pub authority: String,
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
        })
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Client {
    sender: http1::SendRequest<Full<Bytes>>,
    host: HeaderValue,
    url: String,
}

impl Client {
    pub async fn connect(target: &Target) -> Result<Self, String> {
        let tcp = TcpStream::connect(&target.authority)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", target.url))?;
        let _ = tcp.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| format!("cannot talk HTTP/1.1 to {}: {e}", target.url))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let host = HeaderValue::try_from(target.authority.as_str())
            .map_err(|e| format!("--target: {e}"))?;
        Ok(Self {
            sender,
            host,
            url: target.url.clone(),
        })
    }

    /// Sends a request (a body is sent as JSON) and reads the whole answer.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), String> {
        let url = &self.url;
        let fail = |e: hyper::Error| format!("{method} {url}{path}: {e}");
        self.sender.ready().await.map_err(fail)?;
        let mut request = Request::builder()
            .method(&method)
            .uri(path)
            .header(HOST, self.host.clone());
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let response = self.sender.send_request(request).await.map_err(fail)?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(fail)?
            .to_bytes();
        Ok((status, body))
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
}
