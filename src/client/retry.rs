//! When a failed call may be sent again, and how long to wait first.
//!
//! Idempotent calls retry on connection failures, timeouts, 5xx and 429 with full-jitter
//! exponential backoff; calls that change server state (append, commit) are re-sent only when
//! the failure proves they did not apply. 429 waits as long as the server asks (Retry-After in
//! seconds or as an HTTP date, or "retry after N minutes" in Tableau's error detail), up to a
//! configured limit.

use std::time::{Duration, SystemTime};

use exponential_backoff::Backoff;

use crate::config::RetrySettings;
use crate::error::{Error, ErrorKind};

/// Limits on retrying one call, from the config's `"retry"` object (whose defaults are
/// [`RetrySettings::default`]).
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Longest time spent retrying one call (waits included).
    pub max_elapsed: Duration,
    /// Backoff base: waits are drawn uniformly from [0, min(max_delay, base·2ⁿ)]·2.
    pub base_delay: Duration,
    /// Cap on a single backoff wait.
    pub max_delay: Duration,
    /// Longest wait honoured for a 429; a longer request fails as
    /// [`ErrorKind::RateLimited`].
    pub max_rate_limit_wait: Duration,
}

impl From<&RetrySettings> for RetryPolicy {
    fn from(r: &RetrySettings) -> RetryPolicy {
        RetryPolicy {
            max_attempts: r.max_attempts,
            max_elapsed: Duration::from_secs(r.max_elapsed_secs),
            base_delay: Duration::from_millis(r.base_delay_ms),
            max_delay: Duration::from_millis(r.max_delay_ms),
            max_rate_limit_wait: Duration::from_secs(r.max_rate_limit_wait_secs),
        }
    }
}

impl RetryPolicy {
    /// The backoff schedule for one call: the waits before attempts 2, 3, …. It does not
    /// count attempts; the caller stops at `max_attempts`.
    pub fn backoff(&self) -> Waits {
        // Never exhausted in practice: the caller's count ends long before.
        let mut b = Backoff::new(u32::MAX, self.base_delay / 2, self.max_delay);
        // Jitter 1.0 draws each wait uniformly from [0, 2·d]: "full jitter" around d.
        b.set_jitter(1.0);
        Waits {
            waits: b.into_iter(),
            cap: self.max_delay,
        }
    }
}

/// The backoff waits of one call, in order.
pub struct Waits {
    waits: exponential_backoff::IntoIter,
    cap: Duration,
}

impl Waits {
    /// The wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        self.waits.next().flatten().unwrap_or(self.cap)
    }
}

/// Whether a call that failed with `e` changed nothing on the server and may be re-sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Permanent: report it.
    No,
    /// Transient: wait (backoff) and re-send.
    Backoff,
    /// Throttled: wait this long and re-send.
    Wait(Duration),
}

/// Decides for an idempotent call (GET, sign-in, initiate upload, sign-out).
pub fn for_idempotent(e: &Error, policy: &RetryPolicy) -> Retry {
    if e.http_status() == Some(429) {
        return rate_limited(e, policy);
    }
    match e.kind() {
        ErrorKind::Network | ErrorKind::Timeout => Retry::Backoff,
        _ if e.http_status().is_some_and(|s| s >= 500 || s == 408) => Retry::Backoff,
        _ => Retry::No,
    }
}

/// Decides for a call that changes state (append, commit): only when it provably did not apply.
pub fn for_state_changing(e: &Error, policy: &RetryPolicy) -> Retry {
    if e.http_status() == Some(429) {
        return rate_limited(e, policy);
    }
    if e.not_sent() {
        return Retry::Backoff;
    }
    Retry::No
}

fn rate_limited(e: &Error, policy: &RetryPolicy) -> Retry {
    match e.retry_after() {
        Some(wait) if wait <= policy.max_rate_limit_wait => Retry::Wait(wait),
        Some(_) => Retry::No,
        None => Retry::Backoff,
    }
}

/// Whether a failure of a state-changing call leaves it unknown whether it applied: the
/// request may have reached the server (reset mid-body, timeout, 5xx after the body went out).
pub fn is_ambiguous(e: &Error) -> bool {
    if e.not_sent() || e.http_status() == Some(429) || e.is_session_ended() {
        return false;
    }
    match e.http_status() {
        Some(s) => s >= 500 || s == 408,
        None => matches!(e.kind(), ErrorKind::Network | ErrorKind::Timeout),
    }
}

