//! The progress and log callbacks: typedefs, the C view of a progress report and of a log
//! level, and the adapters that turn a C function pointer plus `userdata` into the core's
//! progress and log functions.

use std::ffi::{c_char, c_void};

use super::last_error::to_cstring;
use crate::log::{LogFn, LogLevel};
use crate::progress::{Phase, Progress, ProgressFn};

/// What a publish is doing, as reported to the progress callback. Values are fixed.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tp_phase {
    /// Reading server info and signing in.
    TP_PHASE_SIGNING_IN = 1,
    /// Finding the project and checking the data source.
    TP_PHASE_RESOLVING = 2,
    /// Sending the file's bytes.
    TP_PHASE_UPLOADING = 3,
    /// Committing the publish.
    TP_PHASE_COMMITTING = 4,
    /// Waiting for the asynchronous publish job.
    TP_PHASE_WAITING_FOR_JOB = 5,
    /// Signing out.
    TP_PHASE_SIGNING_OUT = 6,
    /// Waiting for another publish with the same credentials to finish with the session (the
    /// server ends a session used from two connections at once, so they take turns).
    TP_PHASE_WAITING_FOR_SESSION = 7,
    /// Building the `.hyper` extract from the rows fed (CSV, Arrow stream, Parquet) with
    /// hyperd, after the last byte and before sign-in; `bytes_sent` of `bytes_total` input
    /// bytes are in the extract (reported at the start, about every half second, and at the end).
    TP_PHASE_BUILDING_EXTRACT = 8,
}

/// One progress report. Valid only during the callback.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug)]
pub struct tp_progress {
    /// The current phase.
    pub phase: tp_phase,
    /// File bytes handed to the connection in the current upload pass (starts again from 0
    /// when an upload is restarted in a new upload session).
    pub bytes_sent: u64,
    /// File bytes in all (0 until the upload starts).
    pub bytes_total: u64,
}

/// Called during `tp_finalize_and_publish` and `tp_preflight`, on the thread that called it,
/// at each phase change and as bytes are sent (every 2 MiB and at the end). Never called while
/// the library holds a lock the callback could need. It must not call the library with the same
/// handle: such calls get `TP_ERR_STATE` (other handles are fine; `tp_cancel` is allowed).
/// Return 0 to continue, non-zero to cancel: the call then stops as soon as possible with
/// `TP_ERR_CANCELLED`, signs out, and keeps the spool.
#[allow(non_camel_case_types)]
pub type tp_progress_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, progress: *const tp_progress) -> i32>;

impl From<Phase> for tp_phase {
    fn from(p: Phase) -> tp_phase {
        match p {
            Phase::SigningIn => tp_phase::TP_PHASE_SIGNING_IN,
            Phase::Resolving => tp_phase::TP_PHASE_RESOLVING,
            Phase::Uploading => tp_phase::TP_PHASE_UPLOADING,
            Phase::Committing => tp_phase::TP_PHASE_COMMITTING,
            Phase::WaitingForJob => tp_phase::TP_PHASE_WAITING_FOR_JOB,
            Phase::SigningOut => tp_phase::TP_PHASE_SIGNING_OUT,
            Phase::WaitingForSession => tp_phase::TP_PHASE_WAITING_FOR_SESSION,
            Phase::BuildingExtract => tp_phase::TP_PHASE_BUILDING_EXTRACT,
        }
    }
}

/// Adapts a C callback into the core's progress function. `userdata` is carried as an address
/// because the core requires `Send`; the contract says the callback only ever runs on the
/// thread inside `tp_finalize_and_publish`.
pub(crate) fn adapt(
    callback: unsafe extern "C" fn(*mut c_void, *const tp_progress) -> i32,
    userdata: *mut c_void,
) -> ProgressFn {
    let userdata = userdata as usize;
    Box::new(move |p: &Progress| {
        let report = tp_progress {
            phase: p.phase.into(),
            bytes_sent: p.bytes_sent,
            bytes_total: p.bytes_total,
        };
        // SAFETY: the host registered this function and userdata for exactly this use.
        unsafe { callback(userdata as *mut c_void, &report) == 0 }
    })
}

/// How much a log line matters, as passed to the log callback. Values are fixed.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tp_log_level {
    /// The call failed: the final error message (as `tp_last_error` will give it, with the
    /// kept spool and the command that publishes it again).
    TP_LOG_ERROR = 1,
    /// Something went wrong and is being dealt with: a retry or a wait (with its reason and
    /// delay), a re-authentication (and why), an upload restarted in a new upload session.
    TP_LOG_WARN = 2,
    /// A milestone: signed in, waiting for (and getting) a turn at a shared session, job
    /// accepted, published, signed out.
    TP_LOG_INFO = 3,
}

/// Called during `tp_finalize_and_publish` and `tp_preflight`, on the thread that called it,
/// with one line a user should see: `level` and `message`, UTF-8 and NUL-terminated, with no
/// trailing newline, valid only during the call (copy it to keep it). No message ever holds a
/// secret (a PAT secret, a password, a JWT or a session token). Never called while the library
/// holds a lock the callback could need. It must not call the library with the same handle:
/// such calls get `TP_ERR_STATE` (other handles are fine; `tp_cancel` is allowed).
#[allow(non_camel_case_types)]
pub type tp_log_callback = Option<
    unsafe extern "C" fn(userdata: *mut c_void, level: tp_log_level, message: *const c_char),
>;

impl From<LogLevel> for tp_log_level {
    fn from(level: LogLevel) -> tp_log_level {
        match level {
            LogLevel::Error => tp_log_level::TP_LOG_ERROR,
            LogLevel::Warn => tp_log_level::TP_LOG_WARN,
            LogLevel::Info => tp_log_level::TP_LOG_INFO,
        }
    }
}

/// Adapts a C log callback into the core's log function; `userdata` is carried as an address
/// for the same reason as in [`adapt`].
pub(crate) fn adapt_log(
    callback: unsafe extern "C" fn(*mut c_void, tp_log_level, *const c_char),
    userdata: *mut c_void,
) -> LogFn {
    let userdata = userdata as usize;
    Box::new(move |level: LogLevel, message: &str| {
        let text = to_cstring(message);
        // SAFETY: the host registered this function and userdata for exactly this use; the
        // text outlives the call.
        unsafe { callback(userdata as *mut c_void, level.into(), text.as_ptr()) }
    })
}
