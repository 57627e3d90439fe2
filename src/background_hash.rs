//! The SHA-256 of a file that is still being written, computed on a thread of its own that
//! reads the bytes back (from the page cache, just behind the writer). While the host's
//! upstream job is feeding the spool, hashing costs the feeding thread nothing, and the upload
//! at the end need not hash: the digest is usually ready when the last byte is fed.

use std::fs::File;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::hex::hex;

/// Bytes read and hashed at a time: small enough to stay in the CPU cache between the two.
const PIECE: usize = 256 * 1024;

/// A SHA-256 being computed in the background over a file that grows.
pub struct BackgroundHash {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
    cancelled: AtomicBool,
}

#[derive(Default)]
struct Progress {
    /// Bytes of the file written so far, which the hasher may read.
    written: u64,
    /// The writer is done: `written` is the final length.
    complete: bool,
    /// The digest (lowercase hex) or why it could not be computed, once known.
    outcome: Option<std::result::Result<String, String>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl BackgroundHash {
    /// Starts hashing `file` (opened for reading at its start) as [`written`](Self::written)
    /// says bytes become available. Fails only if no thread can be started.
    pub fn start(file: File) -> std::io::Result<BackgroundHash> {
        let shared = Arc::new(Shared {
            progress: Mutex::new(Progress::default()),
            changed: Condvar::new(),
            cancelled: AtomicBool::new(false),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("tp-spool-hash".into())
            .spawn(move || {
                yield_to_the_writer();
                let outcome = hash_as_written(file, &worker);
                if let Some(outcome) = outcome {
                    worker.lock().outcome = Some(outcome);
                    worker.changed.notify_all();
                }
            })?;
        Ok(BackgroundHash {
            shared,
            thread: Some(thread),
        })
    }

    /// The first `len` bytes of the file are written and may be read.
    pub fn written(&self, len: u64) {
        self.shared.lock().written = len;
        self.shared.changed.notify_all();
    }

    /// The file is complete at `len` bytes.
    pub fn complete(&self, len: u64) {
        let mut p = self.shared.lock();
        p.written = len;
        p.complete = true;
        drop(p);
        self.shared.changed.notify_all();
    }

    /// Stops hashing (within one piece) when the digest will not be needed, so the thread
    /// gives its core back: a rows input the host gave as a file is built into an extract, and
    /// only the extract's digest is sent. A later [`wait`](Self::wait) reads the file itself.
    pub fn abandon(&self) {
        self.shared.cancelled.store(true, Ordering::Relaxed);
        self.shared.changed.notify_all();
    }

    /// Whether [`abandon`](Self::abandon) was called.
    pub fn abandoned(&self) -> bool {
        self.shared.cancelled.load(Ordering::Relaxed)
    }

    /// Waits for the digest of the complete file (call [`complete`](Self::complete) first).
    pub fn wait(&self) -> Result<String> {
        let mut p = self.shared.lock();
        loop {
            match &p.outcome {
                Some(Ok(hex)) => return Ok(hex.clone()),
                Some(Err(why)) => {
                    return Err(Error::new(
                        crate::error::ErrorKind::Io,
                        format!("cannot read the spool file back to compute its SHA-256: {why}"),
                    ))
                }
                None if !p.complete => {
                    return Err(Error::new(
                        crate::error::ErrorKind::Internal,
                        "the spool's SHA-256 was asked for before the spool was complete",
                    ))
                }
                None => {
                    p = self
                        .shared
                        .changed
                        .wait(p)
                        .unwrap_or_else(|e| e.into_inner())
                }
            }
        }
    }
}

impl std::fmt::Debug for BackgroundHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.shared.lock();
        f.debug_struct("BackgroundHash")
            .field("written", &p.written)
            .field("complete", &p.complete)
            .field("done", &p.outcome.is_some())
            .finish()
    }
}

impl Drop for BackgroundHash {
    /// Stops the thread (within one piece) and waits for it, so no thread outlives the spool.
    fn drop(&mut self) {
        self.shared.cancelled.store(true, Ordering::Relaxed);
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Lowers this thread's scheduling priority: the hash is background work, and should not take
/// a core from the host's thread that is feeding the spool (or from the kernel's writeback).
/// It catches up when they are idle. Linux only (elsewhere a no-op).
fn yield_to_the_writer() {
    #[cfg(target_os = "linux")]
    // SAFETY: on Linux, PRIO_PROCESS with 0 sets the nice value of the calling thread only.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

/// The hasher thread: reads up to what is written, waits for more, until the file is complete
/// (the digest) or the hash is dropped (None).
fn hash_as_written(mut file: File, shared: &Shared) -> Option<std::result::Result<String, String>> {
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; PIECE];
    let mut done: u64 = 0;
    loop {
        let (written, complete) = {
            let mut p = shared.lock();
            while p.written == done && !p.complete && !shared.cancelled.load(Ordering::Relaxed) {
                p = shared.changed.wait(p).unwrap_or_else(|e| e.into_inner());
            }
            (p.written, p.complete)
        };
        while done < written {
            if shared.cancelled.load(Ordering::Relaxed) {
                return None;
            }
            let n = (written - done).min(PIECE as u64) as usize;
            if let Err(e) = file.read_exact(&mut buf[..n]) {
                return Some(Err(e.to_string()));
            }
            sha.update(&buf[..n]);
            done += n as u64;
        }
        if shared.cancelled.load(Ordering::Relaxed) {
            return None;
        }
        if complete && done == written {
            return Some(Ok(hex(&sha.finalize())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sha(data: &[u8]) -> String {
        hex(&Sha256::digest(data))
    }

    #[test]
    fn hashes_a_file_as_it_grows() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        let hash = BackgroundHash::start(File::open(tmp.path()).unwrap()).unwrap();
        let data: Vec<u8> = (0..3 * PIECE + 17).map(|i| (i * 31 % 251) as u8).collect();
        let mut written = 0;
        for part in data.chunks(PIECE / 3 + 5) {
            tmp.write_all(part).unwrap();
            written += part.len() as u64;
            hash.written(written);
        }
        hash.complete(written);
        assert_eq!(hash.wait().unwrap(), sha(&data));
        // Asking again gives the same answer.
        assert_eq!(hash.wait().unwrap(), sha(&data));
    }

    #[test]
    fn an_empty_complete_file_has_the_empty_digest() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let hash = BackgroundHash::start(File::open(tmp.path()).unwrap()).unwrap();
        hash.complete(0);
        assert_eq!(hash.wait().unwrap(), sha(b""));
    }

    #[test]
    fn a_file_shorter_than_said_is_an_io_error() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(b"abc").unwrap();
        let hash = BackgroundHash::start(File::open(tmp.path()).unwrap()).unwrap();
        hash.complete(10);
        let e = hash.wait().unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Io);
        assert!(e.message().contains("SHA-256"), "{}", e.message());
    }

    #[test]
    fn asking_before_completion_is_refused_not_a_hang() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let hash = BackgroundHash::start(File::open(tmp.path()).unwrap()).unwrap();
        assert!(hash.wait().is_err());
    }

    #[test]
    fn dropping_mid_file_stops_the_thread() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&vec![7u8; 4 * PIECE]).unwrap();
        let hash = BackgroundHash::start(File::open(tmp.path()).unwrap()).unwrap();
        hash.written(4 * PIECE as u64); // never completed
        drop(hash); // joins the thread: the test would hang if it did not stop
    }
}
