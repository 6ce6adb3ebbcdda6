use uuid::Uuid;

/// An event as read back from the log: what projections apply and readers see.
///
/// It lives in the domain kit, beside the events it carries, so that anything can produce
/// one: the engine reading its log, a follower reading a leader, a test building a read
/// model by hand.
///
/// Readers get it in its type's current shape: `data` is in schema version
/// `schema_version`, upcast from the `recorded_schema_version` it was recorded with when
/// an older build recorded it. [`RecordedEvent::default`] is an event at version 1 in
/// both, for tests that build events by hand (`..RecordedEvent::default()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Its position in the global log, from 1, without gaps.
    pub position: u64,
    /// The stream.
    pub stream: String,
    /// Its version in the stream, from 1, without gaps.
    pub version: u64,
    /// The event type.
    pub event_type: String,
    /// The body, a JSON object, in schema version `schema_version`.
    pub data: Vec<u8>,
    /// The schema version of `data`: its type's current version, once upcast.
    pub schema_version: u32,
    /// The schema version the event was recorded with.
    pub recorded_schema_version: u32,
    /// The command that recorded it: the event's `causationId`.
    pub command_id: Uuid,
    /// The chain that command belongs to: the id of the command that started it.
    pub correlation_id: Uuid,
    /// When that command was recorded (ms since the Unix epoch).
    pub recorded_at_ms: u64,
}

impl Default for RecordedEvent {
    fn default() -> Self {
        Self {
            position: 0,
            stream: String::new(),
            version: 0,
            event_type: String::new(),
            data: Vec::new(),
            schema_version: 1,
            recorded_schema_version: 1,
            command_id: Uuid::nil(),
            correlation_id: Uuid::nil(),
            recorded_at_ms: 0,
        }
    }
}
