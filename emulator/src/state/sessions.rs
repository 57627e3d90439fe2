//! Auth sessions: creating them, authenticating a token, and ending or expiring them (sign-out,
//! a second sign-in with the same PAT, injected faults, the expiry schedules).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::sites::Pat;
use super::{ApiError, Shared, State};
use crate::util::random_hex32;
use crate::Config;

/// One auth session, stored under its token.
struct Session {
    serial: u64,
    site_id: String,
    user_id: String,
    created: Instant,
    created_wall: SystemTime,
    last_used: Instant,
    ended: bool,
    expired: bool,
    pat: Option<Pat>,
    /// Scopes granted by the connected-app JWT; `None` for password and PAT sessions.
    scopes: Option<Arc<Vec<String>>>,
    /// The connection that first used the token (see `Config::end_session_on_second_connection`).
    connection: Option<u64>,
}

/// Every auth session, and what decides when they end.
pub(super) struct Sessions {
    by_token: HashMap<String, Session>,
    next_serial: u64,
    /// The token of each PAT's live session.
    pat_live: HashMap<Pat, String>,
    token_ttl: Duration,
    /// Expire all sessions after this many more authenticated requests (one-shot).
    expire_after: Option<u64>,
    /// Expire the sessions that exist at this time, then (one-shot).
    expire_at: Option<SystemTime>,
}

impl Sessions {
    pub(super) fn new(token_ttl: Duration) -> Sessions {
        Sessions {
            by_token: HashMap::new(),
            next_serial: 1,
            pat_live: HashMap::new(),
            token_ttl,
            expire_after: None,
            expire_at: None,
        }
    }
}

/// A session just created by a sign-in or a site switch.
#[derive(Clone, Debug)]
pub(crate) struct SignedIn {
    pub token: String,
    pub serial: u64,
    pub site_id: String,
    pub user_id: String,
}

/// The caller of an authenticated request.
#[derive(Clone, Debug)]
pub(crate) struct Auth {
    pub serial: u64,
    pub site_id: String,
    pub user_id: String,
    /// Scopes of a JWT session; `None` (everything allowed) for password and PAT sessions.
    pub scopes: Option<Arc<Vec<String>>>,
}

impl Auth {
    /// Ok if this is not a JWT session or its scopes include one of `any_of` (the first one is
    /// named in the error).
    pub(crate) fn require_scope(&self, any_of: &[&str]) -> Result<(), ApiError> {
        match &self.scopes {
            None => Ok(()),
            Some(granted) if any_of.iter().any(|s| granted.iter().any(|g| g == s)) => Ok(()),
            Some(_) => Err(ApiError::missing_scope(
                any_of.first().copied().unwrap_or(""),
            )),
        }
    }
}

impl State {
    /// A new session; a PAT's previous live session is ended.
    pub(super) fn new_session(
        &mut self,
        site_id: &str,
        user_id: &str,
        pat: Option<Pat>,
        scopes: Option<Arc<Vec<String>>>,
    ) -> SignedIn {
        let s = &mut self.sessions;
        if let Some(key) = &pat {
            if let Some(old) = s.pat_live.get(key).cloned() {
                if let Some(old) = s.by_token.get_mut(&old) {
                    old.ended = true;
                }
            }
        }
        let token = format!("{}|{}", random_hex32(), site_id);
        let serial = s.next_serial;
        s.next_serial += 1;
        let now = Instant::now();
        if let Some(key) = &pat {
            s.pat_live.insert(key.clone(), token.clone());
        }
        s.by_token.insert(
            token.clone(),
            Session {
                serial,
                site_id: site_id.to_owned(),
                user_id: user_id.to_owned(),
                created: now,
                created_wall: SystemTime::now(),
                last_used: now,
                ended: false,
                expired: false,
                pat,
                scopes,
                connection: None,
            },
        );
        SignedIn {
            token,
            serial,
            site_id: site_id.to_owned(),
            user_id: user_id.to_owned(),
        }
    }

