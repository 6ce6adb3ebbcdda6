//! A store on the real file system for the tests of `writ backup` and `writ verify`: the
//! tickets domain on an engine with small segments, so that a few thousand commands make
//! several of them.

#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};

use uuid::Uuid;
use writ_domain::model::domain;
use writ_engine::{CommandState, Engine, EngineOptions, Registry, Submission, Submitted};
use writ_log::LogOptions;

/// A fresh directory under the system's temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "writ-tools-{name}-{}-{}",
            std::process::id(),
            Uuid::new_v4()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn registry() -> Registry {
    Registry::builder()
        .domain(domain::<writ_tickets::Tickets>())
        .build()
        .unwrap()
}

/// Segments of 128 KiB: about 500 commands each.
pub fn options() -> EngineOptions {
    EngineOptions {
        command_bytes_max: 16 << 10,
        timer_ops_bytes_max: 16 << 10,
        log: LogOptions {
            segment_bytes: 128 << 10,
            record_bytes_max: 64 << 10,
            preallocate: true,
            ..LogOptions::default()
        },
        ..EngineOptions::default()
    }
}

pub fn open(dir: &Path) -> Engine {
    Engine::open_dir(dir, registry(), options()).unwrap().0
}

/// Submits `count` `OpenTicket`s numbered from `first`, 64 at a time, and waits for each
/// outcome; returns their ids, all acknowledged and succeeded.
pub fn open_tickets(engine: &Engine, first: u64, count: u64) -> Vec<Uuid> {
    let mut ids = Vec::new();
    let mut n = first;
    while n < first + count {
        let mut pending = Vec::new();
        for n in n..(n + 64).min(first + count) {
            let id = Uuid::new_v4();
            let payload =
                format!(r#"{{"ticketId":"t-{n}","title":"Ticket number {n}","reporter":"ann"}}"#);
            let submitted = engine
                .submit_command(&Submission {
                    id,
                    command: "OpenTicket",
                    version: None,
                    payload: payload.as_bytes(),
                    expected_version: None,
                })
                .unwrap();
            let Submitted::New(p) = submitted else {
                panic!("a fresh id is new")
            };
            pending.push(p);
        }
        for p in pending {
            let id = p.id();
            let status = p.blocking_outcome().unwrap();
            assert_eq!(status.state, CommandState::Succeeded);
            ids.push(id);
        }
        n += 64;
    }
    ids
}

/// Copies a directory tree (files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The journal's segment files, by first record.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir.join("journal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wlog"))
        .collect();
    names.sort();
    names
}

/// `journal/NAME` for a path in the journal.
pub fn journal_name(path: &Path) -> String {
    format!("journal/{}", path.file_name().unwrap().to_string_lossy())
}
