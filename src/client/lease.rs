//! The shared session across processes of one user on one machine: a lease file.
//!
//! Several processes publishing with one PAT at once (an Alteryx Server worker running several
//! workflows, overlapping cron jobs) would otherwise end each other's sessions. So they share it:
//! in a private per-user directory (0700), `<hash>.lease` (0600) holds the session token, the
//! site's LUID and the processes using it, where `<hash>` is a SHA-256 of the server, site,
//! credential identity and a fingerprint of the secret (never the secret). Every read and write
//! happens under an exclusive lock of `<hash>.lock`, held also while signing in, so only one
//! process signs in and the others take its token.
//!
//! A token read from the lease is checked by using it: if it has died, the request gets 401,
//! and the renewal, finding the same dead token in the lease, signs in and writes the new one
//! (one request fewer than probing it first). Holders whose process is gone are dropped; the
//! last holder signs out and removes the lease.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Longest wait for another process that holds the lock (it may be signing in, which retries
/// for a while); after that this process goes on without the lease.
const LOCK_WAIT: Duration = Duration::from_secs(600);
/// How often the lock is tried while another process holds it.
const LOCK_POLL: Duration = Duration::from_millis(20);

/// What the lease file holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Lease {
    /// The session token (secret; the file is private to the user).
    pub(crate) token: Option<String>,
    /// The site's LUID.
    pub(crate) site_id: Option<String>,
    /// Processes using the session.
    pub(crate) holders: Vec<u32>,
}

/// The lease of one shared session.
pub(crate) struct LeaseFile {
    lock: PathBuf,
    lease: PathBuf,
}

/// Exclusive access to a lease while alive.
pub(crate) struct Locked<'a> {
    _lock: File,
    file: &'a LeaseFile,
}

impl LeaseFile {
    /// The lease for `key` in this user's private directory, or `None` when no such directory
    /// can be made safely (then sessions are shared within the process only).
    pub(crate) fn for_key(key: &str) -> Option<LeaseFile> {
        use sha2::{Digest, Sha256};
        let dir = private_dir()?;
        let name = crate::hex::hex(&Sha256::digest(key.as_bytes()));
        Some(LeaseFile {
            lock: dir.join(format!("{name}.lock")),
            lease: dir.join(format!("{name}.lease")),
        })
    }

    /// Takes the lock, waiting (without blocking the runtime) while another process has it;
    /// `None` if it cannot be had.
    pub(crate) async fn lock(&self) -> Option<Locked<'_>> {
        let file = open_private(&self.lock, false).ok()?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Some(Locked {
                        _lock: file,
                        file: self,
                    })
                }
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    tokio::time::sleep(LOCK_POLL).await;
                }
                Err(_) => return None,
            }
        }
    }
}

impl Locked<'_> {
    /// The lease as on disk, with holders whose process is gone dropped.
    pub(crate) fn read(&self) -> Lease {
        let mut text = String::new();
        let mut lease: Lease = File::open(&self.file.lease)
            .and_then(|f| f.take(64 * 1024).read_to_string(&mut text))
            .ok()
            .and_then(|_| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        lease.holders.retain(|pid| crate::process::alive(*pid));
        lease
    }

    /// Replaces the lease (atomically), or removes it when nobody holds it.
    pub(crate) fn write(&self, lease: &Lease) {
        if lease.holders.is_empty() {
            let _ = std::fs::remove_file(&self.file.lease);
            return;
        }
        let Ok(json) = serde_json::to_vec(lease) else {
            return;
        };
        let tmp = self
            .file
            .lease
            .with_extension(format!("lease.{}", std::process::id()));
        let written = open_private(&tmp, true).and_then(|mut f| f.write_all(&json));
        if written.is_ok() {
            let _ = std::fs::rename(&tmp, &self.file.lease);
        } else {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

fn open_private(path: &Path, truncate: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// `TMPDIR/tableau-publisher-sessions-<uid>`, created 0700; refused if it exists and is not
/// ours or is open to others.
fn private_dir() -> Option<PathBuf> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        let dir = std::env::temp_dir().join(format!("tableau-publisher-sessions-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        let meta = std::fs::symlink_metadata(&dir).ok()?;
        let safe = meta.is_dir() && meta.uid() == uid && meta.permissions().mode() & 0o077 == 0;
        safe.then_some(dir)
    }
    #[cfg(not(unix))]
    {
        // Per user already (%TEMP% is under the profile), and given an owner-only DACL.
        let dir = std::env::temp_dir().join("tableau-publisher-sessions");
        crate::private_dir::ensure(&dir).ok()?;
        Some(dir)
    }
}
