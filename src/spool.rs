//! Bounded-memory storage of the bytes the host feeds: a private temporary file under
//! `spool_dir`, written through a fixed-size buffer, and hashed (SHA-256) by a background
//! thread reading just behind the writer.
//!
//! The file is deleted when the publish succeeds (or the handle is freed before finalizing) and
//! kept, with its path reported, when publishing fails.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};
use tempfile::{NamedTempFile, TempPath};

use crate::background_hash::BackgroundHash;
use crate::error::{Error, ErrorKind, Result};
use crate::filetype::SNIFF_LEN;
use crate::hex::hex;
use crate::private_dir::PrivateDirError;

/// Size of the write buffer between the host's chunks and the disk.
const WRITE_BUFFER: usize = 1024 * 1024;
/// The background hash hears of newly written bytes at least this far apart.
const HASH_NOTIFY_EVERY: u64 = 4 * 1024 * 1024;
/// The directory under `spool_dir` that holds spools and manifests (0700).
pub const PRIVATE_DIR: &str = "tableau-publisher";
/// Names of spool files start with this.
const SPOOL_PREFIX: &str = "tableau-publisher-";
/// Added to a published spool's name while it is being deleted (see [`Spool::remove`]).
const REMOVING_SUFFIX: &str = ".done";

enum State {
    /// Nothing fed yet; no file exists.
    Empty,
    /// Receiving bytes.
    Writing(BufWriter<NamedTempFile>),
    /// Complete; deleted when dropped.
    Sealed(TempPath),
    /// Complete and kept on disk after a failure; never deleted automatically.
    Kept(PathBuf),
    /// The host's own file, published in place: never written, moved or deleted.
    External(PathBuf),
    /// Removed after a successful publish.
    Removed,
}

/// The spool of one publish.
pub struct Spool {
    dir: PathBuf,
    state: State,
    len: u64,
    head: Vec<u8>,
    digest: DigestSource,
    /// Bytes the background hash was last told are on disk.
    hash_notified: u64,
    /// The thread deleting the published spool; joined when the spool is dropped.
    removal: Option<JoinHandle<()>>,
}

/// Where the SHA-256 of the spooled bytes comes from.
#[derive(Clone, Debug)]
pub enum DigestSource {
    /// Known already (a resumed spool, checked when adopted).
    Known(String),
    /// Computed on a background thread: while the host feeds, or from the moment an existing
    /// file is given as the input.
    Background(Arc<BackgroundHash>),
    /// Read from the file when asked for (no thread could be started).
    Unknown,
}

/// What was spooled, once sealed.
#[derive(Clone, Debug)]
pub struct Sealed {
    /// Where the bytes are.
    pub path: PathBuf,
    /// How many bytes.
    pub len: u64,
    /// Where the SHA-256 of the bytes comes from; see [`Sealed::digest`].
    pub digest: DigestSource,
    /// The first bytes, for recognising the file type.
    pub head: Vec<u8>,
}

impl Spool {
    /// A spool that will create its file in `dir/tableau-publisher/` (private to the user) on
    /// the first non-empty write.
    pub fn new(dir: &Path) -> Spool {
        Spool {
            dir: dir.to_owned(),
            state: State::Empty,
            len: 0,
            head: Vec::with_capacity(SNIFF_LEN),
            digest: DigestSource::Unknown,
            hash_notified: 0,
            removal: None,
        }
    }

