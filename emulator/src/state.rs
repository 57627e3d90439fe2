//! The emulator's model: sites, users, projects, sessions, upload sessions, data sources, jobs,
//! faults and the request log. Everything here is synchronous and runs under one mutex that is
//! never held across an `.await`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use sha2::Sha256;

use crate::jwt::ConnectedApp;
use crate::util::{iso8601, new_luid, random_hex32, random_range};
use crate::{
    Config, DatasourceOp, Fault, FaultAction, LoggedRequest, PublishedDatasource, SeedProject,
    UploadSessionInfo,
};

/// A Tableau error response.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: u16,
    pub code: String,
    pub summary: String,
    pub detail: String,
    pub retry_after: Option<String>,
}

impl ApiError {
    pub(crate) fn new(
        status: u16,
        code: &str,
        summary: &str,
        detail: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code: code.to_owned(),
            summary: summary.to_owned(),
            detail: detail.into(),
            retry_after: None,
        }
    }
    pub(crate) fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(400, "400000", "Bad Request", detail)
    }
    pub(crate) fn malformed() -> ApiError {
        ApiError::bad_request("Payload is either malformed XML or incomplete")
    }
    pub(crate) fn bad_filter(detail: impl Into<String>) -> ApiError {
        ApiError::new(400, "400006", "Bad Request", detail)
    }
    pub(crate) fn publish_problem(file: &str) -> ApiError {
        ApiError::new(
            400,
            "400011",
            "Bad Request",
            format!("There was a problem publishing the file '{file}'."),
        )
    }
    pub(crate) fn too_large(detail: impl Into<String>) -> ApiError {
        ApiError::new(413, "413000", "Payload Too Large", detail)
    }
    pub(crate) fn unknown_resource(rest: &str) -> ApiError {
        ApiError::new(
            404,
            "404003",
            "Resource Not Found",
            format!("Unknown resource '{rest}' specified in URI."),
        )
    }
    pub(crate) fn method_not_allowed(method: &str) -> ApiError {
        ApiError::new(
            405,
            "405000",
            "Method Not Allowed",
            format!("The HTTP method '{method}' is not supported for the given resource"),
        )
    }
    pub(crate) fn no_credentials() -> ApiError {
        ApiError::new(
            401,
            "401000",
            "Unauthorized Access",
            "No authentication credentials were provided.",
        )
    }
    pub(crate) fn invalid_credentials() -> ApiError {
        ApiError::new(
            401,
            "401002",
            "Unauthorized Access",
            "Invalid authentication credentials were provided.",
        )
    }
    pub(crate) fn signin_error() -> ApiError {
        ApiError::new(
            401,
            "401001",
            "Signin Error",
            "Error signing in to Tableau Server",
        )
    }
    /// A connected-app sign-in failure: 401001 with Tableau's error number in the detail.
    pub(crate) fn jwt_signin_error(n: u32) -> ApiError {
        ApiError::new(
            401,
            "401001",
            "Signin Error",
            format!("Error signing in to Tableau Server (errorCode={n})"),
        )
    }
    /// A JWT session calling an endpoint its scopes do not cover (a choice; see the README).
    pub(crate) fn missing_scope(scope: &str) -> ApiError {
        ApiError::new(
            403,
            "403157",
            "Forbidden",
            format!("The JWT does not grant scope '{scope}' needed for this call."),
        )
    }
}

pub(crate) struct Site {
    pub id: String,
    pub content_url: String,
    pub name: String,
}

pub(crate) struct User {
    pub id: String,
    pub site_id: String,
    pub name: String,
    pub password: Option<String>,
    pub site_role: String,
    pub pats: Vec<(String, String)>,
}

