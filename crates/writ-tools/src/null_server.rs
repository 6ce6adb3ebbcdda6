//! The null server: answers every HTTP/1.1 request at once and does nothing else, the floor
//! under `writ proof overload`, `writ proof soak` and `writ bench http` on the machine they
//! run on (the `null_server` example runs it with `writ serve`'s command line).
//!
//! `POST` gets `202` and `{"status":"accepted"}`, or with `?wait=` in its query (`writ
//! bench http --until outcome`) `200` and a `succeeded` status for the body's `id`;
//! `GET /update/{id}` gets `200` and a `succeeded` status for that id, `GET /streams/{name}`
//! an empty page of that stream (so `writ bench http`'s own check of the tickets' streams
//! fails after its figures, as it must); anything else `200` and `{}`. It keeps nothing and
//! refuses nothing, so what a load tool measures against it is the machine's and the
//! tool's own: no server on that machine, measured by that tool at the same offered rate,
//! answers sooner. A proof's `lost=0` against it proves nothing.
//!
//! With a [`PrezeroedFile`] (of more than [`REQUEST_BYTES_MAX`] bytes), each `POST`'s body
//! is first written into it and `fdatasync`ed, one at a time and on the connection's own
//! worker thread, as the plain loop of [`writ_log::reference`] does: the least a server
//! that makes each command durable before it answers can do. One client waiting for each
//! answer then measures the most any such server reaches over HTTP against the plain loop
//! on the same disk.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;
use writ_log::reference::PrezeroedFile;

/// The largest request (head and body) it reads; a larger one closes the connection.
pub const REQUEST_BYTES_MAX: usize = 64 << 10;

/// Where the `POST`s' bodies go before they are answered, when anywhere.
pub type SyncFile = Option<Arc<Mutex<PrezeroedFile>>>;

/// Serves the connections `listener` accepts (as `writ serve` accepts them:
/// [`writ_server::accept_connection`]), each on a task of its own, until the runtime
/// stops; with `sync`, each `POST`'s body is written and synced first.
pub async fn serve(listener: TcpListener, sync: SyncFile) {
    loop {
        let (stream, _) = writ_server::accept_connection(&listener).await;
        tokio::spawn(connection(stream, sync.clone()));
    }
}

/// Answers the requests of one connection until it closes or misbehaves.
async fn connection(mut stream: TcpStream, sync: SyncFile) {
    let mut input = vec![0u8; REQUEST_BYTES_MAX];
    let mut have = 0;
    let mut output = Vec::with_capacity(512);
    loop {
        while let Some(end) = find(&input[..have], b"\r\n\r\n") {
            let head = &input[..end];
            let Some(total) = content_length(head).and_then(|length| length.checked_add(end + 4))
            else {
                return;
            };
            if total > input.len() {
                return;
            }
            if have < total {
                break;
            }
            output.clear();
            let body = &input[end + 4..total];
            let synced = match (&sync, head.starts_with(b"POST ")) {
                (Some(file), true) => file
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .write_and_sync(body),
                _ => Ok(()),
            };
            match synced {
                Ok(()) => answer(head, body, &mut output),
                Err(error) => failed(&error, &mut output),
            }
            if stream.write_all(&output).await.is_err() {
                return;
            }
            input.copy_within(total..have, 0);
            have -= total;
        }
        if have == input.len() {
            return;
        }
        match stream.read(&mut input[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
    }
}

/// The answer to the request whose head (request line and headers) is `head` and whose
/// body is `body`.
fn answer(head: &[u8], body: &[u8], out: &mut Vec<u8>) {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let waits = query.split('&').any(|pair| pair.starts_with("wait="));
    let (status, answer) = if method == "POST" && waits {
        ("200 OK", succeeded(&command_id(body)))
    } else if method == "POST" {
        ("202 Accepted", r#"{"status":"accepted"}"#.to_owned())
    } else if let Some(id) = path.strip_prefix("/update/") {
        ("200 OK", succeeded(id))
    } else if let Some(stream) = path.strip_prefix("/streams/") {
        let page = serde_json::json!({ "stream": stream, "events": [] });
        ("200 OK", page.to_string())
    } else {
        ("200 OK", "{}".to_owned())
    };
    respond(status, &answer, out);
}

/// A `500` naming why the body could not be made durable.
fn failed(error: &std::io::Error, out: &mut Vec<u8>) {
    let detail = serde_json::json!({ "error": format!("cannot sync: {error}") }).to_string();
    respond("500 Internal Server Error", &detail, out);
}

/// Appends the answer with `status` and the JSON `body` to `out`.
fn respond(status: &str, body: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body.as_bytes());
}

/// A command's `succeeded` status, as `GET /update/{id}` answers it.
fn succeeded(id: &str) -> String {
    serde_json::json!({
        "id": id,
        "command": "AddComment",
        "status": "succeeded",
        "position": 1,
        "events": [],
        "origin": "client",
        "correlationId": id,
    })
    .to_string()
}

/// The `id` of a command's JSON body; the nil id when it has none.
fn command_id(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Command {
        id: Uuid,
    }
    serde_json::from_slice::<Command>(body)
        .map_or(Uuid::nil(), |command| command.id)
        .to_string()
}

/// The body's length from the head's `Content-Length` (0 without one); `None` when it is
/// not a number.
fn content_length(head: &[u8]) -> Option<usize> {
    for line in head.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            return value.trim().parse().ok();
        }
    }
    Some(0)
}