    /// A spool for a file kept by an earlier publish, checked against its recorded size and
    /// SHA-256 (re-read in full) before it is published again. Without a recorded SHA-256 (the
    /// process died before it was computed; nothing was committed then) the size is checked.
    pub fn adopt(path: &Path, len: u64, sha256: Option<&str>) -> Result<Spool> {
        let (total, actual, head) = digest_file(path)?;
        if total != len || sha256.is_some_and(|s| s != actual) {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "the kept spool {} has changed since it was kept ({total} bytes, sha256 {actual}; the manifest says {len} bytes, sha256 {}); it is not published",
                    path.display(),
                    sha256.unwrap_or("not recorded")
                ),
            ));
        }
        Ok(Spool {
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            state: State::Kept(path.to_path_buf()),
            len,
            head,
            digest: DigestSource::Known(actual),
            hash_notified: 0,
            removal: None,
        })
    }

    /// A spool that is the host's existing file, published in place (no copy). Only its first
    /// bytes are read now; its SHA-256 is computed on a background thread from now on, while
    /// the publish runs. It is never modified or deleted.
    pub fn external(path: &Path) -> Result<Spool> {
        use std::io::Read;
        let file = File::open(path)
            .map_err(|e| Error::io(&format!("cannot open {}", path.display()), &e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(&format!("cannot read {}", path.display()), &e))?
            .len();
        let mut head = Vec::with_capacity(SNIFF_LEN);
        (&file)
            .take(SNIFF_LEN as u64)
            .read_to_end(&mut head)
            .map_err(|e| Error::io(&format!("cannot read {}", path.display()), &e))?;
        let digest = start_hash(File::open(path));
        if let DigestSource::Background(hash) = &digest {
            hash.complete(len);
        }
        Ok(Spool {
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            state: State::External(path.to_path_buf()),
            len,
            head,
            digest,
            hash_notified: len,
            removal: None,
        })
    }

    /// Whether the spool is the host's own file.
    pub fn is_external(&self) -> bool {
        matches!(self.state, State::External(_))
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends bytes. Memory use is bounded by the write buffer whatever the total size.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if matches!(self.state, State::Empty) {
            let dir = private_dir(&self.dir)?;
            sweep_removed(&dir);
            let file = tempfile::Builder::new()
                .prefix(SPOOL_PREFIX)
                .suffix(".spool")
                .tempfile_in(&dir)
                .map_err(|e| {
                    Error::io(
                        &format!("cannot create a spool file in {}", self.dir.display()),
                        &e,
                    )
                    .with_suffix("; set \"spool_dir\" to a writable directory with enough space")
                })?;
            self.digest = start_hash(file.reopen());
            self.state = State::Writing(BufWriter::with_capacity(WRITE_BUFFER, file));
        }
        let State::Writing(w) = &mut self.state else {
            return Err(Error::new(
                ErrorKind::State,
                "cannot add data: the input is already complete (an existing file was given as the whole input, or the publish has started)",
            ));
        };
        w.write_all(data).map_err(|e| {
            Error::io(
                &format!("cannot write to the spool file in {}", self.dir.display()),
                &e,
            )
            .with_suffix(" (is the disk full? set \"spool_dir\" to a volume with enough space)")
        })?;
        if self.head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
        }
        self.len += data.len() as u64;
        if let DigestSource::Background(hash) = &self.digest {
            let on_disk = self.len - w.buffer().len() as u64;
            if on_disk >= self.hash_notified + HASH_NOTIFY_EVERY {
                hash.written(on_disk);
                self.hash_notified = on_disk;
            }
        }
        Ok(())
    }

    /// Flushes and closes the file; afterwards the spool is read-only. Idempotent.
    pub fn seal(&mut self) -> Result<Sealed> {
        if let State::Writing(_) = self.state {
            let State::Writing(w) = std::mem::replace(&mut self.state, State::Removed) else {
                unreachable!()
            };
            let file = w.into_inner().map_err(|e| {
                Error::io("cannot flush the spool file", e.error())
                    .with_suffix(" (is the disk full?)")
            })?;
            if let DigestSource::Background(hash) = &self.digest {
                hash.complete(self.len);
            }
            self.state = State::Sealed(file.into_temp_path());
        }
        let path = match &self.state {
            State::External(p) if self.len == 0 => {
                return Err(Error::new(
                    ErrorKind::State,
                    format!("nothing to publish: {} is empty", p.display()),
                ))
            }
            State::Sealed(p) => p.to_path_buf(),
            State::Kept(p) | State::External(p) => p.clone(),
            State::Empty => return Err(Error::new(
                ErrorKind::State,
                "nothing to publish: no bytes were fed; feed the file's bytes before publishing",
            )),
            State::Removed | State::Writing(_) => {
                return Err(Error::new(
                    ErrorKind::State,
                    "the spool was already published and removed",
                ))
            }
        };
        Ok(Sealed {
            path,
            len: self.len,
            digest: self.digest.clone(),
            head: self.head.clone(),
        })
    }

    /// Keeps the sealed file on disk (after a failure), flushed to the device so that it
    /// survives a crash, and returns its path.
    pub fn keep(&mut self) -> Option<PathBuf> {
        match std::mem::replace(&mut self.state, State::Removed) {
            State::Sealed(p) => match p.keep() {
                Ok(path) => {
                    // Best effort: the bytes are in the page cache either way.
                    let _ = File::open(&path).and_then(|f| f.sync_data());
                    self.state = State::Kept(path.clone());
                    Some(path)
                }
                Err(e) => {
                    // Could not disarm deletion; the file still exists while the handle lives.
                    self.state = State::Sealed(e.path);
                    None
                }
            },
            State::Kept(p) => {
                self.state = State::Kept(p.clone());
                Some(p)
            }
            State::External(p) => {
                self.state = State::External(p.clone());
                Some(p)
            }
            other => {
                self.state = other;
                None
            }
        }
    }

    /// Deletes the file after a successful publish (never the host's own file), without making
    /// the publish wait: freeing a multi-GB file's blocks takes a while on some filesystems. The
    /// file is renamed to `….spool.done` at once and deleted on a thread, which dropping the
    /// spool (freeing the handle) waits for. A `.done` file left by a process that exited first is
    /// deleted when the next spool is created in the same directory.
    pub fn remove(&mut self) {
        if self.is_external() {
            return;
        }
        let path = match std::mem::replace(&mut self.state, State::Removed) {
            State::Sealed(p) => match p.keep() {
                Ok(path) => path,
                Err(e) => {
                    let _ = e.path.close();
                    return;
                }
            },
            State::Kept(p) => {
                let _ = std::fs::remove_file(manifest_path(&p));
                p
            }
            other => {
                self.state = other;
                return;
            }
        };
        self.removal = remove_in_background(path);
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Some(removal) = self.removal.take() {
            let _ = removal.join();
        }
    }
}

