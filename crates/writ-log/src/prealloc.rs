//! The preallocator: a background thread owned by the [`Log`](crate::Log) that prepares the
//! next segment (a zero-filled, synced temporary file) ahead of time and writes the sidecar
//! index files of sealed segments, so that neither costs the writer's commit latency.
//!
//! The thread lives exactly as long as the `Log`: dropping the [`Preallocator`] sets the
//! stop flag (which cancels a zero fill between chunks), closes the job channel, lets the
//! thread finish the small jobs already queued (index files) and joins it.
//!
//! The thread never touches a segment that holds records, and what it writes becomes part
//! of the log only when the writer installs it (header, sync, rename, directory sync). A
//! crash while it works leaves at most a `*.tmp` file, which the next open removes.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use crate::segment::{SPARE_NAME, prepare_file, remove_if_exists, write_index_file};
use crate::storage::{Storage, StorageFile};

enum Job {
    /// Prepare `dir/SPARE_NAME` with `size` zero bytes.
    Spare { size: u64 },
    /// Write the sidecar index file of the sealed segment starting at `first_seq`.
    Index { first_seq: u64, bytes: Vec<u8> },
}

/// A prepared spare segment file at `dir/SPARE_NAME`.
pub(crate) struct Spare {
    pub file: Arc<dyn StorageFile>,
    pub size: u64,
    /// Bytes from the start written as zeros (all of them unless the writer hurried it).
    pub zeroed: u64,
}

enum SpareState {
    Idle,
    Requested,
    Ready(Spare),
}

pub(crate) struct Preallocator {
    storage: Arc<dyn Storage>,
    spare_path: PathBuf,
    jobs: Option<Sender<Job>>,
    spares: Receiver<io::Result<Spare>>,
    stop: Arc<AtomicBool>,
    /// Set while the writer waits for a spare still being filled: the thread ends the zero
    /// fill where it is and hands the file over (the rest a hole).
    pub(crate) hurry: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    state: SpareState,
}

impl fmt::Debug for Preallocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            SpareState::Idle => "idle",
            SpareState::Requested => "requested",
            SpareState::Ready(_) => "ready",
        };
        f.debug_struct("Preallocator")
            .field("spare", &state)
            .finish_non_exhaustive()
    }
}

impl Preallocator {
    /// Starts the thread.
    pub fn start(storage: Arc<dyn Storage>, dir: PathBuf) -> io::Result<Preallocator> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (spare_tx, spare_rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let hurry = Arc::new(AtomicBool::new(false));
        let flags = Flags {
            stop: Arc::clone(&stop),
            hurry: Arc::clone(&hurry),
        };
        let thread_storage = Arc::clone(&storage);
        let spare_path = dir.join(SPARE_NAME);
        let thread = std::thread::Builder::new()
            .name("writ-log-prealloc".into())
            .spawn(move || run(&*thread_storage, &dir, &job_rx, &spare_tx, &flags))?;
        Ok(Preallocator {
            storage,
            spare_path,
            jobs: Some(job_tx),
            spares: spare_rx,
            stop,
            hurry,
            thread: Some(thread),
            state: SpareState::Idle,
        })
    }

    /// Asks for a spare segment of `size` bytes unless one is requested or ready.
    pub fn request_spare(&mut self, size: u64) {
        if matches!(self.state, SpareState::Idle) && self.send(Job::Spare { size }) {
            self.state = SpareState::Requested;
        }
    }

    /// The spare. If the thread is still filling it, tells it to hurry (end the zero fill
    /// where it is; the rest stays a hole) and waits for that, which takes at most one
    /// chunk and the sync of what was written since the last one. `None` if none was
    /// requested (or the thread is gone); `Some(Err)` if preparing it failed.
    pub fn take_spare(&mut self) -> Option<io::Result<Spare>> {
        match std::mem::replace(&mut self.state, SpareState::Idle) {
            SpareState::Idle => None,
            SpareState::Ready(spare) => Some(Ok(spare)),
            SpareState::Requested => {
                self.hurry.store(true, Ordering::Relaxed);
                let spare = self.spares.recv().ok();
                // The thread has finished this job: the next one starts unhurried.
                self.hurry.store(false, Ordering::Relaxed);
                spare
            }
        }
    }

    /// Notes a finished spare without waiting.
    pub fn poll(&mut self) {
        if matches!(self.state, SpareState::Requested) {
            match self.spares.try_recv() {
                Ok(Ok(spare)) => self.state = SpareState::Ready(spare),
                // A failed spare is dropped here; the roll then prepares one inline.
                Ok(Err(_)) | Err(mpsc::TryRecvError::Disconnected) => {
                    self.state = SpareState::Idle;
                }
                Err(mpsc::TryRecvError::Empty) => {}
            }
        }
    }

