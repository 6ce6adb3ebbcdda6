//! A server that does nothing: the floor under `writ proof overload` and `writ proof soak`
//! on the machine they run on ([`writ_tools::null_server`] says what it answers).
//!
//! It takes `writ serve`'s command line (`serve --listen ADDRESS --data-dir DIR`, the rest
//! ignored), prints the same `listening on http://ADDRESS` line, and serves on the same
//! Tokio runtime as `writ serve`'s HTTP workers (one worker per core). With `--fdatasync`,
//! each `POST`'s body is first written into `DIR/null-server.dat` (64 MiB, zero-filled at
//! start, written round) and synced.
//!
//! ```text
//! cargo build --release -p writ-tools --example null_server
//! target/release/writ proof overload --binary target/release/examples/null_server --rate 260000 --backoff-ms 1000 --seconds 15
//! target/release/examples/null_server serve --listen 127.0.0.1:8090 --data-dir /var/tmp/null --fdatasync
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The size of the file `--fdatasync` writes into.
const SYNC_FILE_BYTES: u64 = 64 << 20;

/// The listener's backlog, as `writ serve`'s (its default `--connections-max`; the kernel
/// caps it at `net.core.somaxconn`).
const BACKLOG: u32 = 8_192;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("serve") {
        eprintln!(
            "usage: null_server serve --listen ADDRESS [--data-dir DIR --fdatasync] [ignored...]"
        );
        std::process::exit(2);
    }
    // The value after `flag`, as `writ serve` takes it.
    let value = |flag: &str| {
        args.windows(2)
            .find(|pair| pair[0] == flag)
            .map(|pair| pair[1].clone())
    };
    let listen = value("--listen").unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let sync = if args.iter().any(|arg| arg == "--fdatasync") {
        let Some(dir) = value("--data-dir").map(PathBuf::from) else {
            eprintln!("--fdatasync needs --data-dir DIR");
            std::process::exit(2);
        };
        let path = dir.join("null-server.dat");
        let file = std::fs::create_dir_all(&dir)
            .and_then(|()| match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            })
            .and_then(|()| writ_log::reference::PrezeroedFile::create(&path, SYNC_FILE_BYTES));
        match file {
            Ok(file) => Some(Arc::new(Mutex::new(file))),
            Err(e) => {
                eprintln!("cannot make {}: {e}", path.display());
                std::process::exit(1);
            }
        }
    } else {
        None
    };
    // As `writ serve`: each connection takes a file.
    if let Err(e) = writ_server::raise_open_files_limit() {
        eprintln!("cannot raise the limit on open files: {e}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        // Bound as `writ serve` binds its own.
        let listener = match writ_server::bind_listener(&listen, BACKLOG).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("cannot listen on {listen}: {e}");
                std::process::exit(1);
            }
        };
        println!(
            "listening on http://{}",
            listener.local_addr().expect("an address")
        );
        writ_tools::null_server::serve(listener, sync).await;
    });
}
