//! Errors as data: a kind (with a stable number, the C ABI's status) and a message that names
//! the problem and the fix. Messages never contain secrets.

use std::fmt;

/// What went wrong, at the granularity a host can act on. Each kind has a stable number
/// ([`ErrorKind::code`]): the C ABI's status, `tabpub`'s exit code. Numbers are fixed and
/// only ever appended to; 0 is success and belongs to no kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(i32)]
pub enum ErrorKind {
    /// A NULL pointer, a bad length or a non-UTF-8 string from the caller.
    InvalidArgument = 1,
    /// The configuration is invalid or incomplete.
    Config = 2,
    /// The call is not allowed in the handle's current state.
    State = 3,
    /// Reading or writing local files (the spool) failed.
    Io = 4,
    /// Tableau refused the credentials or the session.
    Auth = 5,
    /// Tableau says the user may not do this.
    Permission = 6,
    /// Tableau could not find the site, project or data source.
    NotFound = 7,
    /// The data source already exists (create_new) or the request conflicts with server state.
    Conflict = 8,
    /// Tableau throttled the requests (HTTP 429).
    RateLimited = 9,
    /// Tableau answered with a server-side error or an unexpected response.
    Server = 10,
    /// The server could not be reached or the connection broke.
    Network = 11,
    /// A request or the publish job took longer than allowed.
    Timeout = 12,
    /// The publish was cancelled.
    Cancelled = 13,
    /// A bug in this library.
    Internal = 14,
}

impl ErrorKind {
    /// Every kind, in the order of their numbers.
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::InvalidArgument,
        ErrorKind::Config,
        ErrorKind::State,
        ErrorKind::Io,
        ErrorKind::Auth,
        ErrorKind::Permission,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::RateLimited,
        ErrorKind::Server,
        ErrorKind::Network,
        ErrorKind::Timeout,
        ErrorKind::Cancelled,
        ErrorKind::Internal,
    ];

    /// The kind's stable number (1–14).
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The kind with this number, if any.
    pub fn from_code(code: i32) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// An error with a human-readable message that says what to do about it.
#[derive(Clone, Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    tableau_code: Option<String>,
    http_status: Option<u16>,
    retry_after: Option<std::time::Duration>,
    not_sent: bool,
}

impl Error {
    /// Builds an error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            tableau_code: None,
            http_status: None,
            retry_after: None,
            not_sent: false,
        }
    }

    /// Records how long the server asked us to wait (HTTP 429).
    pub(crate) fn with_retry_after(mut self, wait: Option<std::time::Duration>) -> Self {
        self.retry_after = wait;
        self
    }

    /// How long the server asked us to wait before retrying, if it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// Marks a failure that happened before any byte of the request reached the server.
    pub(crate) fn mark_not_sent(mut self) -> Self {
        self.not_sent = true;
        self
    }

    /// Whether the request provably never reached the server (e.g. connection refused).
    pub fn not_sent(&self) -> bool {
        self.not_sent
    }

    /// Whether this is Tableau saying the session token is missing, expired or ended.
    pub fn is_session_ended(&self) -> bool {
        matches!(self.tableau_code(), Some("401000") | Some("401002"))
            || (self.http_status == Some(401) && self.tableau_code.is_none())
    }

    /// Records the server's answer: Tableau's error code (may be empty) and the HTTP status.
    pub fn with_code(mut self, tableau_code: &str, http_status: u16) -> Self {
        self.tableau_code = (!tableau_code.is_empty()).then(|| tableau_code.to_owned());
        self.http_status = Some(http_status);
        self
    }

    /// Tableau's error code (e.g. `"401002"`) when the server sent one.
    pub fn tableau_code(&self) -> Option<&str> {
        self.tableau_code.as_deref()
    }

    /// The HTTP status when the server answered.
    pub fn http_status(&self) -> Option<u16> {
        self.http_status
    }

    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The full message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Adds text to the end of the message (e.g. where the kept spool is).
    pub fn with_suffix(mut self, suffix: &str) -> Self {
        self.message.push_str(suffix);
        self
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    pub(crate) fn io(what: &str, err: &std::io::Error) -> Self {
        Error::new(ErrorKind::Io, format!("{what}: {err}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
