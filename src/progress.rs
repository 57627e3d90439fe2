//! Progress reports to the host during a publish, and cancellation by the host's answer.
//!
//! The host's function is called on the thread inside `finalize_and_publish` only (the I/O
//! runtime is single-threaded and runs there), at each phase change and as file bytes are
//! handed to the connection. Returning `false` cancels the publish as soon as possible.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Upload progress reaches the host each time this many more bytes were sent.
const REPORT_EVERY: u64 = 2 * 1024 * 1024;

/// What the publish is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading server info and signing in.
    SigningIn,
    /// Finding the project and checking the data source.
    Resolving,
    /// Sending the file's bytes.
    Uploading,
    /// Committing the publish.
    Committing,
    /// Waiting for the asynchronous publish job.
    WaitingForJob,
    /// Signing out.
    SigningOut,
    /// Waiting for another publish with the same credentials to finish with the session (the
    /// server ends a session used from two connections at once, so they take turns).
    WaitingForSession,
}

impl Phase {
    /// The phase in words, e.g. `"waiting for the job"`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::SigningIn => "signing in",
            Phase::Resolving => "finding the project",
            Phase::Uploading => "uploading",
            Phase::Committing => "committing",
            Phase::WaitingForJob => "waiting for the job",
            Phase::SigningOut => "signing out",
            Phase::WaitingForSession => "waiting for the session",
        }
    }
}

/// One progress report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The current phase.
    pub phase: Phase,
    /// File bytes handed to the connection in the current upload pass.
    pub bytes_sent: u64,
    /// File bytes in all.
    pub bytes_total: u64,
}

/// The host's progress function: returns `true` to continue, `false` to cancel.
pub type ProgressFn = Box<dyn FnMut(&Progress) -> bool + Send>;

/// Shared by the publish flow and the body streams of one publish.
#[derive(Clone, Default)]
pub(crate) struct Reporter(Arc<Inner>);

#[derive(Default)]
struct Inner {
    callback: Mutex<Option<ProgressFn>>,
    state: Mutex<Option<Progress>>,
    cancelled: AtomicBool,
}

impl Reporter {
    /// A reporter calling `callback` (or nobody).
    pub(crate) fn new(callback: Option<ProgressFn>) -> Reporter {
        Reporter(Arc::new(Inner {
            callback: Mutex::new(callback),
            state: Mutex::new(None),
            cancelled: AtomicBool::new(false),
        }))
    }

    /// Whether the host asked to cancel.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Relaxed)
    }

    /// Gives the callback back (after the publish), so the handle keeps it.
    pub(crate) fn take_callback(&self) -> Option<ProgressFn> {
        self.0
            .callback
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    fn update(&self, f: impl FnOnce(&mut Progress) -> bool) {
        let report = {
            let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
            let p = state.get_or_insert(Progress {
                phase: Phase::SigningIn,
                bytes_sent: 0,
                bytes_total: 0,
            });
            if !f(p) {
                return;
            }
            *p
        };
        // The host's function is called without holding the state lock.
        let mut callback = self.0.callback.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cb) = callback.as_mut() {
            if !cb(&report) {
                self.0.cancelled.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Enters a phase.
    pub(crate) fn phase(&self, phase: Phase) {
        self.update(|p| {
            p.phase = phase;
            true
        });
    }

    /// Starts an upload pass of `total` bytes.
    pub(crate) fn start_upload(&self, total: u64) {
        self.update(|p| {
            p.phase = Phase::Uploading;
            p.bytes_sent = 0;
            p.bytes_total = total;
            true
        });
    }

    /// Records that the file's bytes up to offset `end` were handed to the connection
    /// (a re-sent range does not count twice). The host hears of it every
    /// 2 MiB and at the end.
    pub(crate) fn sent_up_to(&self, end: u64) {
        self.update(|p| {
            let before = p.bytes_sent;
            p.bytes_sent = before.max(end);
            p.bytes_sent / REPORT_EVERY > before / REPORT_EVERY
                || (p.bytes_sent == p.bytes_total && before < p.bytes_total)
        });
    }
}