    /// Queues a sidecar index file. Gives the bytes back if the thread is gone (the caller
    /// may write it inline).
    pub fn write_index(&mut self, first_seq: u64, bytes: Vec<u8>) -> Result<(), Vec<u8>> {
        let Some(tx) = &self.jobs else {
            return Err(bytes);
        };
        tx.send(Job::Index { first_seq, bytes })
            .map_err(|mpsc::SendError(job)| match job {
                Job::Index { bytes, .. } => bytes,
                Job::Spare { .. } => Vec::new(),
            })
    }

    fn send(&mut self, job: Job) -> bool {
        match &self.jobs {
            Some(tx) => tx.send(job).is_ok(),
            None => false,
        }
    }
}

impl Drop for Preallocator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            // A panic in the thread is not the writer's concern any more; the log's data
            // never depends on it.
            let _ = thread.join();
        }
        // An unused spare would only be removed at the next open; free the space now.
        if matches!(self.state, SpareState::Ready(_) | SpareState::Requested) {
            let _ = remove_if_exists(&*self.storage, &self.spare_path);
        }
    }
}

/// The thread's view of the owner's flags.
struct Flags {
    stop: Arc<AtomicBool>,
    hurry: Arc<AtomicBool>,
}

fn run(
    storage: &dyn Storage,
    dir: &Path,
    jobs: &Receiver<Job>,
    spares: &Sender<io::Result<Spare>>,
    flags: &Flags,
) {
    let spare_path = dir.join(SPARE_NAME);
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Spare { size } => {
                if flags.stop.load(Ordering::Relaxed) {
                    continue;
                }
                let result = prepare_file(
                    storage,
                    &spare_path,
                    size,
                    true,
                    Some(&flags.stop),
                    Some(&flags.hurry),
                )
                .map(|prepared| Spare {
                    file: prepared.file,
                    size,
                    zeroed: prepared.zeroed,
                });
                if result.is_err() {
                    let _ = remove_if_exists(storage, &spare_path);
                }
                if spares.send(result).is_err() {
                    break;
                }
            }
            Job::Index { first_seq, bytes } => {
                // Best effort: a missing index file is rebuilt at the next open.
                let _ = write_index_file(storage, dir, first_seq, &bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{SimStorage, read_full_at};

    fn read_all(file: &dyn StorageFile, size: u64) -> Vec<u8> {
        let mut buf = vec![0xffu8; size as usize];
        let n = read_full_at(file, &mut buf, 0).expect("read spare");
        assert_eq!(n as u64, size, "the spare reads back at full size");
        buf
    }

    #[test]
    fn a_spare_is_filled_with_zeros_when_nobody_hurries() {
        let storage: Arc<dyn Storage> = Arc::new(SimStorage::new());
        storage.create_dir_all(Path::new("log")).unwrap();
        let mut prealloc = Preallocator::start(Arc::clone(&storage), "log".into()).unwrap();
        prealloc.request_spare(3 << 20);
        // Wait for it without hurrying (`take_spare` would hurry it).
        let spare = prealloc.spares.recv().unwrap().unwrap();
        assert_eq!(spare.size, 3 << 20);
        assert_eq!(spare.zeroed, 3 << 20);
        assert_eq!(spare.file.len().unwrap(), 3 << 20);
        assert!(read_all(&*spare.file, 3 << 20).iter().all(|&b| b == 0));
    }

    #[test]
    fn a_hurried_spare_is_full_size_and_reads_as_zeros() {
        let storage: Arc<dyn Storage> = Arc::new(SimStorage::new());
        storage.create_dir_all(Path::new("log")).unwrap();
        let mut prealloc = Preallocator::start(Arc::clone(&storage), "log".into()).unwrap();
        // The writer is already waiting when the job starts: the fill ends at once.
        prealloc.hurry.store(true, Ordering::Relaxed);
        prealloc.request_spare(3 << 20);
        let spare = prealloc.take_spare().unwrap().unwrap();
        assert_eq!(spare.zeroed, 0, "hurried before the first chunk");
        assert_eq!(spare.size, 3 << 20);
        assert_eq!(spare.file.len().unwrap(), 3 << 20);
        assert!(read_all(&*spare.file, 3 << 20).iter().all(|&b| b == 0));
        // Taking it clears the hurry: the next spare is filled in full again.
        assert!(!prealloc.hurry.load(Ordering::Relaxed));
        prealloc.request_spare(3 << 20);
        let next = prealloc.spares.recv().unwrap().unwrap();
        assert_eq!(next.zeroed, 3 << 20);
    }
}