/// Where `needle` first starts in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    use writ_server::wire::{CommandStatusBody, StatusName};

    /// A null server on a port of its own.
    async fn start() -> std::net::SocketAddr {
        start_with(None).await
    }

    async fn start_with(sync: SyncFile) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, sync));
        address
    }

    /// Everything the server sends until it closes the connection or `answers` answers
    /// have come (counted by their heads).
    async fn read(stream: &mut TcpStream, answers: usize) -> String {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while String::from_utf8_lossy(&all).matches("HTTP/1.1 ").count() < answers
            || !all.ends_with(b"}")
        {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(all).unwrap()
    }

    #[tokio::test]
    async fn a_command_is_accepted_and_its_status_reads_succeeded_as_the_tools_parse_it() {
        let address = start().await;
        let mut stream = TcpStream::connect(address).await.unwrap();
        let id = uuid::Uuid::new_v4();
        let body = format!(r#"{{"id":"{id}","command":"AddComment","payload":{{}}}}"#);
        // Both requests in one write, the second pipelined behind the first's body.
        let requests = format!(
            "POST /update HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}\
             GET /update/{id}?wait=30 HTTP/1.1\r\nhost: x\r\n\r\n",
            body.len()
        );
        stream.write_all(requests.as_bytes()).await.unwrap();
        let answers = read(&mut stream, 2).await;
        let (accepted, status) = answers.split_at(answers.rfind("HTTP/1.1 ").unwrap());
        assert!(
            accepted.starts_with("HTTP/1.1 202 Accepted\r\n"),
            "{accepted}"
        );
        assert!(accepted.ends_with(r#"{"status":"accepted"}"#), "{accepted}");
        assert!(status.starts_with("HTTP/1.1 200 OK\r\n"), "{status}");
        let json = &status[status.find("\r\n\r\n").unwrap() + 4..];
        let parsed: CommandStatusBody = serde_json::from_str(json).unwrap();
        assert_eq!(parsed.id, id);
        assert_eq!(parsed.status, StatusName::Succeeded);
    }

    #[tokio::test]
    async fn a_request_it_cannot_frame_closes_the_connection_without_an_answer() {
        let address = start().await;
        let too_long = format!(
            "POST /update HTTP/1.1\r\ncontent-length: {}\r\n\r\n",
            REQUEST_BYTES_MAX
        );
        for head in [
            "POST /update HTTP/1.1\r\ncontent-length: ten\r\n\r\n".to_owned(),
            format!(
                "POST /update HTTP/1.1\r\ncontent-length: {}\r\n\r\n",
                usize::MAX
            ),
            too_long,
        ] {
            let mut stream = TcpStream::connect(address).await.unwrap();
            stream.write_all(head.as_bytes()).await.unwrap();
            let answer =
                tokio::time::timeout(std::time::Duration::from_secs(10), read(&mut stream, 1))
                    .await
                    .expect("the connection is closed");
            assert_eq!(answer, "", "{head}");
        }
    }

    /// With a file, a `POST` is answered once its body is in the file (at its start, the
    /// first write), and with `?wait=` by the `succeeded` status of the body's id.
    #[tokio::test]
    async fn with_a_file_a_posted_body_is_written_before_its_answer() {
        let path = std::env::temp_dir().join(format!(
            "writ-null-server-{}-{}.dat",
            std::process::id(),
            Uuid::new_v4()
        ));
        let file = PrezeroedFile::create(&path, 1 << 20).unwrap();
        let address = start_with(Some(Arc::new(Mutex::new(file)))).await;
        let mut stream = TcpStream::connect(address).await.unwrap();
        let id = Uuid::new_v4();
        let body = format!(r#"{{"id":"{id}","command":"AddComment","payload":{{}}}}"#);
        let request = format!(
            "POST /update?wait=10 HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let answer = read(&mut stream, 1).await;
        let on_disk = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        let json = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
        let parsed: CommandStatusBody = serde_json::from_str(json).unwrap();
        assert_eq!((parsed.id, parsed.status), (id, StatusName::Succeeded));
        assert_eq!(&on_disk[..body.len()], body.as_bytes());
        assert!(on_disk[body.len()..].iter().all(|&b| b == 0));
    }
}