/// A background hash over `file` (a second handle on the spool), or `Unknown` when there is no
/// handle or no thread: the digest is then read from the file when it is needed.
fn start_hash(file: std::io::Result<File>) -> DigestSource {
    match file.and_then(BackgroundHash::start) {
        Ok(hash) => DigestSource::Background(Arc::new(hash)),
        Err(_) => DigestSource::Unknown,
    }
}

/// Renames `path` to mark it as garbage, then deletes it on a thread (here if none starts).
fn remove_in_background(path: PathBuf) -> Option<JoinHandle<()>> {
    let mut marked = path.clone().into_os_string();
    marked.push(REMOVING_SUFFIX);
    let marked = PathBuf::from(marked);
    let doomed = if std::fs::rename(&path, &marked).is_ok() {
        marked
    } else {
        path
    };
    let remove = {
        let doomed = doomed.clone();
        move || {
            let _ = std::fs::remove_file(doomed);
        }
    };
    match std::thread::Builder::new()
        .name("tp-spool-remove".into())
        .spawn(remove)
    {
        Ok(thread) => Some(thread),
        Err(_) => {
            let _ = std::fs::remove_file(&doomed);
            None
        }
    }
}

/// Deletes published spools whose deletion a process did not live to finish.
fn sweep_removed(private: &Path) {
    let Ok(entries) = std::fs::read_dir(private) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(SPOOL_PREFIX) && name.ends_with(&format!(".spool{REMOVING_SUFFIX}")) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Sealed {
    /// The SHA-256 if it is known without waiting.
    pub fn known_digest(&self) -> Option<String> {
        match &self.digest {
            DigestSource::Known(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// Stops a background SHA-256 that nobody will ask for; [`digest`](Self::digest) then
    /// reads the file if it is asked after all.
    pub fn abandon_digest(&self) {
        if let DigestSource::Background(hash) = &self.digest {
            hash.abandon();
        }
    }

    /// The SHA-256 of the bytes: the known one, the background one (waiting for it if it is
    /// still behind), or computed now by reading the file.
    pub fn digest(&self) -> Result<String> {
        match &self.digest {
            DigestSource::Known(s) => Ok(s.clone()),
            DigestSource::Background(hash) if !hash.abandoned() => hash.wait(),
            DigestSource::Background(_) | DigestSource::Unknown => {
                digest_file(&self.path).map(|(_, sha, _)| sha)
            }
        }
    }
}

/// Reads a file once: its length, SHA-256 (hex) and first bytes.
pub(crate) fn digest_file(path: &Path) -> Result<(u64, String, Vec<u8>)> {
    use std::io::Read;
    let mut file =
        File::open(path).map_err(|e| Error::io(&format!("cannot open {}", path.display()), &e))?;
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(SNIFF_LEN);
    let mut buf = vec![0u8; WRITE_BUFFER];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(&format!("cannot read {}", path.display()), &e)),
        };
        if head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex(&hasher.finalize()), head))
}

