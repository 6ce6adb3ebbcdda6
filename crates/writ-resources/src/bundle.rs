//! An app's files in memory ([`AppFiles`]), read from a directory or from a bundle, and the
//! bundle format that `writ app pack` writes: one file, deterministic, with its digest.
//!
//! The loader ([`crate::load_files`]) reads only from an [`AppFiles`], so a directory and
//! the bundle packed from it are checked and served alike, and both have the same
//! [`AppFiles::digest`].
//!
//! # The bundle format (version 1)
//!
//! Bytes, in this order; every number is ASCII decimal without leading zeros:
//!
//! | Part | Bytes |
//! |------|-------|
//! | magic | `writ-app-bundle 1\n` |
//! | per file, by path (bytewise ascending) | `file {length} {path}\n`, then the `length` bytes of the file, then `\n` |
//! | end | `end {count} {sha256}\n`: the number of files and the SHA-256, 64 lowercase hex digits, of every byte before this line |
//!
//! A path is relative, `/`-separated, UTF-8, its first component one of [`APP_DIRS`],
//! every component non-empty and none `.` or `..`, no `\`, no control character, at most
//! [`PATH_BYTES_MAX`] bytes. The digest of an app is that SHA-256: the same files give the
//! same bytes and the same digest (no timestamps, no modes, no owners).
//!
//! Reading is strict: a bad magic, a header that is not exactly as above, a path out of
//! order or twice, a path that escapes the directory, a file that is also a directory, a
//! body shorter than its length, a wrong count or digest, or any byte after the end line is
//! refused with the byte offset of the fault ([`BundleError`]). Reading is bounded: at most
//! [`BUNDLE_BYTES_MAX`] bytes in all and [`FILES_MAX`] files, the same bounds a directory
//! is read within.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The first line of a bundle: the format and its version.
pub const MAGIC: &[u8] = b"writ-app-bundle 1\n";

/// The directories of an app that the loader reads, and so that a pack takes: files
/// elsewhere in the app directory (a README) are neither packed nor read.
pub const APP_DIRS: [&str; 6] = [
    "handlers",
    "machines",
    "migrations",
    "projections",
    "resources",
    "rules",
];

/// Most bytes of an app: of a bundle file, and of a directory's files with their headers
/// (as packed). An app is held whole in memory while it loads, so this is the memory a
/// load may take for the files themselves; schemas and scripts are far smaller.
pub const BUNDLE_BYTES_MAX: u64 = 64 << 20;

/// Most files of an app. Each is a few hundred bytes of bookkeeping beside its body.
pub const FILES_MAX: usize = 4_096;

/// Longest path of a file within an app, in bytes.
pub const PATH_BYTES_MAX: usize = 1_024;

/// Why a bundle, or an app directory as it is read into memory, was refused. Every variant
/// names the file; a bundle's faults name the byte offset. Nothing was loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The file or directory could not be read.
    #[error("{}: cannot read it: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The bundle is not one this build reads: pack the app again with this build.
    #[error("{}: at byte {offset}: {detail}", file.display())]
    Malformed {
        /// The bundle.
        file: PathBuf,
        /// Where, from 0.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// The bundle's digest is not the SHA-256 of its content: it was changed after it was
    /// packed (or damaged). Pack it again from the app directory.
    #[error("{}: at byte {offset}: the digest is {found}, but the content's SHA-256 is {computed}: the bundle was changed or damaged after it was packed", file.display())]
    Digest {
        /// The bundle.
        file: PathBuf,
        /// Where the end line begins.
        offset: u64,
        /// The digest the end line holds.
        found: String,
        /// The digest of the content.
        computed: String,
    },
    /// The app is beyond a bound ([`BUNDLE_BYTES_MAX`], [`FILES_MAX`], [`PATH_BYTES_MAX`]),
    /// or a directory holds a name a bundle cannot carry: make it smaller, or rename.
    #[error("{}: {detail}", path.display())]
    Bound {
        /// The file or directory at fault.
        path: PathBuf,
        /// Which bound, or what name.
        detail: String,
    },
}

