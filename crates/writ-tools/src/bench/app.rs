//! `writ bench http --app DIR`: the resources workload against a server that runs with
//! `--app DIR`, on the type `--type` (the users example's `users`: string properties
//! `name` and `email`, the email unique).
//!
//! - `mixed` (the default): `--users` creates first (each with its own email), then, of
//!   the commands after them, 50% creates of new users, 40% patches of a user's name
//!   (`PatchUser`, one RFC 6902 `replace`, round-robin over the first users) and 10%
//!   custom commands (`--custom`, `Activate`: each first user once, from the state a
//!   create leaves it in).
//! - one kind alone, to compare kinds: `create` and `create-rule` (all creates: the type
//!   must have no rule on `Create`, or one, so that "creates with a rule" are measured
//!   against plain ones on an app without `rules/`), `patch` and `custom` (after the
//!   `--users` creates, patches or custom commands only).
//!
//! Commands go through `POST /update` (or `/ws`) and count as the tickets workload's do:
//! at the acknowledgement (or with `--until outcome` at the final status), every outcome
//! checked, then a few documents read back (`GET /T/{id}`): the last name patched, the
//! state the custom command left.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use hyper::{Method, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use super::http::{Commands, HttpArgs, Run, Tally, drive, report};
use crate::client::{Client, Target};

/// Which commands `--app` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mix {
    /// Creates first, then 50% creates, 40% patches, 10% custom commands.
    Mixed,
    /// Creates only, on a type without a rule on `Create`.
    Create,
    /// Creates only, on a type with a rule on `Create`.
    CreateRule,
    /// Creates first, then patches of a name only.
    Patch,
    /// Creates first, then one custom command per created document.
    Custom,
}

/// The share of commands that may fail before the bench reports an error, in percent: the
/// workload is built so that none should (unique emails, each custom command once).
const FAILED_PERCENT_MAX: u64 = 5;

/// How long the read-back waits for the read model to show a document's last change.
const READ_BACK_WAIT: Duration = Duration::from_secs(10);

/// What one command of the workload does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Creates document `n`.
    Create(u64),
    /// Patches document `n`'s name.
    Patch(u64),
    /// Sends the custom command to document `n`.
    Custom(u64),
}

/// The resources workload: ids, bodies and what the documents should hold afterwards.
#[derive(Debug)]
pub(crate) struct AppWorkload {
    base: u128,
    /// Unique to this run: its documents' ids and emails carry it.
    tag: String,
    title: String,
    type_name: String,
    custom: String,
    mix: Mix,
    users: u64,
    commands: u64,
}

