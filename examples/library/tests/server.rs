//! End to end: the library's module as `main` registers it, served by a `TestServer`
//! (in-memory storage, a clock the test moves) and called through the server's routes as a
//! client calls them, without a socket.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;
use writ_app::testing::{StatusCode, TestServer};
use writ_app::{App, Clock, Module};
use writ_example_library::{Library, Reminders, read};
use writ_query::rfc3339::format_millis;

/// The module as `src/main.rs` registers it.
fn app() -> App {
    App::new().module(
        Module::new::<Library>()
            .process::<Reminders>()
            .read_model(read::read_model()),
    )
}

const DAY: Duration = Duration::from_secs(86_400);

/// Sends a command of its newest version that must succeed; its final status.
async fn ok(server: &TestServer, id: u128, command: &str, payload: Value) -> Value {
    let status = server.send(id, command, payload).await.ok();
    assert_eq!(status["status"], "succeeded", "{command}: {status}");
    status
}

/// Two books and a member.
async fn shelve(server: &TestServer) {
    let book = |id, title| json!({"bookId": id, "title": title});
    ok(server, 1, "AddBook", book("b-1", "Middlemarch")).await;
    ok(server, 2, "AddBook", book("b-2", "Persuasion")).await;
    let ann = json!({"memberId": "ann", "name": "Ann"});
    ok(server, 3, "RegisterMember", ann).await;
}

/// `LendBook` version 1, as an old client sends it: a loan of 14 days.
async fn lend_v1(server: &TestServer, id: u128, book: &str) -> Value {
    let status = server
        .send_body(json!({
            "id": Uuid::from_u128(id),
            "command": "LendBook",
            "version": 1,
            "payload": {"bookId": book, "memberId": "ann"},
        }))
        .await
        .ok();
    assert_eq!(status["status"], "succeeded", "{status}");
    status
}

/// The types of the events of `stream`.
async fn types(server: &TestServer, stream: &str) -> Vec<String> {
    let events = server.get(&format!("/streams/{stream}")).await.ok();
    let events = events["events"].as_array().unwrap();
    let types = events.iter().map(|e| e["type"].as_str().unwrap());
    types.map(str::to_owned).collect()
}

/// Ann's loans, in query API version `version`, once the read model holds the whole log.
async fn anns_loans(server: &TestServer, version: u32) -> Value {
    let after = server.state().engine().last_position();
    let uri = format!("/query/v{version}/memberLoans?memberId=ann&after={after}");
    server.get(&uri).await.ok()
}

