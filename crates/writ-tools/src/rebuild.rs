//! `writ rebuild`: rebuilds a running server's projection without downtime, with a
//! progress bar.
//!
//! It asks the server (`POST /projections/{name}/rebuild`) to build the projection from
//! position 1 beside the live one, then follows `GET /projections` until the rebuild has
//! switched readers to it (or failed), drawing `rebuild.position` of `rebuild.target`.
//! The server keeps answering queries from the live read model all along. With a
//! `--version` other than the live one the server logs the switch as a command
//! (`SwitchReadModel`), so a restart keeps it and `writ replay` replays it.

use std::time::{Duration, Instant};

use clap::Args;
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::client::{Client, Target};

/// `writ rebuild`'s arguments.
#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The server, as http://HOST:PORT.
    #[arg(long, env = "WRIT_TARGET", default_value = "http://127.0.0.1:8080")]
    target: String,
    /// The bearer token to send, for a server that runs with `--tokens` (an `admin` token).
    #[arg(long, env = "WRIT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The projection to rebuild.
    #[arg(long, default_value = "tickets")]
    projection: String,
    /// The projection version to build (a structure change when it is not the live one);
    /// default the live version.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    version: Option<u32>,
    /// How often to ask for progress, in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(10..=10_000))]
    poll_ms: u64,
}

/// Starts the rebuild and follows it to the switch, drawing a progress bar on stderr and
/// printing the figures on stdout. An error is a sentence for the user: the server could
/// not be reached, refused the rebuild, or the rebuild failed or was cancelled.
pub fn run(args: RebuildArgs) -> Result<(), String> {
    let target = Target::parse(&args.target)?.with_token(args.token.clone());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?
        .block_on(rebuild(args, target))
}

async fn rebuild(args: RebuildArgs, target: Target) -> Result<(), String> {
    let mut client = Client::connect(&target).await?;
    let body = Bytes::from(json!({"version": args.version}).to_string());
    let path = format!("/projections/{}/rebuild", args.projection);
    let started = Instant::now();
    let projection = client
        .json(Method::POST, &path, Some(body), StatusCode::ACCEPTED)
        .await?;
    let version = projection["rebuild"]["version"].as_u64().unwrap_or(0);
    eprintln!(
        "rebuilding {} version {version} (live: version {}) beside the live read model",
        args.projection, projection["version"]
    );
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} events ({per_sec}, {eta} left)",
        )
        .expect("a valid template"),
    );
    let finished = loop {
        let all = client
            .json(Method::GET, "/projections", None, StatusCode::OK)
            .await?;
        let projection = find(&all, &args.projection)?;
        let rebuild = &projection["rebuild"];
        match rebuild["state"].as_str() {
            Some("running") => {
                bar.set_length(rebuild["target"].as_u64().unwrap_or(0));
                bar.set_position(rebuild["position"].as_u64().unwrap_or(0));
            }
            _ => break projection.clone(),
        }
        tokio::time::sleep(Duration::from_millis(args.poll_ms)).await;
    };
    bar.finish_and_clear();
    let rebuild = &finished["rebuild"];
    match rebuild["state"].as_str() {
        Some("switched") => {
            let position = rebuild["position"].as_u64().unwrap_or(0);
            let elapsed = started.elapsed().as_secs_f64();
            println!(
                "projection={} version={} switched_at={position} elapsed_s={elapsed:.3} events_per_s={:.0}",
                args.projection,
                rebuild["version"],
                position as f64 / elapsed.max(f64::EPSILON)
            );
            Ok(())
        }
        Some("failed") => Err(format!(
            "the rebuild failed; the live read model was not touched: {}",
            rebuild["detail"].as_str().unwrap_or("(no detail)")
        )),
        Some("cancelled") => Err("the server shut down before the rebuild switched".into()),
        other => Err(format!(
            "unexpected rebuild state {other:?} in {finished}; was another rebuild started?"
        )),
    }
}

/// The entry of `name` in `GET /projections`.
fn find<'a>(all: &'a Value, name: &str) -> Result<&'a Value, String> {
    all["projections"]
        .as_array()
        .and_then(|list| list.iter().find(|p| p["name"] == name))
        .ok_or_else(|| format!("GET /projections does not list {name:?}: {all}"))
}