    /// Validate a token (and extend its idle lifetime).
    /// Checks `token`, sent on TCP connection `connection`.
    pub(crate) fn authenticate(
        &mut self,
        token: Option<&str>,
        cfg: &Config,
        connection: u64,
    ) -> Result<Auth, ApiError> {
        let token = match token {
            Some(t) if !t.trim().is_empty() => t.trim(),
            _ => return Err(ApiError::no_credentials()),
        };
        let ttl = self.sessions.token_ttl;
        let s = self
            .sessions
            .by_token
            .get_mut(token)
            .ok_or_else(ApiError::invalid_credentials)?;
        if s.ended {
            return Err(ApiError::invalid_credentials());
        }
        // As one maintainer statement says Tableau does (unconfirmed): reusing a session token
        // on a second connection logs the first out.
        if cfg.end_session_on_second_connection {
            match s.connection {
                Some(c) if c != connection => {
                    s.ended = true;
                    return Err(ApiError::invalid_credentials());
                }
                _ => s.connection = Some(connection),
            }
        }
        let now = Instant::now();
        let since = if cfg.absolute_token_ttl {
            s.created
        } else {
            s.last_used
        };
        if s.expired || now.duration_since(since) >= ttl {
            s.expired = true;
            let detail = match cfg.expired_token_code.as_str() {
                "401000" => "No authentication credentials were provided.",
                "401002" => "Invalid authentication credentials were provided.",
                _ => "The authentication token has expired.",
            };
            return Err(ApiError::new(
                401,
                &cfg.expired_token_code,
                "Unauthorized Access",
                detail,
            ));
        }
        s.last_used = now;
        Ok(Auth {
            serial: s.serial,
            site_id: s.site_id.clone(),
            user_id: s.user_id.clone(),
            scopes: s.scopes.clone(),
        })
    }

    /// Serial of the session a token names, whatever its state (for the log).
    pub(crate) fn session_serial(&self, token: &str) -> Option<u64> {
        self.sessions.by_token.get(token.trim()).map(|s| s.serial)
    }

    /// The PAT a session was signed in with, if any.
    pub(super) fn session_pat(&self, token: &str) -> Option<Pat> {
        self.sessions
            .by_token
            .get(token.trim())
            .and_then(|s| s.pat.clone())
    }

    pub(crate) fn sign_out(&mut self, token: &str) {
        let s = &mut self.sessions;
        if let Some(session) = s.by_token.get_mut(token.trim()) {
            session.ended = true;
            if let Some(k) = session.pat.clone() {
                if s.pat_live.get(&k).map(String::as_str) == Some(token.trim()) {
                    s.pat_live.remove(&k);
                }
            }
        }
    }

    /// End a session as if its PAT had signed in again elsewhere: a PAT's live session is
    /// replaced by a new one (whose token nobody knows); any other session is just ended.
    /// Returns whether the token named a session that was still usable.
    pub(crate) fn kill_session(&mut self, token: &str) -> bool {
        let token = token.trim();
        let Some(s) = self.sessions.by_token.get(token) else {
            return false;
        };
        if s.ended {
            return false;
        }
        let (site_id, user_id, pat) = (s.site_id.clone(), s.user_id.clone(), s.pat.clone());
        let live = pat
            .as_ref()
            .is_some_and(|k| self.sessions.pat_live.get(k).map(String::as_str) == Some(token));
        if live {
            self.new_session(&site_id, &user_id, pat, None);
        }
        if let Some(s) = self.sessions.by_token.get_mut(token) {
            s.ended = true;
        }
        true
    }

    pub(crate) fn expire_session(&mut self, token: &str) {
        if let Some(s) = self.sessions.by_token.get_mut(token.trim()) {
            s.expired = true;
        }
    }

    /// Expire the live sessions (those created at or before `created_by`, if given).
    fn expire_sessions(&mut self, created_by: Option<SystemTime>) {
        for s in self.sessions.by_token.values_mut() {
            if !s.ended && created_by.is_none_or(|t| s.created_wall <= t) {
                s.expired = true;
            }
        }
    }

    /// Apply a due `expire_at` schedule.
    pub(super) fn settle_expiry(&mut self) {
        if let Some(at) = self.sessions.expire_at {
            if SystemTime::now() >= at {
                self.sessions.expire_at = None;
                self.expire_sessions(Some(at));
            }
        }
    }

    /// Count one handled request that passed token authentication (for `expire_after`).
    pub(crate) fn count_authenticated_request(&mut self) {
        if let Some(n) = self.sessions.expire_after {
            if n <= 1 {
                self.sessions.expire_after = None;
                self.expire_sessions(None);
            } else {
                self.sessions.expire_after = Some(n - 1);
            }
        }
    }
}

impl Shared {
    pub(crate) fn expire_all_tokens(&self) {
        self.lock().expire_sessions(None);
    }

    pub(crate) fn expire_tokens_after_requests(&self, n: u64) {
        let mut st = self.lock();
        if n == 0 {
            st.sessions.expire_after = None;
            st.expire_sessions(None);
        } else {
            st.sessions.expire_after = Some(n);
        }
    }

    pub(crate) fn expire_tokens_at(&self, at: SystemTime) {
        let mut st = self.lock();
        st.sessions.expire_at = Some(at);
        st.settle_expiry();
    }

    pub(crate) fn set_token_ttl(&self, ttl: Duration) {
        self.lock().sessions.token_ttl = ttl;
    }
}