impl AppWorkload {
    /// The workload of `args` over the app directory `dir`, checked against it: the type
    /// exists with `name` and `email`, the custom command is one of its own, and the mix
    /// fits (`create` without a rule on Create, `create-rule` with one; enough users).
    pub(crate) fn new(args: &HttpArgs, dir: &Path) -> Result<Self, String> {
        let app = writ_resources::load(dir).map_err(|e| e.to_string())?;
        let ty = app.resource_type(&args.type_name).ok_or_else(|| {
            format!(
                "{}: no type {:?} (it has {})",
                dir.display(),
                args.type_name,
                app.types()
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        for field in ["name", "email"] {
            if ty.schema()["properties"][field]["type"] != "string" {
                return Err(format!(
                    "{}: this workload writes a string {field:?}, which the schema does not have",
                    ty.file().display()
                ));
            }
        }
        let create_rule = ty.rules().applies_to("Create");
        match args.mix {
            Mix::Create if create_rule => {
                return Err(format!(
                    "--mix create measures plain creates, but {} has a rule on Create: use --mix create-rule, or an app without it (crates/writ-tools/bench-apps/users-without-rules is examples/users without its rules)",
                    ty.file().display()
                ));
            }
            Mix::CreateRule if !create_rule => {
                return Err(format!(
                    "--mix create-rule measures creates with a rule, but {} has none on Create",
                    ty.file().display()
                ));
            }
            Mix::Mixed | Mix::Custom if !ty.custom_commands().contains(&args.custom) => {
                return Err(format!(
                    "{}: no custom command {:?} (it has {:?})",
                    ty.file().display(),
                    args.custom,
                    ty.custom_commands()
                ));
            }
            _ => {}
        }
        let base = Uuid::new_v4().as_u128();
        let workload = Self {
            base,
            tag: format!("b{:012x}", base >> 80),
            title: ty.title().to_owned(),
            type_name: ty.name().to_owned(),
            custom: args.custom.clone(),
            mix: args.mix,
            users: match args.mix {
                Mix::Create | Mix::CreateRule => 0,
                _ => args.users,
            },
            commands: args.commands,
        };
        let main = workload.commands.saturating_sub(workload.users);
        let customs = match args.mix {
            Mix::Custom => main,
            Mix::Mixed => main / 10,
            _ => 0,
        };
        if matches!(args.mix, Mix::Mixed | Mix::Patch | Mix::Custom)
            && (workload.users == 0 || workload.commands <= workload.users)
        {
            return Err("--commands must be above --users, and --users at least 1".into());
        }
        if customs > workload.users {
            return Err(format!(
                "{customs} custom commands need as many documents, each takes one: raise --users to {customs} or lower --commands"
            ));
        }
        Ok(workload)
    }

    /// Commands below this are the creates everything else addresses.
    pub(crate) fn setup(&self) -> u64 {
        self.users
    }

    fn kind(&self, i: u64) -> Kind {
        if i < self.users {
            return Kind::Create(i);
        }
        let j = i - self.users;
        match self.mix {
            Mix::Create | Mix::CreateRule => Kind::Create(i),
            Mix::Patch => Kind::Patch(j % self.users),
            Mix::Custom => Kind::Custom(j),
            Mix::Mixed => match j % 10 {
                0..=4 => Kind::Create(i),
                5..=8 => Kind::Patch(j % self.users),
                _ => Kind::Custom(j / 10),
            },
        }
    }

    fn document(&self, n: u64) -> String {
        format!("{}-{n}", self.tag)
    }

    fn name(n: u64, i: u64) -> String {
        format!("User {n} v{i}")
    }

    /// What document `n` should hold after the run: its name and whether the custom
    /// command reached it.
    fn expected(&self, n: u64) -> (String, bool) {
        let mut name = Self::name(n, n);
        let mut custom = false;
        for i in self.users..self.commands {
            match self.kind(i) {
                Kind::Patch(m) if m == n => name = Self::name(n, i),
                Kind::Custom(m) if m == n => custom = true,
                _ => {}
            }
        }
        (name, custom)
    }
}

impl Commands for AppWorkload {
    fn id(&self, i: u64) -> Uuid {
        Uuid::from_u128(self.base ^ u128::from(i))
    }

    fn index(&self, id: Uuid) -> Option<u64> {
        u64::try_from(id.as_u128() ^ self.base)
            .ok()
            .filter(|i| *i < self.commands)
    }

    fn write_command(&self, out: &mut Vec<u8>, i: u64) {
        out.clear();
        let id = self.id(i).hyphenated();
        let title = &self.title;
        let result = match self.kind(i) {
            Kind::Create(n) => write!(
                out,
                r#"{{"id":"{id}","command":"Create{title}","payload":{{"id":"{}","document":{{"name":"{}","email":"u{n}-{}@bench.example"}}}}}}"#,
                self.document(n),
                Self::name(n, n),
                self.tag
            ),
            Kind::Patch(n) => write!(
                out,
                r#"{{"id":"{id}","command":"Patch{title}","payload":{{"id":"{}","patch":[{{"op":"replace","path":"/name","value":"{}"}}]}}}}"#,
                self.document(n),
                Self::name(n, i)
            ),
            Kind::Custom(n) => write!(
                out,
                r#"{{"id":"{id}","command":"{}{title}","payload":{{"id":"{}"}}}}"#,
                self.custom,
                self.document(n)
            ),
        };
        result.expect("writing to a Vec never fails");
    }
}

/// Runs the workload, reads a few documents back, prints the lines.
pub(crate) async fn bench(
    args: HttpArgs,
    target: Target,
    workload: AppWorkload,
) -> Result<(), String> {
    let workload = Arc::new(workload);
    let mut run: Run = drive(&args, &target, Arc::clone(&workload), workload.setup()).await?;
    let checked = check_documents(&mut run.client, &workload, &mut run.tally).await?;
    let failed_max = args.commands * FAILED_PERCENT_MAX / 100;
    report(
        &args,
        &target,
        run,
        &format!(
            "app={} type={} mix={:?} users={}",
            args.app.as_deref().unwrap_or(Path::new("")).display(),
            workload.type_name,
            workload.mix,
            workload.users
        ),
        &format!("documents_checked={checked}"),
        failed_max,
    )
}

/// Reads back a few documents: the name of their last patch, the custom command's mark
/// (the document changed from its created state, seen as a field that differs).
async fn check_documents(
    client: &mut Client,
    workload: &AppWorkload,
    tally: &mut Tally,
) -> Result<usize, String> {
    let last = workload.commands - 1;
    let mut sample: Vec<u64> = if workload.users > 0 {
        vec![0, workload.users / 2, workload.users - 1]
    } else {
        vec![0, last / 2, last]
    };
    sample.dedup();
    for &n in &sample {
        let (name, custom) = workload.expected(n);
        let path = format!("/{}/{}", workload.type_name, workload.document(n));
        let deadline = tokio::time::Instant::now() + READ_BACK_WAIT;
        loop {
            let (status, body) = client.send(Method::GET, &path, None).await?;
            let document: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let named = status == StatusCode::OK && document["name"] == name.as_str();
            // The users example's Activate moves `status` off its initial `pending`.
            let moved = document["status"].as_str().is_some_and(|s| s != "pending");
            if named && (!custom || moved || document.get("status").is_none()) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                tally.fail(format!(
                    "GET {path} answered {status} {document}, expected the name {name:?}{}",
                    if custom {
                        " and the custom command applied"
                    } else {
                        ""
                    }
                ));
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(sample.len())
}
