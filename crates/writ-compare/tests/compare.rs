//! A tiny workload through both sides against the PostgreSQL at `WRIT_TEST_POSTGRES_URL`.

use writ_compare::{Options, Tally, Workload};

#[test]
fn a_tiny_workload_verifies_on_both_sides() {
    let Some(url) = std::env::var("WRIT_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!(
            "skipped: WRIT_TEST_POSTGRES_URL is not set (for example postgres://postgres@127.0.0.1:5432/test)"
        );
        return;
    };
    for (clients, in_flight) in [(1, 1), (3, 1), (2, 4)] {
        let workload = Workload::new(20, 100, clients)
            .unwrap()
            .with_in_flight(in_flight)
            .unwrap();
        let options = Options {
            workload,
            data_dir: None,
            postgres_url: url.clone(),
        };
        let comparison = writ_compare::run(&options).expect("both sides run and verify");
        let expected = Tally {
            tickets: 20,
            open_events: 20,
            comments: 80,
            other_events: 0,
        };
        assert_eq!(comparison.writ.tally, expected);
        assert_eq!(comparison.peer.tally, expected);
        assert_eq!(comparison.writ.run.latencies_us.len(), 100);
        assert_eq!(comparison.peer.run.latencies_us.len(), 100);
        assert_eq!(comparison.writ.stats.succeeded, 100);
        let lines = comparison.report_lines();
        assert!(
            lines[0].contains(&format!(" clients={clients} in_flight={in_flight} ")),
            "{lines:?}"
        );
        let last = lines.last().unwrap();
        assert!(last.starts_with("writ_cmds_per_s="), "{last}");
        assert!(
            last.contains(" peer_cmds_per_s=") && last.contains(" ratio="),
            "{last}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("postgres: fsync=") && l.contains(" synchronous_commit=")),
            "{lines:?}"
        );
    }
}

#[test]
fn a_data_dir_with_a_store_is_refused() {
    // Refused before any side runs, so no PostgreSQL is needed.
    let url = "postgres://postgres@127.0.0.1:5432/test".to_owned();
    let dir = std::env::temp_dir().join(format!("writ-compare-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("journal")).unwrap();
    let options = Options {
        workload: Workload::new(2, 2, 1).unwrap(),
        data_dir: Some(dir.clone()),
        postgres_url: url,
    };
    let err = writ_compare::run(&options).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        matches!(err, writ_compare::CompareError::DataDirNotEmpty { .. }),
        "{err}"
    );
}
