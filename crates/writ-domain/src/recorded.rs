use uuid::Uuid;

/// An event as read back from the log: what projections apply and readers see.
///
/// It lives in the domain kit, beside the events it carries, so that anything can produce
/// one: the engine reading its log, a follower reading a leader, a test building a read
/// model by hand.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordedEvent {
    /// Its position in the global log, from 1, without gaps.
    pub position: u64,
    /// The stream.
    pub stream: String,
    /// Its version in the stream, from 1, without gaps.
    pub version: u64,
    /// The event type.
    pub event_type: String,
    /// The body, a JSON object.
    pub data: Vec<u8>,
    /// The command that recorded it: the event's `causationId`.
    pub command_id: Uuid,
    /// The chain that command belongs to: the id of the command that started it.
    pub correlation_id: Uuid,
    /// When that command was recorded (ms since the Unix epoch).
    pub recorded_at_ms: u64,
}
