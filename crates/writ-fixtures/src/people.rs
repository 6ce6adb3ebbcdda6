//! A domain whose event changed shape, in two builds: what the tests of event schema
//! versions run, first one build on a data directory, then the other on the same one.
//!
//! People live on streams `person-{personId}`. In the [`before`] build, `NamePerson`
//! records `PersonNamed {personId, name}` at schema version 1. In the [`after`] build the
//! name is split: `PersonNamed {personId, first, last}` is at version 2, version 1 reads
//! through an upcast (the name's first word is `first`, the rest `last`), `NamePerson`
//! takes `first` and `last` in its version 2 (version 1 is upcast the same way), and a new
//! command, `GreetPerson`, decides from the state's `first` name: it records
//! `PersonGreeted {personId, greeting: "Hello, {first}"}`, or is rejected with
//! `person_not_found` when the person was never named. The after build also has a read
//! model, `people`, with the query `getPerson?id=` (version 1): `{"id", "first", "last",
//! "greetings"}`, or `404`.
//!
//! ```
//! use writ_domain::EventSet;
//! use writ_fixtures::people::{after, before};
//!
//! let mut v1 = Vec::new();
//! before::PeopleEvent::PersonNamed(before::PersonNamed {
//!     person_id: "p-1".into(),
//!     name: "Ada King Lovelace".into(),
//! })
//! .encode_data(&mut v1)
//! .unwrap();
//! // What the before build recorded reads in the after build's shape.
//! let read = after::PeopleEvent::decode_version("PersonNamed", 1, &v1).unwrap();
//! let after::PeopleEvent::PersonNamed(named) = read else { panic!("{read:?}") };
//! assert_eq!((named.first.as_str(), named.last.as_str()), ("Ada", "King Lovelace"));
//! ```

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use writ_domain::{Decision, Domain, Refusal, Rejection};

/// The domain's name in both builds.
pub const NAME: &str = "people";
/// Its streams' prefix in both builds.
pub const STREAM_PREFIX: &str = "person-";

/// `GreetPerson` of a person never named.
pub const PERSON_NOT_FOUND: &str = "person_not_found";

/// The stream of person `person_id`.
pub fn stream_name(person_id: &str) -> String {
    format!("{STREAM_PREFIX}{person_id}")
}

/// The build before the name was split: `PersonNamed` at schema version 1.
pub mod before {
    use super::*;

    /// Names a person (again).
    #[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct NamePerson {
        /// The person.
        pub person_id: String,
        /// The whole name.
        pub name: String,
    }

    /// A person was named: schema version 1.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PersonNamed {
        /// The person.
        pub person_id: String,
        /// The whole name.
        pub name: String,
    }

    writ_domain::event_set! {
        /// The before build's events.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum PeopleEvent {
            /// See [`PersonNamed`].
            PersonNamed(PersonNamed),
        }
    }

    /// The before build's domain.
    #[derive(Debug)]
    pub struct People;

    impl Domain for People {
        const NAME: &'static str = NAME;
        const STREAM_PREFIXES: &'static [&'static str] = &[STREAM_PREFIX];
        type Command = NamePerson;
        type Event = PeopleEvent;
        /// The person's whole name.
        type State = Option<String>;

        fn commands() -> writ_domain::CommandCatalog<NamePerson> {
            writ_domain::CommandCatalog::new().command("NamePerson", 1, |c: NamePerson| c)
        }

        fn stream(command: &NamePerson) -> Cow<'_, str> {
            Cow::Owned(stream_name(&command.person_id))
        }

        fn evolve(state: &mut Option<String>, event: &PeopleEvent) {
            let PeopleEvent::PersonNamed(named) = event;
            *state = Some(named.name.clone());
        }

        fn decide(decision: &mut Decision<'_, Self>, c: &NamePerson) -> Result<(), Refusal> {
            decision.record(PeopleEvent::PersonNamed(PersonNamed {
                person_id: c.person_id.clone(),
                name: c.name.clone(),
            }));
            Ok(())
        }
    }
}

