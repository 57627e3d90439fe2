//! Progress reports to the host during a publish, its log lines, and cancellation by the
//! host's answer or by a [`Canceller`](crate::Canceller).
//!
//! The host's functions are called on the thread inside `finalize_and_publish` only (the I/O
//! runtime is single-threaded and runs there), at each phase change and as file bytes are
//! handed to the connection. Returning `false` cancels the publish as soon as possible.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::cancel::Canceller;
use crate::error::{Error, ErrorKind, Result};
use crate::log::{LogFn, LogLevel};

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
    /// Building the `.hyper` extract from the rows fed (CSV, Arrow, Parquet), before sign-in.
    BuildingExtract,
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
            Phase::BuildingExtract => "building the extract",
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
    log: Mutex<Option<LogFn>>,
    state: Mutex<Option<Progress>>,
    /// The progress function returned `false`.
    cancelled: AtomicBool,
    /// The host's cancel requests (from any thread), and the wake-up of this call's waits.
    host: Canceller,
}

impl Reporter {
    /// A reporter calling `callback` and `log` (or nobody), stopped by `host`.
    pub(crate) fn new(
        callback: Option<ProgressFn>,
        log: Option<LogFn>,
        host: Canceller,
    ) -> Reporter {
        Reporter(Arc::new(Inner {
            callback: Mutex::new(callback),
            log: Mutex::new(log),
            state: Mutex::new(None),
            cancelled: AtomicBool::new(false),
            host,
        }))
    }

    /// Whether the host asked to cancel (through its progress function or a canceller).
    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Relaxed) || self.0.host.is_requested()
    }

    /// The error a cancelled call ends with.
    pub(crate) fn cancel_error(&self) -> Error {
        let how = if self.0.cancelled.load(Ordering::Relaxed) {
            "its progress callback returned non-zero"
        } else {
            "it asked to cancel"
        };
        Error::new(
            ErrorKind::Cancelled,
            format!("the publish was cancelled by the host ({how})"),
        )
    }

    /// Runs `work` until it ends or the host cancels, whichever comes first; on a cancel the
    /// work is dropped where it waits (a network read or write, a back-off sleep, a job poll,
    /// a turn at the session) and the call gets the cancel error. A cancel asked for before
    /// starts nothing.
    pub(crate) async fn until_cancelled<T>(
        &self,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        use futures_util::future::{select, Either};
        if self.is_cancelled() {
            return Err(self.cancel_error());
        }
        let finished = {
            // Pinned in this block: a cancelled `work` is dropped (releasing whatever it
            // holds) before the host hears of the cancel.
            let work = std::pin::pin!(work);
            let cancelled = std::pin::pin!(self.0.host.until(|| self.is_cancelled()));
            match select(work, cancelled).await {
                Either::Left((done, _)) => Some(done),
                Either::Right(((), _)) => None,
            }
        };
        if let Some(done) = finished {
            return done;
        }
        let phase = self.current_phase().map_or("starting", Phase::name);
        self.log(
            LogLevel::Warn,
            &format!(
                "cancelled by the host while {phase}; stopping now, signing out and keeping the data"
            ),
        );
        Err(self.cancel_error())
    }

    /// The phase last reported.
    fn current_phase(&self) -> Option<Phase> {
        let state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        state.map(|p| p.phase)
    }

    /// Tells the host's log function (if any) one line. Called only on the call's thread, with
    /// no lock of the library held but the log function's own.
    pub(crate) fn log(&self, level: LogLevel, message: &str) {
        let mut log = self.0.log.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = log.as_mut() {
            f(level, message);
        }
    }

    /// Gives the callback back (after the publish), so the handle keeps it.
    pub(crate) fn take_callback(&self) -> Option<ProgressFn> {
        self.0
            .callback
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Gives the log function back (after the publish), so the handle keeps it.
    pub(crate) fn take_log(&self) -> Option<LogFn> {
        self.0.log.lock().unwrap_or_else(|e| e.into_inner()).take()
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
                self.0.host.wake();
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

    /// Reports the extract build: `done` of the `total` input bytes are in the extract. Also
    /// called as a heartbeat while hyperd loads, so the host's function can cancel.
    pub(crate) fn building(&self, done: u64, total: u64) {
        self.update(|p| {
            p.phase = Phase::BuildingExtract;
            p.bytes_sent = done;
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
