//! A TCP listener that holds at most `connections_max` connections open and turns Nagle's
//! algorithm off on each (a `202` is one small write that should leave at once).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Binds the first address `address` (`HOST:PORT`) resolves to that can be bound, and
/// listens with room for `backlog` connections waiting to be accepted (the kernel caps it
/// at `net.core.somaxconn`).
///
/// Tokio's `TcpListener::bind` listens with a backlog of 1,024. When a burst of new
/// connections finds a full backlog, the kernel drops the handshake's last packet, and each
/// such client's first request waits for TCP's retransmission: 200 ms at least, often more.
/// `writ proof overload` saw that as the slowest answers until the backlog grew.
pub async fn bind(address: &str, backlog: u32) -> io::Result<TcpListener> {
    let mut last_error = None;
    for resolved in tokio::net::lookup_host(address).await? {
        let socket = if resolved.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // As `TcpListener::bind`: a restarted server can listen again at once.
        socket.set_reuseaddr(true)?;
        match socket.bind(resolved) {
            Ok(()) => return socket.listen(backlog),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{address} resolves to no address"),
        )
    }))
}

/// Accepts only while fewer than the bound are open: at the bound, new connections wait
/// in the kernel's listen backlog until one closes.
#[derive(Debug)]
pub(crate) struct Limited {
    tcp: TcpListener,
    permits: Arc<Semaphore>,
}

impl Limited {
    pub(crate) fn new(tcp: TcpListener, connections_max: usize) -> Self {
        Self {
            tcp,
            permits: Arc::new(Semaphore::new(connections_max.min(Semaphore::MAX_PERMITS))),
        }
    }

    /// The next connection, once fewer than the bound are open: its stream (`TCP_NODELAY`
    /// set), its client's address, and its place under the bound, given back when the
    /// place drops.
    pub(crate) async fn accept(&mut self) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (stream, address) = accept(&self.tcp).await;
        (stream, address, permit)
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// The process's limit on open files (`RLIMIT_NOFILE`): each connection takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The limit in force.
    pub soft: u64,
    /// How far an unprivileged process may raise it.
    pub hard: u64,
}

/// Raises the process's soft limit on open files to its hard limit, and returns the limits
/// as they are then (`RLIMIT_INFINITY` as `u64::MAX`). Many systems start processes at a
/// soft limit of 1,024, below a server's thousands of connections; the hard limit is what
/// the administrator allows. Children started afterwards inherit the raised limit.
#[cfg(unix)]
#[allow(clippy::useless_conversion)] // `rlim_t` is `u64` on some systems only
pub fn raise_open_files_limit() -> io::Result<OpenFiles> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` and `setrlimit` read or write only the `rlimit` they are given,
    // a valid local.
    #[allow(unsafe_code)]
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if read != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        #[allow(unsafe_code)]
        let written = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
        if written != 0 {
            return Err(io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok(OpenFiles {
        soft: u64::try_from(limit.rlim_cur).unwrap_or(u64::MAX),
        hard: u64::try_from(limit.rlim_max).unwrap_or(u64::MAX),
    })
}

/// Elsewhere there is no such limit to raise.
#[cfg(not(unix))]
pub fn raise_open_files_limit() -> io::Result<OpenFiles> {
    Ok(OpenFiles {
        soft: u64::MAX,
        hard: u64::MAX,
    })
}

/// The next connection `tcp` accepts, with `TCP_NODELAY` set. A connection its client
/// gave up on before it was accepted is skipped; any other failure (most likely out of file
/// descriptors) is logged and tried again after a second, so that it never becomes a loop
/// that takes a core while the descriptors stay short.
pub async fn accept(tcp: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match tcp.accept().await {
            Ok((stream, address)) => {
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
                return (stream, address);
            }
            Err(error) if is_connection_error(&error) => {}
            Err(error) => {
                tracing::error!(%error, "accept failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// An accepted connection; its place under the bound is given back when it drops.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    pub(crate) fn new(stream: TcpStream, permit: OwnedSemaphorePermit) -> Self {
        Self {
            stream,
            _permit: permit,
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Connections made to a listener that never accepts: more than tokio's default
    /// backlog of 1,024 holds.
    const WAITING: usize = 1_100;

    /// A number from a `/proc` file, or `None` where there is none (not Linux).
    fn proc_number(path: &str, line_start: &str, field: usize) -> Option<u64> {
        let text = std::fs::read_to_string(path).ok()?;
        let line = text.lines().find(|l| l.starts_with(line_start))?;
        line.split_whitespace().nth(field)?.parse().ok()
    }

    #[tokio::test]
    async fn the_backlog_holds_a_burst_of_connections_waiting_to_be_accepted() {
        // Each client end takes a descriptor here (the server ends wait in the kernel until
        // accepted), and the kernel caps the backlog. Test runners often start at a soft
        // limit of 1,024: raise it as far as the hard limit allows.
        if let Err(error) = raise_open_files_limit() {
            eprintln!("cannot raise the limit on open files: {error}");
        }
        let descriptors = proc_number("/proc/self/limits", "Max open files", 3);
        let somaxconn = proc_number("/proc/sys/net/core/somaxconn", "", 0);
        match (descriptors, somaxconn) {
            (Some(d), Some(s)) if d >= WAITING as u64 + 200 && s >= WAITING as u64 => {}
            _ => {
                eprintln!(
                    "skipped: needs {} open files and net.core.somaxconn >= {WAITING} (have {descriptors:?} and {somaxconn:?})",
                    WAITING + 200
                );
                return;
            }
        }
        let listener = bind("127.0.0.1:0", 2_048).await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut waiting = Vec::with_capacity(WAITING);
        for i in 0..WAITING {
            // With a full backlog the kernel drops the SYN and connect retries after 1 s.
            let connected =
                tokio::time::timeout(Duration::from_millis(900), TcpStream::connect(address))
                    .await
                    .unwrap_or_else(|_| panic!("connection {i} found the backlog full"))
                    .unwrap();
            waiting.push(connected);
        }
        // And they are there to accept.
        let (_, from) = listener.accept().await.unwrap();
        assert_eq!(from, waiting[0].local_addr().unwrap());
    }

    #[tokio::test]
    async fn bind_names_what_it_cannot_resolve() {
        assert!(bind("localhost:0", 16).await.is_ok());
        let error = bind("127.0.0.1:not-a-port", 16).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{error}");
    }
}
