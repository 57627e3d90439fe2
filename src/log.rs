//! Log lines for the host: what a publish or preflight did that a user should see.
//!
//! Each re-authentication and why, each retry and each wait with its reason and delay, upload
//! restarts, waiting for a turn at a shared session, the sign-in and the publish at
//! [`LogLevel::Info`], and the final error (with the kept spool and the resume command) at
//! [`LogLevel::Error`]. Lines are delivered like progress: on the thread inside the blocking
//! call, never while the library holds a lock the function could need. They are built from the
//! same secret-free texts as error messages: no line ever holds a secret (a PAT secret, a
//! password, a JWT or a session token).

/// How much a log line matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogLevel {
    /// The call failed: the final error message.
    Error,
    /// Something went wrong and is being dealt with: a retry, a wait, a re-authentication, an
    /// upload restart.
    Warn,
    /// A milestone: signed in, published, waiting for a turn at the session.
    Info,
}

impl LogLevel {
    /// The level in words: `"error"`, `"warn"` or `"info"`.
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
        }
    }
}

/// The host's log function: the level and one line of UTF-8 text (no trailing newline).
pub type LogFn = Box<dyn FnMut(LogLevel, &str) + Send>;

/// A wait, for a log line: `"20 ms"`, `"1.4 s"`, `"12 s"`, `"29m"`.
pub(crate) fn delay(d: std::time::Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 1.0 {
        format!("{} ms", d.as_millis())
    } else if secs < 10.0 {
        format!("{secs:.1} s")
    } else if secs < 120.0 {
        format!("{secs:.0} s")
    } else {
        humantime::format_duration(std::time::Duration::from_secs(d.as_secs())).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn delays_read_naturally() {
        assert_eq!(delay(Duration::from_millis(42)), "42 ms");
        assert_eq!(delay(Duration::from_millis(1420)), "1.4 s");
        assert_eq!(delay(Duration::from_secs(12)), "12 s");
        assert_eq!(delay(Duration::from_secs(29 * 60)), "29m");
    }
}