#[derive(Clone)]
pub(crate) struct Project {
    pub id: String,
    pub site_id: String,
    pub name: String,
    pub description: String,
    pub parent_id: Option<String>,
    pub owner_id: String,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

struct Session {
    serial: u64,
    site_id: String,
    user_id: String,
    created: Instant,
    created_wall: SystemTime,
    last_used: Instant,
    ended: bool,
    expired: bool,
    pat: Option<(String, String)>,
    /// Scopes granted by the connected-app JWT; `None` for password and PAT sessions.
    scopes: Option<Arc<Vec<String>>>,
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

pub(crate) struct UploadSession {
    pub id: String,
    pub site_id: String,
    pub auth_serial: u64,
    pub data: tokio::sync::Mutex<UploadData>,
}

pub(crate) struct UploadData {
    /// Where the bytes are appended (not created when `discard_data`).
    pub path: PathBuf,
    pub bytes: u64,
    pub hasher: Sha256,
    /// The first bytes of the upload (for the magic-number check at commit).
    pub head: Vec<u8>,
    pub consumed: bool,
}

/// A file ready to become (part of) a data source.
#[derive(Clone, Debug)]
pub(crate) struct Staged {
    pub path: Option<PathBuf>,
    pub size: u64,
    pub sha256: String,
    pub head: Vec<u8>,
}

impl Staged {
    pub(crate) fn discard(&self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Create,
    Overwrite,
    Append,
}

pub(crate) struct PendingPublish {
    pub site_id: String,
    pub project_id: String,
    pub name: String,
    pub description: Option<String>,
    pub mode: Mode,
    pub file_type: String,
    pub staged: Staged,
    pub owner_id: String,
}

pub(crate) struct Datasource {
    pub id: String,
    pub site_id: String,
    pub name: String,
    pub description: String,
    pub content_url: String,
    pub project_id: String,
    pub owner_id: String,
    pub file_type: String,
    pub size: u64,
    pub sha256: String,
    pub history: Vec<DatasourceOp>,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
    pub path: Option<PathBuf>,
}

pub(crate) struct JobOutcome {
    pub completed_at: SystemTime,
    pub finish_code: u8,
    pub notes: Option<String>,
    pub datasource: Option<(String, String)>,
}

pub(crate) struct Job {
    pub id: String,
    pub site_id: String,
    pub created_at: SystemTime,
    pub created: Instant,
    pub due: Instant,
    pub pending: Option<PendingPublish>,
    pub fail_notes: Option<String>,
    pub outcome: Option<JobOutcome>,
}

struct FaultState {
    fault: Fault,
    seen: u32,
}

pub(crate) struct State {
    pub sites: Vec<Site>,
    pub users: Vec<User>,
    pub projects: Vec<Project>,
    connected_apps: Vec<ConnectedApp>,
    /// (client id, jti) of accepted JWTs → their `exp`, to refuse replays until they expire.
    jwt_seen: HashMap<(String, String), f64>,
    sessions: HashMap<String, Session>,
    next_serial: u64,
    pat_live: HashMap<(String, String), String>,
    pub uploads: HashMap<String, Arc<UploadSession>>,
    pub datasources: Vec<Datasource>,
    pub jobs: HashMap<String, Job>,
    open_jobs: usize,
    faults: Vec<FaultState>,
    log: Vec<LoggedRequest>,
    next_seq: u64,
    token_ttl: Duration,
    upload_counter: u64,
    /// Expire all sessions after this many more authenticated requests (one-shot).
    expire_after: Option<u64>,
    /// Expire the sessions that exist at this time, then (one-shot).
    expire_at: Option<SystemTime>,
    /// Every upload session ever created, in creation order, and the index by id.
    upload_infos: Vec<UploadSessionInfo>,
    upload_index: HashMap<String, usize>,
}

pub(crate) struct Shared {
    pub cfg: Config,
    pub data_dir: PathBuf,
    pub log_stderr: AtomicBool,
    st: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(cfg: Config, data_dir: PathBuf) -> Shared {
        let mut st = State {
            sites: vec![],
            users: vec![],
            projects: vec![],
            connected_apps: vec![],
            jwt_seen: HashMap::new(),
            sessions: HashMap::new(),
            next_serial: 1,
            pat_live: HashMap::new(),
            uploads: HashMap::new(),
            datasources: vec![],
            jobs: HashMap::new(),
            open_jobs: 0,
            faults: vec![],
            log: vec![],
            next_seq: 1,
            token_ttl: cfg.token_ttl,
            upload_counter: random_range(1000, 9000),
            expire_after: None,
            expire_at: None,
            upload_infos: vec![],
            upload_index: HashMap::new(),
        };
        let now = SystemTime::now();
        for s in &cfg.seed.sites {
            let site_id = new_luid();
            st.sites.push(Site {
                id: site_id.clone(),
                content_url: s.content_url.clone(),
                name: s.name.clone().unwrap_or_else(|| {
                    if s.content_url.is_empty() {
                        "Default".to_owned()
                    } else {
                        s.content_url.clone()
                    }
                }),
            });
            let mut owner = None;
            for u in &s.users {
                let id = new_luid();
                owner.get_or_insert_with(|| id.clone());
                st.users.push(User {
                    id,
                    site_id: site_id.clone(),
                    name: u.name.clone(),
                    password: u.password.clone(),
                    site_role: u.site_role.clone(),
                    pats: u
                        .pats
                        .iter()
                        .map(|p| (p.name.clone(), p.secret.clone()))
                        .collect(),
                });
            }
            for a in &s.connected_apps {
                match st
                    .connected_apps
                    .iter_mut()
                    .find(|x| x.site_id == site_id && x.client_id == a.client_id)
                {
                    Some(x) => {
                        x.enabled &= a.enabled;
                        x.secrets
                            .push((a.secret_id.clone(), a.secret_value.clone()));
                    }
                    None => st.connected_apps.push(ConnectedApp {
                        site_id: site_id.clone(),
                        client_id: a.client_id.clone(),
                        enabled: a.enabled,
                        secrets: vec![(a.secret_id.clone(), a.secret_value.clone())],
                    }),
                }
            }
            let owner = owner.unwrap_or_else(new_luid);
            fn add(
                st: &mut State,
                site: &str,
                owner: &str,
                parent: Option<&str>,
                p: &SeedProject,
                now: SystemTime,
            ) {
                let id = new_luid();
                st.projects.push(Project {
                    id: id.clone(),
                    site_id: site.to_owned(),
                    name: p.name.clone(),
                    description: p.description.clone().unwrap_or_default(),
                    parent_id: parent.map(str::to_owned),
                    owner_id: owner.to_owned(),
                    created_at: now,
                    updated_at: now,
                });
                for c in &p.children {
                    add(st, site, owner, Some(&id), c, now);
                }
            }
            for p in &s.projects {
                add(&mut st, &site_id, &owner, None, p, now);
            }
        }
        Shared {
            cfg,
            data_dir,
            log_stderr: AtomicBool::new(std::env::var_os("TABLEAU_EMULATOR_LOG").is_some()),
            st: Mutex::new(st),
        }
    }

