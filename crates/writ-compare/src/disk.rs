//! The file system under a data directory: its type, and a refusal of one whose sync does
//! nothing.
//!
//! On a memory file system (tmpfs, ramfs) `fsync` and `fdatasync` return at once: nothing
//! reaches a disk, so a "durable" outcome costs nothing and a comparison with PostgreSQL
//! (which syncs its WAL to a real disk) would mean nothing. Both modes refuse such a data
//! directory ([`refuse_volatile`]) before anything runs.
//!
//! # How the type is found
//!
//! The type is the one the kernel's mount table gives for the mount the directory is on:
//! `/proc/self/mounts` is read, and the mount point that is the longest prefix (whole path
//! components) of the directory's canonical path wins; of stacked mounts on one point, the
//! last listed (the one on top). This is what `statfs`'s `f_type` would tell, without its
//! cost here: calling `statfs` needs `libc` and `unsafe` (the workspace denies
//! `unsafe_code`) or a new crate (`nix`, `rustix`), and `stat -f -c %T` would start a
//! process and depend on coreutils' table of names. Reading the mount table is plain file
//! I/O, and names the type as `mount` does (`ext4`, `xfs`, `tmpfs`). Where the table cannot
//! be read (not Linux), the type is unknown: the run goes on and says so.

use std::io;
use std::path::{Component, Path, PathBuf};

use crate::CompareError;

/// File system types whose `fsync` does nothing: they live in memory.
pub const VOLATILE_FILESYSTEMS: [&str; 3] = ["tmpfs", "ramfs", "devtmpfs"];

/// The kernel's mount table for this process.
const MOUNTS: &str = "/proc/self/mounts";

/// The type of the file system `path` is on (or would be on, when it does not exist yet:
/// its nearest existing ancestor's), from the mount table. `None` when the table cannot be
/// read or has no mount for it.
pub fn filesystem_type(path: &Path) -> Option<String> {
    let table = std::fs::read_to_string(MOUNTS).ok()?;
    let path = canonical_existing(path).ok()?;
    mount_of(&table, &path).map(|(_, kind)| kind)
}

/// Refuses `dir` when it is on a file system of [`VOLATILE_FILESYSTEMS`]; otherwise returns
/// its type (`None`: could not be told). `dir` need not exist yet.
pub fn refuse_volatile(dir: &Path) -> Result<Option<String>, CompareError> {
    let kind = filesystem_type(dir);
    match kind {
        Some(kind) if VOLATILE_FILESYSTEMS.contains(&kind.as_str()) => {
            Err(CompareError::VolatileFilesystem {
                path: dir.to_owned(),
                filesystem: kind,
            })
        }
        _ => Ok(kind),
    }
}

/// The mount point and type of the mount `path` (canonical, absolute) is on, in a mount
/// table in the format of `/proc/mounts`: the longest mount point that is a prefix of
/// `path` in whole components; of equal ones, the last listed.
pub fn mount_of(table: &str, path: &Path) -> Option<(PathBuf, String)> {
    let mut best: Option<(PathBuf, String)> = None;
    for line in table.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(_source), Some(point), Some(kind)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let point = PathBuf::from(unescape(point));
        if !path.starts_with(&point) {
            continue;
        }
        let depth = point.components().count();
        if best
            .as_ref()
            .is_none_or(|(b, _)| depth >= b.components().count())
        {
            best = Some((point, kind.to_owned()));
        }
    }
    best
}

/// A mount table field with its octal escapes (`\040` for a space, `\011`, `\012`, `\134`)
/// decoded.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The canonical path of `path`, or, when it does not exist, of its nearest existing
/// ancestor with the missing components appended.
fn canonical_existing(path: &Path) -> io::Result<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut missing = Vec::new();
    let mut existing = absolute.as_path();
    loop {
        match std::fs::canonicalize(existing) {
            Ok(mut canonical) => {
                for component in missing.iter().rev() {
                    canonical.push(component);
                }
                return Ok(canonical);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let Some(parent) = existing.parent() else {
                    return Err(e);
                };
                if let Some(Component::Normal(name)) = existing.components().next_back() {
                    missing.push(name.to_owned());
                }
                existing = parent;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether two paths are on the same device; `None` when either cannot be inspected.
pub fn same_device(a: &Path, b: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let a = std::fs::metadata(a).ok()?;
    let b = std::fs::metadata(b).ok()?;
    Some(a.dev() == b.dev())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
/dev/vda / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid 0 0
tmpfs /dev/shm tmpfs rw,relatime 0 0
/dev/vdb /data xfs rw 0 0
tmpfs /data tmpfs rw 0 0
/dev/vdc /data/disk\\040two ext4 rw 0 0
/dev/vdd /database ext4 rw 0 0
";

    #[test]
    fn the_longest_mount_point_in_whole_components_wins() {
        let cases = [
            ("/", "/", "ext4"),
            ("/home/ann", "/", "ext4"),
            ("/dev/shm/writ", "/dev/shm", "tmpfs"),
            // Stacked on one point: the last listed is on top.
            ("/data/x", "/data", "tmpfs"),
            // An escaped space in the mount point.
            ("/data/disk two/x", "/data/disk two", "ext4"),
            ("/data/disk", "/data", "tmpfs"),
            // `/data` is not a prefix of `/database` in whole components.
            ("/database/x", "/database", "ext4"),
            ("/datab", "/", "ext4"),
        ];
        for (path, point, kind) in cases {
            let found = mount_of(TABLE, Path::new(path));
            assert_eq!(
                found,
                Some((PathBuf::from(point), kind.to_owned())),
                "{path}"
            );
        }
        assert_eq!(mount_of("", Path::new("/x")), None);
    }

    #[test]
    fn escapes_decode_and_stray_backslashes_stay() {
        assert_eq!(unescape("a\\040b\\011c\\134d"), "a b\tc\\d");
        assert_eq!(unescape("a\\04"), "a\\04");
        assert_eq!(unescape("a\\9999"), "a\\9999");
        assert_eq!(unescape("\\777"), "\\777");
    }

    #[test]
    fn a_missing_directory_is_on_its_nearest_ancestor() {
        let base = std::env::temp_dir();
        let missing = base.join("writ-compare-not-there").join("a").join("b");
        let canonical = canonical_existing(&missing).unwrap();
        assert!(
            canonical.ends_with("writ-compare-not-there/a/b"),
            "{canonical:?}"
        );
        assert!(canonical.starts_with(std::fs::canonicalize(&base).unwrap()));
    }
}