/// Each of Ann's loans (version 2) as (book, overdue), earliest due first.
fn overdue_flags(loans: &Value) -> Vec<(&str, bool)> {
    let loans = loans["loans"].as_array().unwrap();
    loans
        .iter()
        .map(|l| (l["bookId"].as_str().unwrap(), l["overdue"] == true))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loan_is_marked_overdue_by_its_timer_once_the_clock_passes_its_due_time() {
    let server = TestServer::start(app);
    let engine = server.state().engine();
    shelve(&server).await;

    // Version 1: 14 days. One decision, two streams.
    let lent_at = server.clock().now_ms();
    let status = lend_v1(&server, 10, "b-1").await;
    let recorded: Vec<(&str, &str)> = status["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["stream"].as_str().unwrap(), e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        recorded,
        [("book-b-1", "BookLent"), ("member-ann", "LoanOpened")]
    );
    // Version 2: 30 days.
    let lend = json!({"bookId": "b-2", "memberId": "ann", "days": 30});
    ok(&server, 11, "LendBook", lend).await;
    assert_eq!(engine.timers_pending(), 2, "a reminder per loan");

    // 13 days later nothing is due. (`advance` returns once whatever fell due is done.)
    server.advance(13 * DAY).await;
    assert_eq!(engine.stream_version("book-b-1"), 2, "not overdue yet");
    let loans = anns_loans(&server, 2).await;
    assert_eq!(overdue_flags(&loans), [("b-1", false), ("b-2", false)]);

    // A day and a minute later, b-1's timer has fired and marked it overdue.
    server.advance(DAY + Duration::from_secs(60)).await;
    assert_eq!(engine.stream_version("book-b-1"), 3);
    let events = server.get("/streams/book-b-1?from=3").await.ok();
    let overdue = &events["events"][0];
    assert_eq!(overdue["type"], "BookOverdue");
    let due_at = format_millis(lent_at + 14 * 86_400_000);
    let marked_at = overdue["metadata"]["recordedAt"].as_str().unwrap();
    assert!(
        marked_at >= &*due_at,
        "marked at {marked_at}, due at {due_at}"
    );

    // The timer's command, by its id: an ordinary command, origin `timer`, caused by the
    // lending, in its chain.
    let id = overdue["metadata"]["commandId"].as_str().unwrap();
    let mark = server.get(&format!("/update/{id}")).await.ok();
    assert_eq!(mark["command"], "MarkOverdue");
    assert_eq!(mark["status"], "succeeded");
    assert_eq!(mark["origin"], "timer");
    assert_eq!(mark["causationId"], json!(Uuid::from_u128(10)));
    assert_eq!(mark["correlationId"], json!(Uuid::from_u128(10)));
    assert_eq!(engine.timers_pending(), 1, "b-1's fired, b-2's waits");

    // Both query versions: version 2 with the overdue flag, earliest due first; version 1
    // in its older shape, from the same read model.
    let v2 = anns_loans(&server, 2).await;
    assert_eq!(overdue_flags(&v2), [("b-1", true), ("b-2", false)]);
    let loans = v2["loans"].as_array().unwrap();
    assert_eq!(loans[0]["lentAt"], format_millis(lent_at));
    assert_eq!(loans[0]["dueAt"], due_at);
    let v1 = anns_loans(&server, 1).await;
    assert_eq!(
        v1,
        json!([
            {"bookId": "b-1", "title": "Middlemarch", "dueAt": due_at},
            {"bookId": "b-2", "title": "Persuasion", "dueAt": loans[1]["dueAt"]},
        ])
    );
    let after = engine.last_position();
    let overdue_loans = server
        .get(&format!("/query/v2/overdueLoans?after={after}"))
        .await
        .ok();
    assert_eq!(overdue_loans["total"], 1);
    assert_eq!(overdue_loans["items"][0]["bookId"], "b-1");

    // Returning b-2 cancels its timer.
    ok(&server, 12, "ReturnBook", json!({"bookId": "b-2"})).await;
    assert_eq!(engine.timers_pending(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loan_due_while_the_server_is_down_is_marked_overdue_once_at_the_start() {
    let mut server = TestServer::start(app);
    shelve(&server).await;
    lend_v1(&server, 10, "b-1").await;

    // A power cut, and the server is down for 15 days: the loan fell due meanwhile.
    server.crash(15 * DAY);
    server.settle().await;
    assert_eq!(
        types(&server, "book-b-1").await,
        ["BookAdded", "BookLent", "BookOverdue"]
    );
    assert_eq!(server.state().engine().timers_pending(), 0);
    let loans = anns_loans(&server, 2).await;
    assert_eq!(overdue_flags(&loans), [("b-1", true)]);

    // Once: the timer fired, and the next start does not fire it again.
    server.restart(DAY);
    let bob = json!({"memberId": "bob", "name": "Bob"});
    ok(&server, 11, "RegisterMember", bob).await;
    assert_eq!(server.state().engine().stream_version("book-b-1"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loans_timer_survives_a_crash() {
    let mut server = TestServer::start(app);
    shelve(&server).await;
    let lend = json!({"bookId": "b-1", "memberId": "ann", "days": 30});
    ok(&server, 10, "LendBook", lend).await;

    // What a power cut leaves: the synced bytes only. The timer is in the command log.
    server.crash(Duration::from_secs(3_600));
    assert_eq!(server.state().engine().timers_pending(), 1);
    let loans = anns_loans(&server, 2).await;
    assert_eq!(
        overdue_flags(&loans),
        [("b-1", false)],
        "rebuilt from the log"
    );
    ok(&server, 11, "ReturnBook", json!({"bookId": "b-1"})).await;
    assert_eq!(server.state().engine().timers_pending(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_room_loan_is_overdue_at_once_without_moving_the_clock() {
    let server = TestServer::start(app);
    shelve(&server).await;
    // `days: 0`, as in the guide's session: due at once, so the timer fires right away.
    let lend = json!({"bookId": "b-2", "memberId": "ann", "days": 0});
    ok(&server, 11, "LendBook", lend).await;
    server.settle().await;
    let loans = anns_loans(&server, 2).await;
    assert_eq!(overdue_flags(&loans), [("b-2", true)]);
    assert_eq!(loans["loans"][0]["dueAt"], loans["loans"][0]["lentAt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_carry_their_codes_and_internal_commands_are_not_for_clients() {
    let server = TestServer::start(app);
    shelve(&server).await;

    let too_long = json!({"bookId": "b-1", "memberId": "ann", "days": 61});
    let status = server.send(10, "LendBook", too_long).await.ok();
    assert_eq!(status["status"], "rejected");
    assert_eq!(status["error"]["code"], "days_invalid");
    let status = server
        .send(11, "ReturnBook", json!({"bookId": "b-1"}))
        .await
        .ok();
    assert_eq!(status["error"]["code"], "book_not_on_loan");

    let mark = json!({"bookId": "b-1", "loanId": Uuid::nil()});
    let problem = server
        .send(12, "MarkOverdue", mark)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "unknown_command");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("processes only"), "{detail}");
    server
        .send(13, "AddBook", json!({"bookId": "", "title": "x"}))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_payload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_shows_the_commands_their_versions_the_queries_and_the_process() {
    let server = TestServer::start(app);
    let domains = server.get("/domains").await.ok();
    let library = &domains["domains"][0];
    assert_eq!(library["name"], "library");
    assert_eq!(library["streamPrefixes"], json!(["book-", "member-"]));
    let commands: Vec<(&str, bool, Vec<u64>)> = library["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let versions = c["versions"].as_array().unwrap();
            (
                c["name"].as_str().unwrap(),
                c["internal"].as_bool().unwrap(),
                versions
                    .iter()
                    .map(|v| v["version"].as_u64().unwrap())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        commands,
        [
            ("AddBook", false, vec![1]),
            ("RegisterMember", false, vec![1]),
            ("LendBook", false, vec![1, 2]),
            ("ReturnBook", false, vec![1]),
            ("MarkOverdue", true, vec![1]),
        ]
    );
    assert_eq!(library["readModels"], json!(["loans"]));
    assert_eq!(library["queryVersions"], json!([1, 2]));
    let queries: Vec<(u64, &str)> = library["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["version"].as_u64().unwrap(), q["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        queries,
        [(1, "memberLoans"), (2, "memberLoans"), (2, "overdueLoans")]
    );
    assert_eq!(domains["processes"][0]["name"], "reminders");
}