/// The files of an app, in memory: relative paths (`resources/users.json`) to bytes, with
/// the name of where they came from (the directory or the bundle file), which messages
/// join to a path: `examples/users/resources/users.json`, `users.bundle/resources/users.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppFiles {
    origin: PathBuf,
    files: BTreeMap<String, Vec<u8>>,
    /// The [`APP_DIRS`] a directory has even without files in them (a bundle carries
    /// files only): the loader refuses a directory it does not serve, empty or not.
    empty_dirs: BTreeSet<&'static str>,
}

impl AppFiles {
    /// A file set of its own, named `origin` in messages. Refuses a path a bundle could
    /// not carry (see the module's notes), a file that is also a directory, and more than
    /// the bounds.
    pub fn new(origin: PathBuf, files: BTreeMap<String, Vec<u8>>) -> Result<Self, BundleError> {
        let bound = |detail: String| BundleError::Bound {
            path: origin.clone(),
            detail,
        };
        if files.len() > FILES_MAX {
            return Err(bound(format!(
                "{} files; an app holds at most {FILES_MAX}",
                files.len()
            )));
        }
        let mut dirs = BTreeSet::new();
        let mut total = MAGIC.len() as u64 + END_LINE_BYTES_MAX;
        for (path, body) in &files {
            check_path(path).map_err(|detail| bound(format!("{path:?}: {detail}")))?;
            for (at, _) in path.match_indices('/') {
                dirs.insert(&path[..at]);
            }
            total += header_bytes(path, body.len()) + body.len() as u64 + 1;
        }
        if let Some(path) = files.keys().find(|p| dirs.contains(p.as_str())) {
            return Err(bound(format!("{path:?} is both a file and a directory")));
        }
        if total > BUNDLE_BYTES_MAX {
            return Err(bound(format!(
                "{total} bytes packed; an app is at most {BUNDLE_BYTES_MAX}"
            )));
        }
        Ok(Self {
            origin,
            files,
            empty_dirs: BTreeSet::new(),
        })
    }

    /// The files of the app directory `dir` that the loader reads: every file under its
    /// [`APP_DIRS`], followed through symbolic links. Anything else in `dir` is left out.
    /// A directory of [`APP_DIRS`] without files is remembered (the loader refuses one it
    /// does not serve) but not packed; an empty directory deeper down is not kept.
    pub fn read_dir(dir: &Path) -> Result<Self, BundleError> {
        let read = |path: &Path, source| BundleError::Read {
            path: path.to_owned(),
            source,
        };
        if !dir.is_dir() {
            return Err(read(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
            ));
        }
        let mut files = BTreeMap::new();
        let mut total = 0u64;
        let mut present = BTreeSet::new();
        for sub in APP_DIRS {
            let path = dir.join(sub);
            if path.exists() {
                walk(dir, &path, sub.to_owned(), &mut files, &mut total)?;
                present.insert(sub);
            }
        }
        let mut app = Self::new(dir.to_owned(), files)?;
        app.empty_dirs = present.into_iter().filter(|d| !app.has_dir(d)).collect();
        Ok(app)
    }

    /// The app in the bundle file `file`; see the module's notes.
    pub fn read_bundle(file: &Path) -> Result<Self, BundleError> {
        let read = |source| BundleError::Read {
            path: file.to_owned(),
            source,
        };
        let length = std::fs::metadata(file).map_err(read)?.len();
        if length > BUNDLE_BYTES_MAX {
            return Err(BundleError::Bound {
                path: file.to_owned(),
                detail: format!("{length} bytes; a bundle is at most {BUNDLE_BYTES_MAX}"),
            });
        }
        let bytes = std::fs::read(file).map_err(read)?;
        Self::decode(file, &bytes)
    }

    /// A directory's files, or a bundle's: `path` is read as a bundle when it is a file.
    pub fn read(path: &Path) -> Result<Self, BundleError> {
        if path.is_file() {
            Self::read_bundle(path)
        } else {
            Self::read_dir(path)
        }
    }

