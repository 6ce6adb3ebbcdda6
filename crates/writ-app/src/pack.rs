//! `writ app pack DIR`: an app directory as one bundle file, checked as `serve --app`
//! checks it, its digest printed. See `writ_resources::bundle` for the format.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use writ_resources::AppFiles;

/// `writ app`'s subcommands.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Pack an app directory into one bundle file (deterministic: the same directory gives
    /// the same bytes), after the checks `serve --app` runs; print its digest (SHA-256,
    /// the one `serve --app` logs). `serve --app FILE` serves the bundle.
    Pack(PackArgs),
}

/// `writ app pack`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct PackArgs {
    /// The app directory: its resources/, machines/, rules/ (and whatever else of an app
    /// the loader reads) are packed; other files (a README) are not.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The bundle to write (replaced if it exists). Default: DIR with `.bundle` appended.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Runs a `writ app` subcommand.
pub fn run(command: AppCommand) -> Result<(), String> {
    match command {
        AppCommand::Pack(args) => pack(&args).map(|(digest, out, bytes)| {
            eprintln!(
                "packed {} into {} ({bytes} bytes)",
                args.dir.display(),
                out.display()
            );
            println!("{digest}");
        }),
    }
}

/// Packs `args.dir` into its bundle; returns the digest, where it was written and its size.
/// Refuses a directory the loader refuses, with the loader's message (file and place), and
/// writes nothing then. Clashes with `--domain`s served beside the app are checked when it
/// is served, since they depend on the domains.
pub fn pack(args: &PackArgs) -> Result<(String, PathBuf, usize), String> {
    if !args.dir.is_dir() {
        return Err(format!(
            "{}: not a directory: `writ app pack` packs an app directory",
            args.dir.display()
        ));
    }
    let files = AppFiles::read_dir(&args.dir).map_err(|e| e.to_string())?;
    writ_resources::load_files(&files).map_err(|e| e.to_string())?;
    let out = args.out.clone().unwrap_or_else(|| default_out(&args.dir));
    let bytes = files.encode();
    write_atomically(&out, &bytes)?;
    Ok((files.digest(), out, bytes.len()))
}

/// `DIR.bundle`, beside the directory (`examples/users` gives `examples/users.bundle`;
/// `.` gives `NAME.bundle` here, NAME the directory's own name).
fn default_out(dir: &Path) -> PathBuf {
    let dir: PathBuf = dir.components().collect();
    let name = match dir.file_name() {
        Some(name) => name.to_owned(),
        None => dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(ToOwned::to_owned))
            .unwrap_or_else(|| "app".into()),
    };
    let mut file = name;
    file.push(".bundle");
    match dir.file_name() {
        Some(_) => dir.with_file_name(file),
        None => PathBuf::from(file),
    }
}

/// Writes `bytes` to a temporary file beside `out`, syncs it, and renames it over `out`:
/// a reader sees the old bundle or the new one, never half of one.
fn write_atomically(out: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    let error = |e: std::io::Error| format!("{}: cannot write it: {e}", out.display());
    let mut name = out.file_name().map(ToOwned::to_owned).unwrap_or_default();
    name.push(format!(".tmp-{}", std::process::id()));
    let temporary = out.with_file_name(name);
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, out)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result.map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_bundle_sits_beside_the_directory() {
        assert_eq!(
            default_out(Path::new("examples/users")),
            Path::new("examples/users.bundle")
        );
        assert_eq!(
            default_out(Path::new("examples/users/")),
            Path::new("examples/users.bundle")
        );
        assert_eq!(
            default_out(Path::new("/srv/app")),
            Path::new("/srv/app.bundle")
        );
    }
}