/// How long a 429 asks us to wait: the `Retry-After` header (seconds or HTTP date), else
/// "retry after N seconds|minutes|hours" in the error detail (as Tableau Cloud writes it).
pub fn requested_wait(header: Option<&str>, detail: &str, now: SystemTime) -> Option<Duration> {
    if let Some(h) = header.map(str::trim) {
        if let Ok(secs) = h.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(at) = httpdate::parse_http_date(h) {
            return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
        }
    }
    let lower = detail.to_ascii_lowercase();
    let at = lower.find("retry after ")? + "retry after ".len();
    let mut words = lower[at..].split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    let unit = words.next().unwrap_or("seconds");
    let secs = if unit.starts_with("minute") {
        n * 60
    } else if unit.starts_with("hour") {
        n * 3600
    } else {
        n
    };
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(
            requested_wait(Some("30"), "", now),
            Some(Duration::from_secs(30))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            requested_wait(Some(&later), "", now),
            Some(Duration::from_secs(90))
        );
        let detail =
            "Too many requests for 'api.rest.refresh_extracts'. Please retry after 29 minutes.";
        assert_eq!(
            requested_wait(None, detail, now),
            Some(Duration::from_secs(29 * 60))
        );
        assert_eq!(
            requested_wait(None, "Please retry after 2 seconds", now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(requested_wait(None, "slow down", now), None);
        assert_eq!(requested_wait(Some("soon"), "", now), None);
    }

    #[test]
    fn state_changing_calls_retry_only_when_provably_not_applied() {
        let p = RetryPolicy::from(&RetrySettings::default());
        let server = Error::new(ErrorKind::Server, "x").with_code("", 503);
        assert_eq!(for_idempotent(&server, &p), Retry::Backoff);
        assert_eq!(for_state_changing(&server, &p), Retry::No);
        assert!(is_ambiguous(&server));
        let refused = Error::new(ErrorKind::Network, "x").mark_not_sent();
        assert_eq!(for_state_changing(&refused, &p), Retry::Backoff);
        assert!(!is_ambiguous(&refused));
        let reset = Error::new(ErrorKind::Network, "x");
        assert_eq!(for_state_changing(&reset, &p), Retry::No);
        assert!(is_ambiguous(&reset));
        let throttled = Error::new(ErrorKind::RateLimited, "x")
            .with_code("429000", 429)
            .with_retry_after(Some(Duration::from_secs(3)));
        assert_eq!(
            for_state_changing(&throttled, &p),
            Retry::Wait(Duration::from_secs(3))
        );
        let long = throttled
            .clone()
            .with_retry_after(Some(Duration::from_secs(3600)));
        assert_eq!(for_idempotent(&long, &p), Retry::No);
        let clash = Error::new(ErrorKind::Conflict, "x").with_code("403007", 403);
        assert_eq!(for_idempotent(&clash, &p), Retry::No);
        assert!(!is_ambiguous(&clash));
    }

    #[test]
    fn backoff_is_bounded() {
        let p = RetryPolicy::from(&RetrySettings::default());
        let mut backoff = p.backoff();
        let waits: Vec<_> = (0..40).map(|_| backoff.next_wait()).collect();
        assert!(waits
            .iter()
            .all(|d| *d >= p.base_delay / 2 && *d <= p.max_delay));
        assert_eq!(waits[39], p.max_delay);
    }

    #[test]
    fn the_policy_is_the_configured_retry_settings() {
        let p = RetryPolicy::from(&RetrySettings {
            max_attempts: 2,
            max_elapsed_secs: 3,
            base_delay_ms: 4,
            max_delay_ms: 5,
            max_rate_limit_wait_secs: 6,
            ..RetrySettings::default()
        });
        assert_eq!(p.max_attempts, 2);
        assert_eq!(p.max_elapsed, Duration::from_secs(3));
        assert_eq!(p.base_delay, Duration::from_millis(4));
        assert_eq!(p.max_delay, Duration::from_millis(5));
        assert_eq!(p.max_rate_limit_wait, Duration::from_secs(6));
    }
}
