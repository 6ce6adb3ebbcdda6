//! The client of `--over http`, the same for both sides: one keep-alive HTTP/1.1 connection
//! per client (`writ_tools::client`), one command in flight on it, each sent as `POST
//! /update?wait=10` with the contract's JSON and counted when a `200` brings its final
//! status.

use std::io::Write as _;
use std::time::Instant;

use serde::Deserialize;
use uuid::Uuid;
use writ_tickets::workload as payloads;
use writ_tools::client::{Bytes, Client, Method, StatusCode, Target};

use crate::workload::{Step, StepKind, Workload};
use crate::writ_side::{command_id, micros};
use crate::{CompareError, Side, SideRun};

/// Where every command goes: the final status in one round trip, waiting up to 10 s.
pub const UPDATE_PATH: &str = "/update?wait=10";

/// The part of a status body the client reads (Writ's `CommandStatusBody`; the peer's
/// endpoint answers the same field).
#[derive(Debug, Deserialize)]
struct Answer {
    /// `succeeded`, `rejected`, `failed` or, not final, `accepted`.
    status: String,
}

/// The contract's request body for a workload step: `{"id","command","version","payload"}`,
/// the payload as `writ bench engine` and the in-process mode write it.
pub fn request_body(step: &Step, id: Uuid) -> Bytes {
    let mut payload = Vec::with_capacity(128);
    let (name, version) = match step.kind {
        StepKind::Open => {
            payloads::write_open_ticket_payload(&mut payload, step.ticket);
            (payloads::OPEN_TICKET, payloads::OPEN_TICKET_VERSION)
        }
        StepKind::Comment { comment } => {
            payloads::write_add_comment_payload(&mut payload, step.ticket, comment);
            (payloads::ADD_COMMENT, payloads::ADD_COMMENT_VERSION)
        }
    };
    let mut body = Vec::with_capacity(payload.len() + 96);
    write!(
        body,
        r#"{{"id":"{}","command":"{name}","version":{version},"payload":"#,
        id.hyphenated()
    )
    .expect("writing to a Vec never fails");
    body.extend_from_slice(&payload);
    body.push(b'}');
    Bytes::from(body)
}

/// Runs the workload against the server at `target`: a connection per lane, all opened
/// before the clock starts, each running its lane's commands one at a time. Timed from the
/// first send to the last final status. Any answer but a `200` with `succeeded` fails the
/// run: a `202` means the outcome was not final within the wait.
pub async fn drive(
    side: Side,
    target: &Target,
    workload: &Workload,
) -> Result<SideRun, CompareError> {
    let fail = |detail: String| CompareError::CommandFailed { side, detail };
    let mut clients = Vec::with_capacity(workload.lanes());
    for _ in 0..workload.lanes() {
        clients.push(Client::connect(target).await.map_err(fail)?);
    }
    let base = Uuid::new_v4().as_u128();
    let plans = workload.deal();

    let started = Instant::now();
    let lanes: Vec<_> = clients
        .into_iter()
        .zip(plans)
        .map(|(client, plan)| tokio::spawn(lane(side, client, plan, base)))
        .collect();
    let mut results = Vec::with_capacity(lanes.len());
    for lane in lanes {
        results.push(lane.await);
    }
    let elapsed = started.elapsed();
    let mut latencies_us = Vec::with_capacity(workload.commands() as usize);
    for result in results {
        let lane = result.map_err(|e| fail(format!("a lane's task failed: {e}")))?;
        latencies_us.extend(lane?);
    }
    Ok(SideRun::new(elapsed, latencies_us))
}

/// One client: its commands one at a time, each until its final status.
async fn lane(
    side: Side,
    mut client: Client,
    plan: Vec<Step>,
    base: u128,
) -> Result<Vec<u32>, CompareError> {
    let mut latencies_us = Vec::with_capacity(plan.len());
    for step in plan {
        let id = command_id(base, step.index);
        let body = request_body(&step, id);
        let submitted = Instant::now();
        let (status, answer) = client
            .send(Method::POST, UPDATE_PATH, Some(body))
            .await
            .map_err(|detail| CompareError::CommandFailed { side, detail })?;
        latencies_us.push(micros(submitted));
        check(side, &step, status, &answer)?;
    }
    Ok(latencies_us)
}

/// A `200` with `"status": "succeeded"`, or the failure of the run.
fn check(side: Side, step: &Step, status: StatusCode, answer: &[u8]) -> Result<(), CompareError> {
    let what = || {
        format!(
            "command {} on ticket t-{}: POST {UPDATE_PATH} answered {status}: {}",
            step.index,
            step.ticket,
            String::from_utf8_lossy(answer)
        )
    };
    let detail = match status {
        StatusCode::OK => match serde_json::from_slice::<Answer>(answer) {
            Ok(answer) if answer.status == "succeeded" => return Ok(()),
            Ok(_) => what(),
            Err(e) => format!("{} (not a status: {e})", what()),
        },
        StatusCode::ACCEPTED => format!(
            "{} (acknowledged, but its outcome was not final within the wait)",
            what()
        ),
        _ => what(),
    };
    Err(CompareError::CommandFailed { side, detail })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_follow_the_contract() {
        let w = Workload::new(2, 4, 1).unwrap();
        let id = Uuid::from_u128(7);
        let body: serde_json::Value =
            serde_json::from_slice(&request_body(&w.step(1), id)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "id": "00000000-0000-0000-0000-000000000007",
                "command": "OpenTicket",
                "version": 2,
                "payload": serde_json::from_slice::<serde_json::Value>(&payloads::open_ticket_payload(1)).unwrap(),
            })
        );
        let body: serde_json::Value =
            serde_json::from_slice(&request_body(&w.step(3), id)).unwrap();
        assert_eq!(body["command"], "AddComment");
        assert_eq!(body["version"], 1);
        assert_eq!(
            body["payload"],
            serde_json::from_slice::<serde_json::Value>(&payloads::add_comment_payload(1, 1))
                .unwrap()
        );
    }

    #[test]
    fn only_a_final_success_counts() {
        let w = Workload::new(1, 1, 1).unwrap();
        let step = w.step(0);
        assert!(
            check(
                Side::Writ,
                &step,
                StatusCode::OK,
                br#"{"status":"succeeded"}"#
            )
            .is_ok()
        );
        let cases: [(StatusCode, &[u8], &str); 4] = [
            (
                StatusCode::ACCEPTED,
                br#"{"id":"x"}"#,
                "not final within the wait",
            ),
            (StatusCode::OK, br#"{"status":"rejected"}"#, "rejected"),
            (StatusCode::OK, b"<html>", "not a status"),
            (StatusCode::SERVICE_UNAVAILABLE, b"busy", "503"),
        ];
        for (status, answer, expected) in cases {
            let err = check(Side::Peer, &step, status, answer).unwrap_err();
            assert!(
                matches!(
                    err,
                    CompareError::CommandFailed {
                        side: Side::Peer,
                        ..
                    }
                ),
                "{err}"
            );
            assert!(err.to_string().contains(expected), "{err}");
        }
    }
}