    /// Lock the state, completing any due jobs and a due token-expiry schedule first.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        let mut g = self.st.lock().unwrap_or_else(|e| e.into_inner());
        g.settle_jobs(&self.data_dir);
        g.settle_expiry();
        g
    }

    // ---- library / control API ----

    pub(crate) fn datasources(&self) -> Vec<PublishedDatasource> {
        let st = self.lock();
        st.datasources.iter().map(|d| st.published(d)).collect()
    }

    pub(crate) fn requests(&self) -> Vec<LoggedRequest> {
        let st = self.lock();
        let mut v = st.log.clone();
        v.sort_by_key(|r| r.seq);
        v
    }

    pub(crate) fn expire_all_tokens(&self) {
        self.lock().expire_sessions(None);
    }

    pub(crate) fn expire_tokens_after_requests(&self, n: u64) {
        let mut st = self.lock();
        if n == 0 {
            st.expire_after = None;
            st.expire_sessions(None);
        } else {
            st.expire_after = Some(n);
        }
    }

    pub(crate) fn expire_tokens_at(&self, at: SystemTime) {
        let mut st = self.lock();
        st.expire_at = Some(at);
        st.settle_expiry();
    }

    pub(crate) fn sign_in_elsewhere(&self, site: &str, pat_name: &str) -> bool {
        let mut st = self.lock();
        let Some(site_id) = st.site_by_content_url(site).map(|s| s.id.clone()) else {
            return false;
        };
        let secret = st
            .users
            .iter()
            .filter(|u| u.site_id == site_id)
            .flat_map(|u| u.pats.iter())
            .find(|(n, _)| n == pat_name)
            .map(|(_, sec)| sec.clone());
        let Some(secret) = secret else {
            return false;
        };
        let creds = crate::xml::SignIn {
            name: None,
            password: None,
            pat_name: Some(pat_name.to_owned()),
            pat_secret: Some(secret),
            site: site.to_owned(),
            ..Default::default()
        };
        st.sign_in(&creds).is_ok()
    }

    pub(crate) fn set_connected_app_enabled(
        &self,
        site: &str,
        client_id: &str,
        enabled: bool,
    ) -> bool {
        let mut st = self.lock();
        let Some(site_id) = st.site_by_content_url(site).map(|s| s.id.clone()) else {
            return false;
        };
        match st
            .connected_apps
            .iter_mut()
            .find(|a| a.site_id == site_id && a.client_id == client_id)
        {
            Some(a) => {
                a.enabled = enabled;
                true
            }
            None => false,
        }
    }

