use uuid::Uuid;

/// Everything a handler may know about a command beyond its payload.
///
/// Handlers must take time and fresh ids from here, never from the clock or a random
/// source: a command re-run after a crash must produce the very same events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    /// The id the client chose for the command.
    pub command_id: Uuid,
    /// When the command was recorded in the command log, in milliseconds since the Unix
    /// epoch. Never decreases from one command to the next.
    pub recorded_at_ms: u64,
    /// The command's sequence number in the command log (0-based, gap-free).
    pub sequence: u64,
    /// The id of the command that started the chain this command belongs to: its own id
    /// for a client's command, the first command's for one a process issued or a timer
    /// fired. Every event records it as its `correlationId`.
    pub correlation_id: Uuid,
}

impl Envelope {
    /// A fresh id derived deterministically from the command id and `n`: the same command
    /// and `n` always give the same id. Different `n` (or commands) give different ids with
    /// overwhelming probability: 122 bits of a well-mixed hash survive the UUID version and
    /// variant bits, so a collision is as likely as between two random v4 ids.
    pub fn derive_id(&self, n: u32) -> Uuid {
        derive_id(self.command_id, u64::from(n))
    }
}

/// An id derived deterministically from `seed` and `n` (see [`Envelope::derive_id`]):
/// the same inputs always give the same UUID (version 8), different ones differ with the
/// probability of two random v4 ids colliding.
pub fn derive_id(seed: Uuid, n: u64) -> Uuid {
    let id = seed.as_u128();
    let hi = mix(id as u64 ^ mix(n));
    let lo = mix((id >> 64) as u64 ^ hi);
    Uuid::new_v8(((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes())
}

/// FNV-1a (64 bits) of a string: a stable number for a name, to mix into derived ids.
pub(crate) fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64's finalizer: a fixed, well-distributed 64-bit mix.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_deterministic_and_distinct() {
        let envelope = Envelope {
            command_id: Uuid::from_u128(7),
            recorded_at_ms: 1,
            sequence: 0,
            correlation_id: Uuid::from_u128(7),
        };
        assert_eq!(envelope.derive_id(1), envelope.derive_id(1));
        assert_ne!(envelope.derive_id(1), envelope.derive_id(2));
        let other = Envelope {
            command_id: Uuid::from_u128(8),
            ..envelope
        };
        assert_ne!(envelope.derive_id(1), other.derive_id(1));
        assert_eq!(envelope.derive_id(1).get_version_num(), 8);
    }
}