/// Where the manifest of a kept spool lives: next to it, with `.json` appended.
pub fn manifest_path(spool: &Path) -> PathBuf {
    let mut name = spool.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

/// `dir/tableau-publisher`, created if needed, open only to the current user (see
/// [`crate::private_dir`]).
pub(crate) fn private_dir(dir: &Path) -> Result<PathBuf> {
    let private = dir.join(PRIVATE_DIR);
    match crate::private_dir::ensure(&private) {
        Ok(()) => Ok(private),
        Err(PrivateDirError::Restrict(e)) => Err(Error::io(
            &format!(
                "{} is open to other users and cannot be made private",
                private.display()
            ),
            &e,
        )
        .with_suffix("; set \"spool_dir\" to a directory of your own")),
        Err(PrivateDirError::Create(e)) => Err(Error::io(
            &format!("cannot create the spool directory {}", private.display()),
            &e,
        )
        .with_suffix("; set \"spool_dir\" to a writable directory with enough space")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abandoned_digest_is_read_from_the_file_when_asked_after_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("input.csv");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut s = Spool::external(&path).unwrap();
        let sealed = s.seal().unwrap();
        sealed.abandon_digest();
        let DigestSource::Background(hash) = &sealed.digest else {
            panic!("an external file is hashed in the background");
        };
        assert!(hash.abandoned());
        let expected = crate::hex::hex(&sha2::Sha256::digest(&data));
        assert_eq!(sealed.digest().unwrap(), expected);
    }

    #[test]
    fn spools_hashes_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::new(dir.path());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no file before data"
        );
        s.write(b"").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        s.write(b"Hyper\x08").unwrap();
        s.write(b"abc").unwrap();
        let sealed = s.seal().unwrap();
        assert_eq!(std::fs::read(&sealed.path).unwrap(), b"Hyper\x08abc");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&sealed.path), 0o600, "spool file private");
            assert_eq!(
                mode(sealed.path.parent().unwrap()),
                0o700,
                "spool directory private"
            );
        }
        assert_eq!(sealed.len, 9);
        assert_eq!(
            sealed.digest().unwrap(),
            hex(&Sha256::digest(b"Hyper\x08abc"))
        );
        assert!(s.write(b"more").is_err(), "no writes after seal");
        s.remove();
        assert!(!sealed.path.exists(), "gone from its name at once");
        drop(s);
        let private = sealed.path.parent().unwrap();
        assert_eq!(
            std::fs::read_dir(private).unwrap().count(),
            0,
            "deleted once the spool is dropped"
        );
    }

    #[test]
    fn a_removal_left_unfinished_is_swept_by_the_next_spool() {
        let dir = tempfile::tempdir().unwrap();
        let private = private_dir(dir.path()).unwrap();
        let left = private.join("tableau-publisher-abc123.spool.done");
        std::fs::write(&left, b"published long ago").unwrap();
        let unrelated = private.join("tableau-publisher-def456.spool");
        std::fs::write(&unrelated, b"a kept spool").unwrap();
        let mut s = Spool::new(dir.path());
        s.write(b"Hyper").unwrap();
        assert!(!left.exists(), "the leftover is deleted");
        assert!(unrelated.exists(), "other spools are not touched");
    }

    #[test]
    fn kept_spool_survives_drop() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::new(dir.path());
        s.write(b"data").unwrap();
        let sealed = s.seal().unwrap();
        let kept = s.keep().unwrap();
        drop(s);
        assert_eq!(kept, sealed.path);
        assert_eq!(std::fs::read(&kept).unwrap(), b"data");
        let adopted = Spool::adopt(&kept, 4, Some(&sealed.digest().unwrap())).unwrap();
        assert_eq!(adopted.len, 4);
        let e = Spool::adopt(&kept, 4, Some(&hex(&Sha256::digest(b"other"))))
            .err()
            .unwrap();
        assert!(e.message().contains("has changed"));
    }

    #[test]
    fn empty_spool_cannot_be_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::new(dir.path());
        let e = s.seal().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::State);
        assert!(e.message().contains("no bytes were fed"));
    }
}