    pub(crate) fn upload_sessions(&self) -> Vec<UploadSessionInfo> {
        self.lock().upload_infos.clone()
    }

    pub(crate) fn set_token_ttl(&self, ttl: Duration) {
        self.lock().token_ttl = ttl;
    }

    pub(crate) fn inject_fault(&self, fault: Fault) {
        self.lock().faults.push(FaultState { fault, seen: 0 });
    }

    pub(crate) fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    pub(crate) fn add_project(
        &self,
        site: &str,
        parent: Option<&str>,
        name: &str,
    ) -> Result<String, String> {
        let mut st = self.lock();
        let site_id = st
            .site_by_content_url(site)
            .map(|s| s.id.clone())
            .ok_or_else(|| format!("unknown site {site:?}"))?;
        if let Some(p) = parent {
            if !st
                .projects
                .iter()
                .any(|x| x.id == p && x.site_id == site_id)
            {
                return Err(format!("unknown parent project {p:?} on site {site:?}"));
            }
        }
        let owner = st
            .users
            .iter()
            .find(|u| u.site_id == site_id)
            .map(|u| u.id.clone())
            .unwrap_or_else(new_luid);
        let id = new_luid();
        let now = SystemTime::now();
        st.projects.push(Project {
            id: id.clone(),
            site_id,
            name: name.to_owned(),
            description: String::new(),
            parent_id: parent.map(str::to_owned),
            owner_id: owner,
            created_at: now,
            updated_at: now,
        });
        Ok(id)
    }

    pub(crate) fn project_id(&self, site: &str, path: &[&str]) -> Option<String> {
        let st = self.lock();
        let site_id = st.site_by_content_url(site)?.id.clone();
        let mut parent: Option<String> = None;
        for name in path {
            let p = st
                .projects
                .iter()
                .find(|p| p.site_id == site_id && p.parent_id == parent && p.name == *name)?;
            parent = Some(p.id.clone());
        }
        parent
    }
}

impl State {
    // ---- log and faults ----

    pub(crate) fn next_seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    pub(crate) fn push_log(&mut self, r: LoggedRequest) {
        self.log.push(r);
    }

    /// Count this request against every matching fault; return the first that applies.
    pub(crate) fn match_fault(&mut self, method: &str, target: &str) -> Option<FaultAction> {
        let mut hit = None;
        for f in &mut self.faults {
            let m = f
                .fault
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && f.fault
                    .path_contains
                    .as_deref()
                    .is_none_or(|p| target.contains(p));
            if !m {
                continue;
            }
            f.seen += 1;
            let nth = f.fault.nth.max(1);
            if hit.is_none() && f.seen >= nth && f.seen < nth.saturating_add(f.fault.times) {
                hit = Some(f.fault.action.clone());
            }
        }
        hit
    }

    // ---- sites, users, sessions ----

    pub(crate) fn site_by_content_url(&self, cu: &str) -> Option<&Site> {
        self.sites
            .iter()
            .find(|s| s.content_url.eq_ignore_ascii_case(cu))
    }

    pub(crate) fn site(&self, id: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.id == id)
    }

    pub(crate) fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    fn new_session(
        &mut self,
        site_id: &str,
        user_id: &str,
        pat: Option<(String, String)>,
        scopes: Option<Arc<Vec<String>>>,
    ) -> (String, u64) {
        if let Some(key) = &pat {
            if let Some(old) = self.pat_live.get(key).cloned() {
                if let Some(s) = self.sessions.get_mut(&old) {
                    s.ended = true;
                }
            }
        }
        let token = format!("{}|{}", random_hex32(), site_id);
        let serial = self.next_serial;
        self.next_serial += 1;
        let now = Instant::now();
        if let Some(key) = &pat {
            self.pat_live.insert(key.clone(), token.clone());
        }
        self.sessions.insert(
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
            },
        );
        (token, serial)
    }

