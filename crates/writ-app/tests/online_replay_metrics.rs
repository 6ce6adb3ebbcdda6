//! An online replay's own writer and syncer count nothing in the server's metrics: the
//! process-wide recorder is shared by every test of a binary, so this test has a binary of
//! its own.

use std::time::Duration;

use serde_json::json;
use writ_app::testing::TestServer;
use writ_app::{App, Module};

/// The value of the sample `name` (without labels) in a Prometheus exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == name).then(|| value.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {name} in the metrics"))
}

async fn metrics(server: &TestServer) -> String {
    let text = server.get("/metrics").await.ok();
    text.as_str().expect("text").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_replay_leaves_the_servers_metrics_as_they_were() {
    let server = TestServer::start(|| App::new().module(Module::new::<writ_tickets::Tickets>()));
    for i in 0..20u128 {
        let payload = json!({"ticketId": format!("t-{i}"), "title": "T", "reporter": "ann"});
        server.send(i + 1, "OpenTicket", payload).await.ok();
    }
    let before = metrics(&server).await;
    assert_eq!(sample(&before, "writ_commands_accepted_total"), 20.0);
    let started = server.post("/admin/replay", json!({})).await;
    assert_eq!(started.status.as_u16(), 202, "{}", started.body);
    let mut done = false;
    for _ in 0..6_000 {
        let status = server.get("/admin/replay").await.ok();
        assert_ne!(status["phase"], "failed", "{status}");
        if status["phase"] == "done" {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(done, "the replay ended within a minute");
    let after = metrics(&server).await;
    for name in [
        "writ_commands_accepted_total",
        "writ_command_outcomes_total{status=\"succeeded\"}",
        "writ_store_poisoned",
    ] {
        assert_eq!(sample(&before, name), sample(&after, name), "{name}");
    }
}