    /// The app in bundle bytes, named `file` in messages; see the module's notes.
    pub fn decode(file: &Path, bytes: &[u8]) -> Result<Self, BundleError> {
        let malformed = |offset: usize, detail: String| BundleError::Malformed {
            file: file.to_owned(),
            offset: offset as u64,
            detail,
        };
        if bytes.len() as u64 > BUNDLE_BYTES_MAX {
            return Err(BundleError::Bound {
                path: file.to_owned(),
                detail: format!(
                    "{} bytes; a bundle is at most {BUNDLE_BYTES_MAX}",
                    bytes.len()
                ),
            });
        }
        if !bytes.starts_with(MAGIC) {
            return Err(malformed(
                0,
                format!(
                    "not a Writ app bundle: it does not begin with {:?} (make one with `writ app pack DIR`)",
                    String::from_utf8_lossy(MAGIC)
                ),
            ));
        }
        let mut at = MAGIC.len();
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut dirs: BTreeSet<String> = BTreeSet::new();
        let mut last: Option<String> = None;
        loop {
            let Some(end) = bytes[at..]
                .iter()
                .take(PATH_BYTES_MAX + 64)
                .position(|b| *b == b'\n')
            else {
                return Err(malformed(
                    at,
                    "a header line (`file LENGTH PATH` or `end COUNT SHA256`) without its end of line: the bundle is truncated or damaged".into(),
                ));
            };
            let line = std::str::from_utf8(&bytes[at..at + end])
                .map_err(|_| malformed(at, "a header line that is not UTF-8".into()))?;
            if let Some(rest) = line.strip_prefix("end ") {
                let (count, digest) = rest
                    .split_once(' ')
                    .ok_or_else(|| malformed(at, "the end line is `end COUNT SHA256`".into()))?;
                let count = number(count).ok_or_else(|| {
                    malformed(
                        at,
                        format!("the end line's count {count:?} is not a number"),
                    )
                })?;
                if count != files.len() as u64 {
                    return Err(malformed(
                        at,
                        format!(
                            "the end line counts {count} files, the bundle holds {}: it was cut or changed",
                            files.len()
                        ),
                    ));
                }
                let computed = hex(&Sha256::digest(&bytes[..at]));
                if digest != computed {
                    return Err(BundleError::Digest {
                        file: file.to_owned(),
                        offset: at as u64,
                        found: digest.to_owned(),
                        computed,
                    });
                }
                let after = at + end + 1;
                if after != bytes.len() {
                    return Err(malformed(
                        after,
                        format!("{} bytes after the end line", bytes.len() - after),
                    ));
                }
                return Self::new(file.to_owned(), files);
            }
            let Some(rest) = line.strip_prefix("file ") else {
                return Err(malformed(
                    at,
                    format!("expected `file LENGTH PATH` or `end COUNT SHA256`, found {line:?}"),
                ));
            };
            let (length, path) = rest
                .split_once(' ')
                .ok_or_else(|| malformed(at, "a file's header is `file LENGTH PATH`".into()))?;
            let length = number(length).ok_or_else(|| {
                malformed(at, format!("the file's length {length:?} is not a number"))
            })?;
            check_path(path).map_err(|detail| malformed(at, format!("{path:?}: {detail}")))?;
            match last.as_deref() {
                Some(previous) if previous == path => {
                    return Err(malformed(at, format!("{path:?} is in the bundle twice")));
                }
                Some(previous) if previous > path => {
                    return Err(malformed(
                        at,
                        format!("{path:?} comes after {previous:?}: paths are in ascending order"),
                    ));
                }
                _ => {}
            }
            if files.len() == FILES_MAX {
                return Err(malformed(at, format!("more than {FILES_MAX} files")));
            }
            let header_end = at + end + 1;
            let remaining = (bytes.len() - header_end) as u64;
            if length >= remaining {
                return Err(malformed(
                    at,
                    format!(
                        "{path:?} declares {length} bytes, and {remaining} remain with its end of line: the bundle is truncated"
                    ),
                ));
            }
            let body_end = header_end + length as usize;
            if bytes[body_end] != b'\n' {
                return Err(malformed(
                    body_end,
                    format!("{path:?}'s {length} bytes are not followed by an end of line"),
                ));
            }
            if dirs.contains(path) {
                return Err(malformed(
                    at,
                    format!("{path:?} is both a file and a directory"),
                ));
            }
            for (slash, _) in path.match_indices('/') {
                if files.contains_key(&path[..slash]) {
                    return Err(malformed(
                        at,
                        format!("{:?} is both a file and a directory", &path[..slash]),
                    ));
                }
                dirs.insert(path[..slash].to_owned());
            }
            files.insert(path.to_owned(), bytes[header_end..body_end].to_vec());
            last = Some(path.to_owned());
            at = body_end + 1;
        }
    }