    /// Sign in; returns (token, serial, site id, user id).
    pub(crate) fn sign_in(
        &mut self,
        s: &crate::xml::SignIn,
    ) -> Result<(String, u64, String, String), ApiError> {
        let site_id = self
            .site_by_content_url(&s.site)
            .map(|x| x.id.clone())
            .ok_or_else(ApiError::signin_error)?;
        if s.is_uat {
            // Unified access tokens (Tableau Cloud) are not emulated.
            return Err(ApiError::signin_error());
        }
        if let Some(jwt) = &s.jwt {
            let impersonate = s.impersonate.as_deref().is_some_and(|t| !t.is_empty());
            return self.sign_in_jwt(jwt, &site_id, impersonate);
        }
        let on_site = |u: &&User| u.site_id == site_id;
        let (user_id, pat) = if let (Some(n), Some(sec)) = (&s.pat_name, &s.pat_secret) {
            let u = self
                .users
                .iter()
                .filter(on_site)
                .find(|u| u.pats.iter().any(|(pn, ps)| pn == n && ps == sec))
                .ok_or_else(ApiError::signin_error)?;
            (u.id.clone(), Some((n.clone(), sec.clone())))
        } else if let (Some(n), Some(pw)) = (&s.name, &s.password) {
            let u = self
                .users
                .iter()
                .filter(on_site)
                .find(|u| {
                    u.name.eq_ignore_ascii_case(n) && u.password.as_deref() == Some(pw.as_str())
                })
                .ok_or_else(ApiError::signin_error)?;
            (u.id.clone(), None)
        } else {
            return Err(ApiError::signin_error());
        };
        let user_id = match &s.impersonate {
            Some(target) if !target.is_empty() => {
                let admin = self
                    .user(&user_id)
                    .is_some_and(|u| u.site_role.contains("Administrator"));
                if !admin
                    || !self
                        .users
                        .iter()
                        .any(|u| u.id == *target && u.site_id == site_id)
                {
                    return Err(ApiError::signin_error());
                }
                target.clone()
            }
            _ => user_id,
        };
        let (token, serial) = self.new_session(&site_id, &user_id, pat, None);
        Ok((token, serial, site_id, user_id))
    }

