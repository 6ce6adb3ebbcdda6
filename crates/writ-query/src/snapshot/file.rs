//! The snapshot file: a header that says what state it holds and of which journal, the
//! projection's bytes, and a CRC32C over all of it. `docs/log-format.md` ("A read model
//! snapshot file") has the table.

use crate::snapshot::codec::{Reader, SnapshotError, Writer};
use crate::source::JournalMark;

/// The first 8 bytes of a snapshot file: `"WRITSNAP"`.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"WRITSNAP";

/// The version of the file's layout (not of the state inside, which is the projection's
/// snapshot format).
pub const SNAPSHOT_FILE_VERSION: u32 = 1;

/// The longest model name and build tag a file holds, in bytes.
pub const SNAPSHOT_NAME_BYTES_MAX: usize = 255;

/// Bytes of the fixed part before the model name: magic, file version, projection
/// version, snapshot format, position, journal mark.
const FIXED_BYTES: usize = 8 + 4 + 4 + 4 + 8 + JournalMark::BYTES;

/// What a snapshot file says of the state it holds: which code wrote it (model,
/// projection version, snapshot format, build) and where in which journal it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// The read model's name (its projection's).
    pub model: String,
    /// The projection's version.
    pub projection_version: u32,
    /// The projection's snapshot format
    /// ([`Projection::snapshot_format`](crate::Projection::snapshot_format)).
    pub format: u32,
    /// The build tag of the code that wrote it
    /// ([`SnapshotOptions::build`](crate::runtime::SnapshotOptions::build)), followed by
    /// `+` and the projection's code tag when it has one
    /// ([`Projection::code_tag`](crate::Projection::code_tag)).
    pub build: String,
    /// The global position the state holds: every event up to it, none after.
    pub position: u64,
    /// The journal at that position, as the source identified it.
    pub journal: JournalMark,
}

/// Why a file is not a snapshot this build reads: the first thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotFileError {
    /// Shorter than a header, or not starting with the magic: not a snapshot file.
    #[error("not a snapshot file")]
    NotSnapshot,
    /// A layout this build does not know (a newer build wrote it).
    #[error("snapshot file version {version}; this build reads {SNAPSHOT_FILE_VERSION}")]
    Version {
        /// The file's version.
        version: u32,
    },
    /// The CRC does not match: the file is torn or damaged.
    #[error("the snapshot file's checksum does not match")]
    Checksum,
    /// The CRC matches but a field is wrong (a name too long, a body length that is not
    /// the file's): written by broken code.
    #[error("invalid snapshot header: {0}")]
    Header(SnapshotError),
}

impl SnapshotHeader {
    /// The file: this header, `body`, and the CRC.
    pub fn encode(&self, body: &[u8]) -> Vec<u8> {
        assert!(
            self.model.len() <= SNAPSHOT_NAME_BYTES_MAX
                && self.build.len() <= SNAPSHOT_NAME_BYTES_MAX,
            "model names and build tags are checked before a snapshot is written"
        );
        let mut out = Writer::from_vec(Vec::with_capacity(
            FIXED_BYTES + 4 + self.model.len() + self.build.len() + 8 + body.len() + 4,
        ));
        out.raw(&SNAPSHOT_MAGIC);
        out.u32(SNAPSHOT_FILE_VERSION);
        out.u32(self.projection_version);
        out.u32(self.format);
        out.u64(self.position);
        out.raw(&self.journal.0);
        out.raw(&(self.model.len() as u16).to_le_bytes());
        out.raw(self.model.as_bytes());
        out.raw(&(self.build.len() as u16).to_le_bytes());
        out.raw(self.build.as_bytes());
        out.u64(body.len() as u64);
        out.raw(body);
        let crc = crc32c::crc32c(out.as_slice());
        out.u32(crc);
        out.into_vec()
    }

    /// Reads a file [`SnapshotHeader::encode`] wrote: its header and its body. Checks the
    /// magic, the version, the CRC, then every field; never panics.
    pub fn decode(file: &[u8]) -> Result<(Self, &[u8]), SnapshotFileError> {
        if file.len() < FIXED_BYTES + 2 + 2 + 8 + 4 || file[..8] != SNAPSHOT_MAGIC {
            return Err(SnapshotFileError::NotSnapshot);
        }
        let (content, crc) = file.split_at(file.len() - 4);
        let mut input = Reader::new(content);
        let header = |e| SnapshotFileError::Header(e);
        input.take(8).map_err(header)?;
        let version = input.u32().map_err(header)?;
        if version != SNAPSHOT_FILE_VERSION {
            return Err(SnapshotFileError::Version { version });
        }
        let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32c::crc32c(content) != crc {
            return Err(SnapshotFileError::Checksum);
        }
        let projection_version = input.u32().map_err(header)?;
        let format = input.u32().map_err(header)?;
        let position = input.u64().map_err(header)?;
        let mut journal = [0; JournalMark::BYTES];
        journal.copy_from_slice(input.take(JournalMark::BYTES).map_err(header)?);
        let model = name(&mut input).map_err(header)?;
        let build = name(&mut input).map_err(header)?;
        let body_len = input.u64().map_err(header)?;
        if body_len != input.remaining() as u64 {
            return Err(header(input.invalid("a body length other than the file's")));
        }
        let body = input.take(input.remaining()).map_err(header)?;
        Ok((
            Self {
                model,
                projection_version,
                format,
                build,
                position,
                journal: JournalMark(journal),
            },
            body,
        ))
    }
}

/// A u16 length and that many bytes of UTF-8, at most [`SNAPSHOT_NAME_BYTES_MAX`].
fn name(input: &mut Reader<'_>) -> Result<String, SnapshotError> {
    let len = input.take(2)?;
    let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
    if len > SNAPSHOT_NAME_BYTES_MAX {
        return Err(input.invalid("a name longer than 255 bytes"));
    }
    let bytes = input.take(len)?;
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| input.invalid("a name that is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> SnapshotHeader {
        SnapshotHeader {
            model: "counters".into(),
            projection_version: 2,
            format: 1,
            build: "0.1.0".into(),
            position: 1_000_000,
            journal: JournalMark([7; JournalMark::BYTES]),
        }
    }

    #[test]
    fn a_file_comes_back_with_its_header_and_body() {
        let file = header().encode(b"the state");
        let (decoded, body) = SnapshotHeader::decode(&file).unwrap();
        assert_eq!((decoded, body), (header(), &b"the state"[..]));
    }

    #[test]
    fn any_changed_byte_or_cut_is_refused() {
        let file = header().encode(b"the state");
        for at in 0..file.len() {
            let mut damaged = file.clone();
            damaged[at] ^= 0x20;
            assert!(SnapshotHeader::decode(&damaged).is_err(), "byte {at}");
        }
        for len in 0..file.len() {
            assert!(
                SnapshotHeader::decode(&file[..len]).is_err(),
                "cut at {len}"
            );
        }
        let mut newer = file.clone();
        newer[8] = 2;
        assert_eq!(
            SnapshotHeader::decode(&newer),
            Err(SnapshotFileError::Version { version: 2 })
        );
    }
}
