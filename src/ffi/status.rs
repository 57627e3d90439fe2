//! `tp_status`, its static descriptions, and version information.

use std::ffi::{c_char, CStr};

use crate::error::ErrorKind;

/// Result of every fallible call. Values are fixed and only ever appended to; 0 means success,
/// so `if (rc)` tests for failure. Details of a failure are in `tp_last_error()`.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tp_status {
    /// Success.
    TP_OK = 0,
    /// A NULL pointer, an invalid length or a string that is not UTF-8.
    TP_ERR_INVALID_ARGUMENT = 1,
    /// The configuration is invalid or incomplete (also: data that is not a Tableau file).
    TP_ERR_CONFIG = 2,
    /// The call is not allowed now (e.g. feeding after finalize, or finalize with no data).
    TP_ERR_STATE = 3,
    /// Local file I/O failed (spool directory missing, disk full).
    TP_ERR_IO = 4,
    /// Tableau refused the credentials or the session.
    TP_ERR_AUTH = 5,
    /// Tableau says the user may not do this.
    TP_ERR_PERMISSION = 6,
    /// Site, project or data source not found.
    TP_ERR_NOT_FOUND = 7,
    /// The data source already exists (mode create_new) or another conflict.
    TP_ERR_CONFLICT = 8,
    /// Tableau throttled the requests (HTTP 429).
    TP_ERR_RATE_LIMITED = 9,
    /// Tableau failed or answered unexpectedly.
    TP_ERR_SERVER = 10,
    /// The server could not be reached or the connection broke.
    TP_ERR_NETWORK = 11,
    /// A request or the publish job timed out.
    TP_ERR_TIMEOUT = 12,
    /// The publish was cancelled.
    TP_ERR_CANCELLED = 13,
    /// A bug in this library (including a caught panic). A handle whose call ended so answers
    /// `TP_ERR_INTERNAL` to every later call; `tp_free` still releases it.
    TP_ERR_INTERNAL = 14,
}

impl From<ErrorKind> for tp_status {
    fn from(kind: ErrorKind) -> tp_status {
        status_of(kind)
    }
}

/// The header's numbers are the kinds' numbers: checked when the crate compiles.
const _: () = {
    let mut i = 0;
    while i < ErrorKind::ALL.len() {
        let kind = ErrorKind::ALL[i];
        assert!(status_of(kind) as i32 == kind.code());
        i += 1;
    }
};

/// `tp_status::from`, usable in the compile-time check above.
const fn status_of(kind: ErrorKind) -> tp_status {
    match kind {
        ErrorKind::InvalidArgument => tp_status::TP_ERR_INVALID_ARGUMENT,
        ErrorKind::Config => tp_status::TP_ERR_CONFIG,
        ErrorKind::State => tp_status::TP_ERR_STATE,
        ErrorKind::Io => tp_status::TP_ERR_IO,
        ErrorKind::Auth => tp_status::TP_ERR_AUTH,
        ErrorKind::Permission => tp_status::TP_ERR_PERMISSION,
        ErrorKind::NotFound => tp_status::TP_ERR_NOT_FOUND,
        ErrorKind::Conflict => tp_status::TP_ERR_CONFLICT,
        ErrorKind::RateLimited => tp_status::TP_ERR_RATE_LIMITED,
        ErrorKind::Server => tp_status::TP_ERR_SERVER,
        ErrorKind::Network => tp_status::TP_ERR_NETWORK,
        ErrorKind::Timeout => tp_status::TP_ERR_TIMEOUT,
        ErrorKind::Cancelled => tp_status::TP_ERR_CANCELLED,
        ErrorKind::Internal => tp_status::TP_ERR_INTERNAL,
    }
}

impl tp_status {
    /// The static description.
    pub(crate) fn describe(self) -> &'static CStr {
        match self {
            tp_status::TP_OK => c"ok",
            tp_status::TP_ERR_INVALID_ARGUMENT => c"invalid argument",
            tp_status::TP_ERR_CONFIG => c"invalid configuration",
            tp_status::TP_ERR_STATE => c"call not allowed in this state",
            tp_status::TP_ERR_IO => c"local I/O error",
            tp_status::TP_ERR_AUTH => c"authentication failed",
            tp_status::TP_ERR_PERMISSION => c"permission denied",
            tp_status::TP_ERR_NOT_FOUND => c"not found",
            tp_status::TP_ERR_CONFLICT => c"conflict",
            tp_status::TP_ERR_RATE_LIMITED => c"rate limited",
            tp_status::TP_ERR_SERVER => c"server error",
            tp_status::TP_ERR_NETWORK => c"network error",
            tp_status::TP_ERR_TIMEOUT => c"timeout",
            tp_status::TP_ERR_CANCELLED => c"cancelled",
            tp_status::TP_ERR_INTERNAL => c"internal error",
        }
    }
}

/// Incremented on every incompatible change of the C ABI; compare with `tp_abi_version()`.
pub const TP_ABI_VERSION: u32 = 1;

/// The crate version, NUL-terminated.
pub(crate) const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the crate version contains a NUL"),
    };

/// Static description of a status; unknown values give "unknown status". Never NULL.
pub(crate) fn status_str(code: i32) -> *const c_char {
    let status = match code {
        0 => tp_status::TP_OK,
        _ => match ErrorKind::from_code(code) {
            Some(kind) => status_of(kind),
            None => return c"unknown status".as_ptr(),
        },
    };
    status.describe().as_ptr()
}