/// The build after the name was split: `PersonNamed` at schema version 2, version 1
/// upcast; `GreetPerson`; the `people` read model.
pub mod after {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};
    use writ_domain::EventSet;
    use writ_query::{ApplyError, Args, Projection, QueryCatalog, QueryError, ReadModelSpec};

    use super::*;

    /// `first` and `last` of a whole name: its first word, and the rest.
    pub fn split(name: &str) -> (String, String) {
        let (first, last) = name.split_once(' ').unwrap_or((name, ""));
        (first.to_owned(), last.to_owned())
    }

    /// Names a person (again), version 2.
    #[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct NamePerson {
        /// The person.
        pub person_id: String,
        /// The first name.
        pub first: String,
        /// The last name.
        pub last: String,
    }

    /// Greets a named person.
    #[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct GreetPerson {
        /// The person.
        pub person_id: String,
    }

    /// The after build's commands, in their newest form.
    #[derive(Debug, Clone)]
    pub enum PeopleCommand {
        /// See [`NamePerson`].
        NamePerson(NamePerson),
        /// See [`GreetPerson`].
        GreetPerson(GreetPerson),
    }

    /// A person was named: schema version 2.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PersonNamed {
        /// The person.
        pub person_id: String,
        /// The first name.
        pub first: String,
        /// The last name.
        pub last: String,
    }

    impl From<before::PersonNamed> for PersonNamed {
        fn from(v1: before::PersonNamed) -> Self {
            let (first, last) = split(&v1.name);
            Self {
                person_id: v1.person_id,
                first,
                last,
            }
        }
    }

    /// A person was greeted.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PersonGreeted {
        /// The person.
        pub person_id: String,
        /// What was said.
        pub greeting: String,
    }

    writ_domain::event_set! {
        /// The after build's events.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum PeopleEvent {
            /// See [`PersonNamed`]; version 1 held the whole name.
            PersonNamed(PersonNamed) version 2 {
                1 => |v1: before::PersonNamed| PersonNamed::from(v1),
            },
            /// See [`PersonGreeted`].
            PersonGreeted(PersonGreeted),
        }
    }

    /// A person's state: the name, once named.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Person {
        /// The first name ("" before the person is named).
        pub first: String,
        /// The last name.
        pub last: String,
    }

    /// The after build's domain.
    #[derive(Debug)]
    pub struct People;

    impl Domain for People {
        const NAME: &'static str = NAME;
        const STREAM_PREFIXES: &'static [&'static str] = &[STREAM_PREFIX];
        type Command = PeopleCommand;
        type Event = PeopleEvent;
        type State = Person;

        fn commands() -> writ_domain::CommandCatalog<PeopleCommand> {
            writ_domain::CommandCatalog::new()
                .command("NamePerson", 1, |v1: before::NamePerson| {
                    let (first, last) = split(&v1.name);
                    PeopleCommand::NamePerson(NamePerson {
                        person_id: v1.person_id,
                        first,
                        last,
                    })
                })
                .command("NamePerson", 2, PeopleCommand::NamePerson)
                .command("GreetPerson", 1, PeopleCommand::GreetPerson)
        }

        fn stream(command: &PeopleCommand) -> Cow<'_, str> {
            let (PeopleCommand::NamePerson(NamePerson { person_id, .. })
            | PeopleCommand::GreetPerson(GreetPerson { person_id })) = command;
            Cow::Owned(stream_name(person_id))
        }

        fn evolve(person: &mut Person, event: &PeopleEvent) {
            if let PeopleEvent::PersonNamed(named) = event {
                person.first.clone_from(&named.first);
                person.last.clone_from(&named.last);
            }
        }

        fn decide(decision: &mut Decision<'_, Self>, c: &PeopleCommand) -> Result<(), Refusal> {
            match c {
                PeopleCommand::NamePerson(c) => {
                    decision.record(PeopleEvent::PersonNamed(PersonNamed {
                        person_id: c.person_id.clone(),
                        first: c.first.clone(),
                        last: c.last.clone(),
                    }));
                }
                PeopleCommand::GreetPerson(c) => {
                    let first = &decision.state().first;
                    if first.is_empty() {
                        return Err(Rejection::new(PERSON_NOT_FOUND, "no such person").into());
                    }
                    let greeting = format!("Hello, {first}");
                    decision.record(PeopleEvent::PersonGreeted(PersonGreeted {
                        person_id: c.person_id.clone(),
                        greeting,
                    }));
                }
            }
            Ok(())
        }
    }

    /// The `people` projection: every person's name and how often they were greeted.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct PeopleProjection;

    /// A person in the read model.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct PersonView {
        /// The name.
        pub person: Person,
        /// How many `PersonGreeted`.
        pub greetings: u64,
    }

    impl Projection for PeopleProjection {
        type State = BTreeMap<String, PersonView>;
        type Decoded = PeopleEvent;

        fn name(&self) -> &'static str {
            "people"
        }

        fn version(&self) -> u32 {
            1
        }

        fn event_types(&self) -> &[&'static str] {
            PeopleEvent::EVENT_TYPES
        }

        fn initial_state(&self) -> Self::State {
            BTreeMap::new()
        }

        fn decode(&self, event: &writ_query::RecordedEvent) -> Result<PeopleEvent, ApplyError> {
            PeopleEvent::decode(&event.event_type, &event.data).map_err(|e| {
                ApplyError::InvalidData {
                    detail: e.to_string(),
                }
            })
        }

        fn apply(
            &self,
            people: &mut Self::State,
            _event: &writ_query::RecordedEvent,
            decoded: PeopleEvent,
        ) -> Result<(), ApplyError> {
            match decoded {
                PeopleEvent::PersonNamed(named) => {
                    let view = people.entry(named.person_id).or_default();
                    view.person = Person {
                        first: named.first,
                        last: named.last,
                    };
                }
                PeopleEvent::PersonGreeted(greeted) => {
                    people.entry(greeted.person_id).or_default().greetings += 1;
                }
            }
            Ok(())
        }
    }

    fn get_person(
        people: &BTreeMap<String, PersonView>,
        args: &Args<'_>,
    ) -> Result<Value, QueryError> {
        let id = args.required_str("id")?;
        let view = people
            .get(id)
            .ok_or_else(|| QueryError::not_found(format!("there is no person `{id}`")))?;
        Ok(json!({
            "id": id,
            "first": view.person.first,
            "last": view.person.last,
            "greetings": view.greetings,
        }))
    }

    /// The `people` read model: the projection and `getPerson` (query API version 1).
    pub fn read_model() -> ReadModelSpec {
        let mut catalog = QueryCatalog::new();
        let _ = catalog.version(1).query("getPerson", &["id"], get_person);
        ReadModelSpec::new(PeopleProjection, catalog)
    }
}