    /// Connected-app (direct trust) sign-in. Failures are 401001 with `(errorCode=N)`.
    fn sign_in_jwt(
        &mut self,
        jwt: &str,
        site_id: &str,
        impersonate: bool,
    ) -> Result<(String, u64, String, String), ApiError> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let apps: Vec<&ConnectedApp> = self
            .connected_apps
            .iter()
            .filter(|a| a.site_id == site_id)
            .collect();
        let v = crate::jwt::verify(jwt, &apps, now).map_err(ApiError::jwt_signin_error)?;
        let login_failed = || ApiError::jwt_signin_error(crate::jwt::LOGIN_FAILED);
        if impersonate {
            // The JWT names the user; `<user id>` is not allowed with it (a choice).
            return Err(login_failed());
        }
        // `sub` is the user name, matched case-sensitively.
        let user_id = self
            .users
            .iter()
            .find(|u| u.site_id == site_id && u.name == v.sub)
            .map(|u| u.id.clone())
            .ok_or_else(login_failed)?;
        self.jwt_seen
            .retain(|_, exp| *exp > now - crate::jwt::SKEW_SECS);
        let key = (v.client_id.clone(), v.jti.clone());
        if self.jwt_seen.contains_key(&key) {
            return Err(login_failed());
        }
        self.jwt_seen.insert(key, v.exp);
        let (token, serial) = self.new_session(site_id, &user_id, None, Some(Arc::new(v.scopes)));
        Ok((token, serial, site_id.to_owned(), user_id))
    }

    /// Validate a token (and extend its idle lifetime).
    pub(crate) fn authenticate(
        &mut self,
        token: Option<&str>,
        cfg: &Config,
    ) -> Result<Auth, ApiError> {
        let token = match token {
            Some(t) if !t.trim().is_empty() => t.trim(),
            _ => return Err(ApiError::no_credentials()),
        };
        let ttl = self.token_ttl;
        let s = self
            .sessions
            .get_mut(token)
            .ok_or_else(ApiError::invalid_credentials)?;
        if s.ended {
            return Err(ApiError::invalid_credentials());
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
        self.sessions.get(token.trim()).map(|s| s.serial)
    }

    /// End a session as if its PAT had signed in again elsewhere: a PAT's live session is
    /// replaced by a new one (whose token nobody knows); any other session is just ended.
    /// Returns whether the token named a session that was still usable.
    pub(crate) fn kill_session(&mut self, token: &str) -> bool {
        let token = token.trim();
        let Some(s) = self.sessions.get(token) else {
            return false;
        };
        if s.ended {
            return false;
        }
        let (site_id, user_id, pat) = (s.site_id.clone(), s.user_id.clone(), s.pat.clone());
        let live = pat
            .as_ref()
            .is_some_and(|k| self.pat_live.get(k).map(String::as_str) == Some(token));
        if live {
            self.new_session(&site_id, &user_id, pat, None);
        }
        if let Some(s) = self.sessions.get_mut(token) {
            s.ended = true;
        }
        true
    }

    /// Expire the live sessions (those created at or before `created_by`, if given).
    fn expire_sessions(&mut self, created_by: Option<SystemTime>) {
        for s in self.sessions.values_mut() {
            if !s.ended && created_by.is_none_or(|t| s.created_wall <= t) {
                s.expired = true;
            }
        }
    }

    /// Apply a due `expire_at` schedule.
    fn settle_expiry(&mut self) {
        if let Some(at) = self.expire_at {
            if SystemTime::now() >= at {
                self.expire_at = None;
                self.expire_sessions(Some(at));
            }
        }
    }

    /// Count one handled request that passed token authentication (for `expire_after`).
    pub(crate) fn count_authenticated_request(&mut self) {
        if let Some(n) = self.expire_after {
            if n <= 1 {
                self.expire_after = None;
                self.expire_sessions(None);
            } else {
                self.expire_after = Some(n - 1);
            }
        }
    }

    pub(crate) fn expire_session(&mut self, token: &str) {
        if let Some(s) = self.sessions.get_mut(token.trim()) {
            s.expired = true;
        }
    }

    pub(crate) fn sign_out(&mut self, token: &str) {
        if let Some(s) = self.sessions.get_mut(token.trim()) {
            s.ended = true;
            if let Some(k) = s.pat.clone() {
                if self.pat_live.get(&k).map(String::as_str) == Some(token.trim()) {
                    self.pat_live.remove(&k);
                }
            }
        }
    }

    /// Switch the session's site: a new session for the same user name on the other site.
    pub(crate) fn switch_site(
        &mut self,
        token: &str,
        auth: &Auth,
        content_url: &str,
    ) -> Result<(String, u64, String, String), ApiError> {
        let target = self
            .site_by_content_url(content_url)
            .map(|s| s.id.clone())
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "404000",
                    "Resource Not Found",
                    format!("Site '{content_url}' could not be found."),
                )
            })?;
        if target == auth.site_id {
            return Err(ApiError::new(
                403,
                "403070",
                "Forbidden",
                format!("The user is already signed in to site '{content_url}'."),
            ));
        }
        let name = self
            .user(&auth.user_id)
            .map(|u| u.name.clone())
            .unwrap_or_default();
        let user_id = self
            .users
            .iter()
            .find(|u| u.site_id == target && u.name.eq_ignore_ascii_case(&name))
            .map(|u| u.id.clone())
            .ok_or_else(|| {
                ApiError::new(
                    403,
                    "403000",
                    "Forbidden",
                    format!("The user is not a member of site '{content_url}'."),
                )
            })?;
        let pat = self.sessions.get(token.trim()).and_then(|s| s.pat.clone());
        self.sign_out(token);
        // A JWT session keeps its scopes on the new site (a choice).
        let (t, serial) = self.new_session(&target, &user_id, pat, auth.scopes.clone());
        Ok((t, serial, target, user_id))
    }

    // ---- projects ----

    pub(crate) fn project(&self, site_id: &str, id: &str) -> Option<&Project> {
        self.projects
            .iter()
            .find(|p| p.site_id == site_id && p.id == id)
    }

    pub(crate) fn default_project(&self, site_id: &str) -> Option<&Project> {
        self.projects
            .iter()
            .find(|p| p.site_id == site_id && p.parent_id.is_none() && p.name == "default")
    }

    // ---- upload sessions ----

    pub(crate) fn new_upload(
        &mut self,
        site_id: &str,
        auth_serial: u64,
        data_dir: &Path,
    ) -> String {
        self.upload_counter += 1;
        let hex = random_hex32();
        let id = format!("{}:{}-1:0", self.upload_counter, hex);
        let sess = UploadSession {
            id: id.clone(),
            site_id: site_id.to_owned(),
            auth_serial,
            data: tokio::sync::Mutex::new(UploadData {
                path: data_dir.join("uploads").join(format!("{hex}.upload")),
                bytes: 0,
                hasher: <Sha256 as sha2::Digest>::new(),
                head: Vec::new(),
                consumed: false,
            }),
        };
        self.uploads.insert(id.clone(), Arc::new(sess));
        self.upload_index
            .insert(id.clone(), self.upload_infos.len());
        self.upload_infos.push(UploadSessionInfo {
            id: id.clone(),
            bytes: 0,
            appends: 0,
            committed: false,
        });
        id
    }

    /// Record an applied append (`bytes` is the session's new total).
    pub(crate) fn note_append(&mut self, id: &str, bytes: u64) {
        if let Some(&i) = self.upload_index.get(id) {
            let info = &mut self.upload_infos[i];
            info.bytes = bytes;
            info.appends += 1;
        }
    }

    /// Record that a publish consumed an upload session.
    pub(crate) fn note_committed(&mut self, id: &str) {
        if let Some(&i) = self.upload_index.get(id) {
            self.upload_infos[i].committed = true;
        }
    }

    /// Look up an upload session usable by this caller.
    pub(crate) fn upload_for(
        &self,
        id: &str,
        auth: &Auth,
        bind: bool,
    ) -> Result<Arc<UploadSession>, ApiError> {
        let nf = || {
            ApiError::new(
                404,
                "404000",
                "Resource Not Found",
                format!("Upload session '{id}' could not be found."),
            )
        };
        let s = self.uploads.get(id).ok_or_else(nf)?;
        if s.site_id != auth.site_id || (bind && s.auth_serial != auth.serial) {
            return Err(nf());
        }
        Ok(s.clone())
    }

    // ---- data sources ----

    pub(crate) fn published(&self, d: &Datasource) -> PublishedDatasource {
        PublishedDatasource {
            id: d.id.clone(),
            site: self
                .site(&d.site_id)
                .map(|s| s.content_url.clone())
                .unwrap_or_default(),
            name: d.name.clone(),
            content_url: d.content_url.clone(),
            project_id: d.project_id.clone(),
            project_name: self
                .project(&d.site_id, &d.project_id)
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            file_type: d.file_type.clone(),
            size: d.size,
            sha256: d.sha256.clone(),
            history: d.history.clone(),
            created_at: iso8601(d.created_at),
            updated_at: iso8601(d.updated_at),
        }
    }

    fn find_ds(&self, site_id: &str, project_id: &str, name: &str) -> Option<usize> {
        self.datasources
            .iter()
            .position(|d| d.site_id == site_id && d.project_id == project_id && d.name == name)
    }

    /// The checks a publish must pass before anything is stored (run again when a job applies).
    pub(crate) fn check_publish(&self, p: &PendingPublish) -> Result<(), ApiError> {
        let project = self.project(&p.site_id, &p.project_id).ok_or_else(|| {
            ApiError::new(
                404,
                "404005",
                "Resource Not Found",
                format!("Project '{}' could not be found.", p.project_id),
            )
        })?;
        let existing = self.find_ds(&p.site_id, &p.project_id, &p.name);
        match p.mode {
            Mode::Append if existing.is_none() => Err(ApiError::new(
                404,
                "404012",
                "Resource Not Found",
                format!(
                    "Data source '{}' could not be found in project '{}'; append needs an existing data source.",
                    p.name, project.name
                ),
            )),
            Mode::Create if existing.is_some() => Err(ApiError::new(
                403,
                "403007",
                "Forbidden",
                format!(
                    "The datasource '{}' already exists and may not be overwritten without the 'overwrite' flag set to 'true'.",
                    p.name
                ),
            )),
            _ => Ok(()),
        }
    }

    fn unique_content_url(&self, site_id: &str, name: &str) -> String {
        let mut base: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        if base.is_empty() {
            base = "datasource".to_owned();
        }
        let taken = |u: &str| {
            self.datasources
                .iter()
                .any(|d| d.site_id == site_id && d.content_url == u)
        };
        if !taken(&base) {
            return base;
        }
        (1..)
            .map(|i| format!("{base}_{i}"))
            .find(|u| !taken(u))
            .unwrap()
    }

    /// Store a publish. On error the staged file is left for the caller to discard.
    pub(crate) fn apply_publish(
        &mut self,
        p: PendingPublish,
        data_dir: &Path,
    ) -> Result<String, Box<(ApiError, PendingPublish)>> {
        if let Err(e) = self.check_publish(&p) {
            return Err(Box::new((e, p)));
        }
        let now = SystemTime::now();
        let dir = data_dir.join("datasources");
        let place = |from: &Option<PathBuf>, to: PathBuf| -> Option<PathBuf> {
            let from = from.as_ref()?;
            if std::fs::rename(from, &to).is_err() {
                // Different file system: copy then remove.
                std::fs::copy(from, &to).ok()?;
                let _ = std::fs::remove_file(from);
            }
            Some(to)
        };
        let op = |name: &str| DatasourceOp {
            op: name.to_owned(),
            size: p.staged.size,
            sha256: p.staged.sha256.clone(),
        };
        match (p.mode, self.find_ds(&p.site_id, &p.project_id, &p.name)) {
            (Mode::Append, Some(i)) => {
                let n = self.datasources[i].history.len();
                let d = &mut self.datasources[i];
                let _ = place(
                    &p.staged.path,
                    dir.join(format!("{}.append-{n}.{}", d.id, p.file_type)),
                );
                d.size = p.staged.size;
                d.sha256 = p.staged.sha256.clone();
                d.history.push(op("append"));
                d.updated_at = now;
                Ok(d.id.clone())
            }
            (Mode::Overwrite, Some(i)) => {
                let d = &mut self.datasources[i];
                let target = dir.join(format!("{}.{}", d.id, p.file_type));
                if let Some(old) = d.path.take() {
                    if old != target {
                        let _ = std::fs::remove_file(old);
                    }
                }
                d.path = place(&p.staged.path, target);
                d.file_type = p.file_type.clone();
                d.size = p.staged.size;
                d.sha256 = p.staged.sha256.clone();
                if let Some(desc) = &p.description {
                    d.description = desc.clone();
                }
                d.history.push(op("overwrite"));
                d.updated_at = now;
                Ok(d.id.clone())
            }
            _ => {
                let id = new_luid();
                let content_url = self.unique_content_url(&p.site_id, &p.name);
                let path = place(&p.staged.path, dir.join(format!("{id}.{}", p.file_type)));
                self.datasources.push(Datasource {
                    id: id.clone(),
                    site_id: p.site_id.clone(),
                    name: p.name.clone(),
                    description: p.description.clone().unwrap_or_default(),
                    content_url,
                    project_id: p.project_id.clone(),
                    owner_id: p.owner_id.clone(),
                    file_type: p.file_type.clone(),
                    size: p.staged.size,
                    sha256: p.staged.sha256.clone(),
                    history: vec![op("create")],
                    created_at: now,
                    updated_at: now,
                    path,
                });
                Ok(id)
            }
        }
    }

    // ---- jobs ----

    pub(crate) fn add_job(
        &mut self,
        site_id: &str,
        pending: PendingPublish,
        duration: Duration,
        fail_notes: Option<String>,
    ) -> String {
        let id = new_luid();
        let now = Instant::now();
        self.jobs.insert(
            id.clone(),
            Job {
                id: id.clone(),
                site_id: site_id.to_owned(),
                created_at: SystemTime::now(),
                created: now,
                due: now + duration,
                pending: Some(pending),
                fail_notes,
                outcome: None,
            },
        );
        self.open_jobs += 1;
        id
    }

    fn settle_jobs(&mut self, data_dir: &Path) {
        if self.open_jobs == 0 {
            return;
        }
        let now = Instant::now();
        let mut due: Vec<(Instant, String)> = self
            .jobs
            .values()
            .filter(|j| j.outcome.is_none() && j.due <= now)
            .map(|j| (j.due, j.id.clone()))
            .collect();
        due.sort();
        for (_, id) in due {
            let (pending, fail) = {
                let j = self.jobs.get_mut(&id).unwrap();
                (j.pending.take(), j.fail_notes.clone())
            };
            let outcome = match (pending, fail) {
                (Some(p), Some(notes)) => {
                    p.staged.discard();
                    JobOutcome {
                        completed_at: SystemTime::now(),
                        finish_code: 1,
                        notes: Some(notes),
                        datasource: None,
                    }
                }
                (Some(p), None) => {
                    let name = p.name.clone();
                    match self.apply_publish(p, data_dir) {
                        Ok(ds) => JobOutcome {
                            completed_at: SystemTime::now(),
                            finish_code: 0,
                            notes: None,
                            datasource: Some((ds, name)),
                        },
                        Err(err) => {
                            let (e, p) = *err;
                            p.staged.discard();
                            JobOutcome {
                                completed_at: SystemTime::now(),
                                finish_code: 1,
                                notes: Some(format!("{}: {}", e.code, e.detail)),
                                datasource: None,
                            }
                        }
                    }
                }
                (None, notes) => JobOutcome {
                    completed_at: SystemTime::now(),
                    finish_code: 1,
                    notes,
                    datasource: None,
                },
            };
            self.jobs.get_mut(&id).unwrap().outcome = Some(outcome);
            self.open_jobs -= 1;
        }
    }
}
