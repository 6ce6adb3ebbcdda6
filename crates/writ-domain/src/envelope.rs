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
}

impl Envelope {
    /// A fresh id derived deterministically from the command id and `n`: the same command
    /// and `n` always give the same id. Different `n` (or commands) give different ids with
    /// overwhelming probability: 122 bits of a well-mixed hash survive the UUID version and
    /// variant bits, so a collision is as likely as between two random v4 ids.
    pub fn derive_id(&self, n: u32) -> Uuid {
        let id = self.command_id.as_u128();
        let hi = mix(id as u64 ^ mix(u64::from(n)));
        let lo = mix((id >> 64) as u64 ^ hi);
        Uuid::new_v8(((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes())
    }
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