    /// The bundle of these files: see the module's notes. The same files give the same
    /// bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.content();
        let digest = hex(&Sha256::digest(&out));
        let _ = writeln!(Text(&mut out), "end {} {digest}", self.files.len());
        out
    }

    /// The app's digest: the SHA-256 of its bundle's content (every byte before the end
    /// line), in lowercase hex. A directory and the bundle packed from it have the same.
    pub fn digest(&self) -> String {
        hex(&Sha256::digest(self.content()))
    }

    /// The SHA-256 of the files at `paths` (relative, as [`AppFiles::get`] takes them), in
    /// lowercase hex: over each path in the order given, its length and bytes, then `1`,
    /// the file's length (u64 little-endian) and bytes, or `0` when there is no such file.
    /// The same files give the same digest wherever they were read from (a directory or
    /// its bundle); a file added, removed or changed gives another. The read models'
    /// snapshots are tagged with it (see the `snapshot` module).
    pub fn digest_of(&self, paths: &[String]) -> String {
        digest_files(paths.iter().map(|path| (path.as_str(), self.get(path))))
    }

    /// Where the files came from: the directory or the bundle file.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// The path of the file `relative` as messages name it: the origin joined with it.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.origin.join(relative)
    }

    /// The bytes of the file at `relative` (`resources/users.json`), if there is one.
    pub fn get(&self, relative: &str) -> Option<&[u8]> {
        self.files.get(relative).map(Vec::as_slice)
    }

    /// Whether the directory `relative` (`handlers`) holds any file, or is one of
    /// [`APP_DIRS`] that a directory read has, empty.
    pub fn has_dir(&self, relative: &str) -> bool {
        if self.empty_dirs.contains(relative) {
            return true;
        }
        let prefix = format!("{relative}/");
        self.files
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(path, _)| path.starts_with(&prefix))
    }

    /// The entries of the directory `relative` (`resources`), by name order: each a name
    /// with its bytes when it is a file, or with `None` when it is a directory.
    pub fn list(&self, relative: &str) -> Vec<(&str, Option<&[u8]>)> {
        let prefix = format!("{relative}/");
        let mut entries: Vec<(&str, Option<&[u8]>)> = Vec::new();
        for (path, body) in self.files.range(prefix.clone()..) {
            let Some(rest) = path.strip_prefix(&prefix) else {
                break;
            };
            let entry = match rest.split_once('/') {
                Some((dir, _)) => (dir, None),
                None => (rest, Some(body.as_slice())),
            };
            if entries.last().is_none_or(|last| last.0 != entry.0) {
                entries.push(entry);
            }
        }
        entries
    }

    /// The relative paths of the files, in order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The bundle's bytes before its end line.
    fn content(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for (path, body) in &self.files {
            let _ = writeln!(Text(&mut out), "file {} {path}", body.len());
            out.extend_from_slice(body);
            out.push(b'\n');
        }
        out
    }
}

/// The longest end line: `end `, a count, a space, 64 digits, `\n`.
const END_LINE_BYTES_MAX: u64 = 4 + 20 + 1 + 64 + 1;

/// Bytes of a file's header line.
fn header_bytes(path: &str, length: usize) -> u64 {
    (format!("file {length} ").len() + path.len() + 1) as u64
}

/// Adds every file under `path` (named `relative`) to `files`.
fn walk(
    root: &Path,
    path: &Path,
    relative: String,
    files: &mut BTreeMap<String, Vec<u8>>,
    total: &mut u64,
) -> Result<(), BundleError> {
    let read = |source| BundleError::Read {
        path: path.to_owned(),
        source,
    };
    let bound = |detail: String| BundleError::Bound {
        path: path.to_owned(),
        detail,
    };
    if relative.len() > PATH_BYTES_MAX {
        return Err(bound(format!(
            "a path within the app is at most {PATH_BYTES_MAX} bytes"
        )));
    }
    let metadata = std::fs::metadata(path).map_err(read)?;
    if metadata.is_file() {
        if files.len() == FILES_MAX {
            return Err(bound(format!(
                "{} holds more than {FILES_MAX} files",
                root.display()
            )));
        }
        *total += metadata.len();
        if *total > BUNDLE_BYTES_MAX {
            return Err(bound(format!(
                "{} holds more than {BUNDLE_BYTES_MAX} bytes of files",
                root.display()
            )));
        }
        files.insert(relative, std::fs::read(path).map_err(read)?);
        return Ok(());
    }
    if !metadata.is_dir() {
        return Err(bound(
            "neither a file nor a directory: an app holds files only".into(),
        ));
    }
    let mut entries: Vec<std::ffi::OsString> = std::fs::read_dir(path)
        .map_err(read)?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(read)?;
    entries.sort();
    for name in entries {
        let child = path.join(&name);
        let Some(name) = name.to_str() else {
            return Err(BundleError::Bound {
                path: child,
                detail: "a name that is not UTF-8: an app's names are".into(),
            });
        };
        if let Err(detail) = check_component(name) {
            return Err(BundleError::Bound {
                path: child,
                detail,
            });
        }
        walk(root, &child, format!("{relative}/{name}"), files, total)?;
    }
    Ok(())
}

/// Why `path` is not one a bundle may hold, if it is not.
fn check_path(path: &str) -> Result<(), String> {
    if path.len() > PATH_BYTES_MAX {
        return Err(format!(
            "a path within the app is at most {PATH_BYTES_MAX} bytes"
        ));
    }
    if path.starts_with('/') {
        return Err("an absolute path: a bundle's paths are within the app".into());
    }
    let first = path.split('/').next().unwrap_or_default();
    if !APP_DIRS.contains(&first) {
        return Err(format!(
            "not within one of the app's directories ({})",
            APP_DIRS.join(", ")
        ));
    }
    if !path.contains('/') {
        return Err("a directory of the app, not a file within it".into());
    }
    path.split('/').try_for_each(check_component)
}

/// Why `name` is not a path component a bundle may hold, if it is not.
fn check_component(name: &str) -> Result<(), String> {
    match name {
        "" => Err("an empty path component".into()),
        "." | ".." => Err(format!(
            "{name:?}: a path component may not escape or name the directory"
        )),
        _ if name.contains(['\\', '/']) || name.chars().any(char::is_control) => Err(format!(
            "{name:?}: no backslash, slash or control character in a name"
        )),
        _ => Ok(()),
    }
}

/// A canonical decimal number: digits, no leading zero (but `0` itself).
fn number(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// Lowercase hex.
/// [`AppFiles::digest_of`] of paths with their bytes (`None`: no such file).
pub(crate) fn digest_files<'a>(
    files: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> String {
    let mut sha = Sha256::new();
    for (path, body) in files {
        sha.update((path.len() as u64).to_le_bytes());
        sha.update(path.as_bytes());
        match body {
            Some(body) => {
                sha.update([1]);
                sha.update((body.len() as u64).to_le_bytes());
                sha.update(body);
            }
            None => sha.update([0]),
        }
    }
    hex(&sha.finalize())
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `write!` into a byte vector.
struct Text<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Text<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> AppFiles {
        let mut files = BTreeMap::new();
        files.insert("resources/users.json".to_owned(), b"{\"a\": 1}\n".to_vec());
        files.insert("rules/users.json".to_owned(), b"[]".to_vec());
        files.insert("machines/users.json".to_owned(), Vec::new());
        AppFiles::new("app".into(), files).unwrap()
    }

    fn decode(bytes: &[u8]) -> Result<AppFiles, String> {
        AppFiles::decode(Path::new("app.bundle"), bytes).map_err(|e| e.to_string())
    }

    /// Rewrites the end line so that the digest matches the (tampered) content.
    fn seal(content: &[u8], count: usize) -> Vec<u8> {
        let mut out = content.to_vec();
        out.extend_from_slice(
            format!("end {count} {}\n", hex(&Sha256::digest(content))).as_bytes(),
        );
        out
    }

    #[test]
    fn a_bundle_round_trips_and_its_digest_is_its_contents() {
        let app = app();
        let bytes = app.encode();
        let back = decode(&bytes).unwrap();
        assert_eq!(back.files, app.files);
        assert_eq!(back.digest(), app.digest());
        assert_eq!(bytes, back.encode(), "the same files give the same bytes");
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("writ-app-bundle 1\nfile 0 machines/users.json\n\nfile 9 resources/users.json\n{\"a\": 1}\n\n"), "{text}");
        assert!(
            text.ends_with(&format!("end 3 {}\n", app.digest())),
            "{text}"
        );
    }

    #[test]
    fn a_tampered_bundle_is_refused_with_its_place() {
        let bytes = app().encode();
        let mut changed = bytes.clone();
        let at = changed.windows(3).position(|w| w == b"[]\n").unwrap();
        changed[at] = b'{';
        let error = decode(&changed).unwrap_err();
        assert!(
            error.contains("the bundle was changed or damaged"),
            "{error}"
        );
        assert!(error.starts_with("app.bundle: at byte "), "{error}");

        for cut in [1, 10, MAGIC.len() + 5, bytes.len() - 70, bytes.len() - 1] {
            let error = decode(&bytes[..cut]).unwrap_err();
            assert!(error.contains("app.bundle: at byte"), "{cut}: {error}");
        }
        let mut longer = bytes.clone();
        longer.push(b'\n');
        assert!(
            decode(&longer)
                .unwrap_err()
                .contains("1 bytes after the end line")
        );
        assert!(
            decode(b"PK\x03\x04")
                .unwrap_err()
                .contains("not a Writ app bundle")
        );
    }

    #[test]
    fn paths_that_escape_repeat_or_clash_are_refused() {
        let cases: [(&[u8], &str); 9] = [
            (
                b"file 1 ../etc/passwd\nx\n",
                "not within one of the app's directories",
            ),
            (b"file 1 resources/../../x\nx\n", "may not escape"),
            (b"file 1 /resources/x\nx\n", "an absolute path"),
            (b"file 1 resources//x\nx\n", "an empty path component"),
            (b"file 1 resources\nx\n", "a directory of the app"),
            (
                b"file 1 resources/a\nx\nfile 1 resources/a\nx\n",
                "in the bundle twice",
            ),
            (
                b"file 1 resources/b\nx\nfile 1 resources/a\nx\n",
                "ascending order",
            ),
            (
                b"file 1 resources/a\nx\nfile 1 resources/a/b\nx\n",
                "both a file and a directory",
            ),
            (b"file 01 resources/a\nx\n", "not a number"),
        ];
        for (body, expected) in cases {
            let mut content = MAGIC.to_vec();
            content.extend_from_slice(body);
            let count = body.windows(5).filter(|w| w == b"file ").count();
            let error = decode(&seal(&content, count)).unwrap_err();
            assert!(
                error.contains(expected),
                "{}: {error}",
                String::from_utf8_lossy(body)
            );
        }
        let mut content = MAGIC.to_vec();
        content.extend_from_slice(b"file 5 resources/a\nx\n");
        let error = decode(&seal(&content, 1)).unwrap_err();
        assert!(
            error.contains("truncated") || error.contains("end of line"),
            "{error}"
        );
        let mut content = MAGIC.to_vec();
        content.extend_from_slice(b"file 1 resources/a\nx\n");
        assert!(
            decode(&seal(&content, 2))
                .unwrap_err()
                .contains("counts 2 files")
        );
        assert!(decode(&seal(&content, 1)).is_ok());
    }

    #[test]
    fn a_directory_lists_files_and_subdirectories() {
        let mut files = BTreeMap::new();
        for path in [
            "resources/a.json",
            "resources/b/c.json",
            "resources/b/d.json",
            "rules/a.json",
        ] {
            files.insert(path.to_owned(), Vec::new());
        }
        let app = AppFiles::new("x".into(), files).unwrap();
        let names: Vec<(&str, bool)> = app
            .list("resources")
            .into_iter()
            .map(|(n, b)| (n, b.is_some()))
            .collect();
        assert_eq!(names, [("a.json", true), ("b", false)]);
        assert!(app.has_dir("rules") && !app.has_dir("rule") && !app.has_dir("machines"));
        assert!(app.list("machines").is_empty());
    }

    #[test]
    fn the_loader_names_a_bundled_file_within_the_bundle() {
        let mut files = BTreeMap::new();
        files.insert(
            "resources/users.json".to_owned(),
            br#"{"title": "user", "type": "object"}"#.to_vec(),
        );
        let bytes = AppFiles::new("app".into(), files).unwrap().encode();
        let app = AppFiles::decode(Path::new("users.bundle"), &bytes).unwrap();
        let error = crate::load_files(&app).unwrap_err().to_string();
        assert!(
            error.starts_with("users.bundle/resources/users.json: at /title:"),
            "{error}"
        );
    }
}
