//! The REST calls the publisher makes, with the session they need.
//!
//! Every call goes through `Api::call`: it signs in again when Tableau says the session
//! ended (`401000`/`401002`) and re-sends, retries what is safe to retry (see [`retry`]), and
//! records the server's clock. Methods take `&self`; the session lives in cells because the
//! publish runs on one thread and never holds a borrow across an await.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder};

use super::http::{Http, Response};
use super::multipart::{self, FilePart};
use super::retry::{self, Retry, RetryPolicy};
use super::session::{self, Shared, SignedIn, Token};
use super::xml::{self, Datasource, FileUpload, Job, Pagination, Project, Published};
use super::xml_attr;
use crate::api_version::ApiVersion;
use crate::config::Auth;
use crate::error::{Error, ErrorKind, Result};
use crate::log::{self, LogLevel};
use crate::progress::Reporter;

/// The newest REST API version this client was written against.
const CLIENT_MAX_API_VERSION: ApiVersion = ApiVersion::new(3, 28);
/// The version used for the Server Info call (available since 2.4).
const SERVER_INFO_VERSION: ApiVersion = ApiVersion::new(2, 4);
/// Since this version Tableau's own client percent-encodes a filter's delimiters too.
const ENCODED_FILTER_DELIMITERS: ApiVersion = ApiVersion::new(3, 7);
/// Page size for listings (Tableau's maximum).
const PAGE_SIZE: u32 = 1000;

/// Characters escaped in query values: everything but unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One `field:eq:value` filter term.
pub struct Filter<'a> {
    /// Field name, e.g. `name`.
    pub field: &'a str,
    /// Value (compared with `eq`).
    pub value: &'a str,
}

impl Filter<'_> {
    /// Whether Tableau's filter syntax can carry the value (it cannot contain `,` or `&`).
    pub fn is_expressible(value: &str) -> bool {
        !value.contains([',', '&'])
    }
}

/// Parses one page of a listing.
type ListParser<T> = fn(&xml::Element) -> std::result::Result<(Pagination, Vec<T>), String>;

/// Counters reported in the result JSON.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// Successful sign-ins.
    pub sign_ins: u64,
    /// Upload sessions initiated.
    pub upload_sessions: u64,
    /// Retries of calls that failed transiently (not counting re-sign-ins).
    pub retries: u64,
}

/// How a call may be repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Safe to repeat (GET, initiate upload, sign-in).
    Idempotent,
    /// Changes server state (append, commit): re-sent only if it provably did not apply.
    StateChanging,
    /// Sign-out: idempotent, and still sent after the host cancelled.
    Cleanup,
}

/// Query parameters of Publish Data Source.
pub struct PublishParams<'a> {
    /// `overwrite=true`.
    pub overwrite: bool,
    /// `append=true`.
    pub append: bool,
    /// `asJob=true`.
    pub as_job: bool,
    /// Commit this upload session instead of sending the file in the body.
    pub upload_session_id: Option<&'a str>,
    /// `datasourceType` (required with an upload session).
    pub datasource_type: &'a str,
}

/// A client for one server, site and set of credentials.
pub struct Api {
    http: Http,
    site: String,
    auth: Auth,
    policy: RetryPolicy,
    max_reauthentications: u32,
    /// The newest this client knows until negotiated or set.
    version: ApiVersion,
    /// The session, shared with every client of this process using the same credentials.
    shared: Arc<Shared>,
    /// The token this client sends (the shared one, as this client last saw it).
    token: RefCell<Option<Arc<Token>>>,
    /// Whether this client has stopped using the shared session.
    left: Cell<bool>,
    /// This client's turn at the session, once the clients take turns (see [`Shared::queue`]).
    turn: RefCell<Option<tokio::sync::OwnedMutexGuard<()>>>,
    /// Longest wait for that turn.
    session_wait: Duration,
    reauthentications: Cell<u32>,
    counters: Cell<Counters>,
    server_time: Cell<Option<SystemTime>>,
    reporter: Reporter,
}

impl Api {
    /// A client for `server` that signs in to `site` with `auth` when asked, sharing the
    /// session with the other clients of this process that use the same credentials there.
    pub fn new(
        http: Http,
        server: &str,
        site: &str,
        auth: &Auth,
        policy: RetryPolicy,
        max_reauthentications: u32,
    ) -> Result<Api> {
        let shared = session::join(&session_key(server, site, auth)?);
        Ok(Api {
            http,
            site: site.to_owned(),
            auth: auth.clone(),
            policy,
            max_reauthentications,
            version: CLIENT_MAX_API_VERSION,
            shared,
            token: RefCell::new(None),
            left: Cell::new(false),
            turn: RefCell::new(None),
            session_wait: Duration::from_secs(4 * 3600),
            reauthentications: Cell::new(0),
            counters: Cell::new(Counters::default()),
            server_time: Cell::new(None),
            reporter: Reporter::default(),
        })
    }

    /// Waits at most `limit` for its turn when publishes with these credentials must take turns.
    pub fn with_session_wait(mut self, limit: Duration) -> Api {
        self.session_wait = limit;
        self
    }

    /// Reports progress to (and takes cancellation from) `reporter`.
    pub fn with_reporter(mut self, reporter: Reporter) -> Api {
        self.reporter = reporter;
        self
    }

    fn check_cancelled(&self, kind: Kind) -> Result<()> {
        if kind != Kind::Cleanup && self.reporter.is_cancelled() {
            return Err(self.reporter.cancel_error());
        }
        Ok(())
    }

    /// One line for the host's log. Never given a secret: only names, counts and the texts of
    /// errors, which hold none.
    fn log(&self, level: LogLevel, message: &str) {
        self.reporter.log(level, message);
    }

    /// E.g. `signed in to site "qa" of https://tableau.example.com as personal access token
    /// "ci" (REST API 3.25)`.
    fn signed_in(&self, what: &str) -> String {
        let site = if self.site.is_empty() {
            "the Default site".to_owned()
        } else {
            format!("site \"{}\"", self.site)
        };
        let who = match &self.auth {
            Auth::Pat { token_name, .. } => format!("personal access token \"{token_name}\""),
            Auth::Password { username, .. } => format!("user \"{username}\""),
            Auth::ConnectedApp {
                client_id,
                username,
                ..
            } => format!("user \"{username}\" through connected app \"{client_id}\""),
        };
        format!(
            "{what} to {site} of {} as {who} (REST API {})",
            self.http.base(),
            self.version
        )
    }

    /// The REST API version in use.
    pub fn version(&self) -> ApiVersion {
        self.version
    }

    /// Counters so far.
    pub fn counters(&self) -> Counters {
        self.counters.get()
    }

    fn bump(&self, f: impl FnOnce(&mut Counters)) {
        let mut c = self.counters.get();
        f(&mut c);
        self.counters.set(c);
    }

    /// HTTP requests so far.
    pub fn http_requests(&self) -> u64 {
        self.http.requests()
    }

    /// The signed-in site's LUID.
    pub fn site_id(&self) -> Option<String> {
        self.token.borrow().as_ref().map(|t| t.site_id.clone())
    }

    /// The server's clock at its last answer.
    pub fn server_time(&self) -> Option<SystemTime> {
        self.server_time.get()
    }

    /// Uses `version` without asking the server.
    pub fn set_version(&mut self, version: ApiVersion) {
        self.version = version;
    }

    /// Sends a request built by `build(token)`, retrying as `kind` allows. With `authed`, a
    /// `401000`/`401002` leads to one new sign-in and one re-send.
    async fn call(
        &self,
        what: &str,
        kind: Kind,
        authed: bool,
        build: &dyn Fn(Option<&str>) -> Result<RequestBuilder>,
    ) -> Result<Response> {
        let started = Instant::now();
        // The waits before retries; how many retries there may be is counted below.
        let mut backoff = self.policy.backoff();
        let mut reauthenticated = false;
        let mut attempts = 1u32;
        loop {
            self.check_cancelled(kind)?;
            if authed && self.shared.queued() && self.turn.borrow().is_none() {
                self.take_turn(what).await?;
            }
            let token = if authed {
                let t = self.token.borrow().clone();
                Some(t.ok_or_else(|| {
                    Error::new(
                        ErrorKind::Internal,
                        format!("{what} was called before signing in"),
                    )
                })?)
            } else {
                None
            };
            let sent = build(token.as_ref().map(|t| t.value.as_str()))?;
            let err = match self.http.send(sent, what).await {
                Ok(resp) => {
                    if let Some(date) = resp.date {
                        self.server_time.set(Some(date));
                    }
                    return Ok(resp);
                }
                Err(e) => e,
            };
            self.check_cancelled(kind)?;
            if authed && err.is_session_ended() {
                if self.shared.queued() && self.turn.borrow().is_none() {
                    continue; // take a turn, with a session of its own, and send again
                }
                if reauthenticated {
                    // A fresh token that dies at once while other clients use it: the server
                    // ends a session used from two connections. Take turns instead of sharing.
                    if !self.shared.queued() && self.shared.users() > 1 {
                        self.log(
                            LogLevel::Warn,
                            &format!(
                                "{} during {what} again, right after signing in, while other publishes with the same credentials use it: this server ends a session used from two connections at once, so from now on they take turns",
                                session_ended(&err)
                            ),
                        );
                        self.shared.queue();
                        reauthenticated = false;
                        continue;
                    }
                    return Err(self.session_keeps_dying(err));
                }
                let used = self.reauthentications.get();
                if used < self.max_reauthentications {
                    self.log(
                        LogLevel::Warn,
                        &format!(
                            "{} during {what}; signing in again (re-authentication {} of at most {})",
                            session_ended(&err),
                            used + 1,
                            self.max_reauthentications
                        ),
                    );
                }
                let stale = token.as_ref().map(|t| t.generation);
                self.reauthenticate(&err, stale).await?;
                reauthenticated = true;
                continue;
            }
            let decision = match kind {
                Kind::Idempotent | Kind::Cleanup => retry::for_idempotent(&err, &self.policy),
                Kind::StateChanging => retry::for_state_changing(&err, &self.policy),
            };
            let wait = match decision {
                Retry::No => return Err(self.explain_rate_limit(err)),
                Retry::Wait(d) => d,
                Retry::Backoff => backoff.next_wait(),
            };
            if attempts >= self.policy.max_attempts
                || started.elapsed() + wait > self.policy.max_elapsed
            {
                return Err(gave_up(self.explain_rate_limit(err), attempts, started));
            }
            attempts += 1;
            self.bump(|c| c.retries += 1);
            self.log(
                LogLevel::Warn,
                &format!(
                    "{what}: {}; retrying in {} (attempt {attempts} of {})",
                    retry_reason(&err, decision),
                    log::delay(wait),
                    self.policy.max_attempts
                ),
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn explain_rate_limit(&self, e: Error) -> Error {
        match (e.http_status(), e.retry_after()) {
            (Some(429), Some(wait)) if wait > self.policy.max_rate_limit_wait => {
                let when = humantime::format_rfc3339_seconds(SystemTime::now() + wait);
                e.with_suffix(&format!(
                    " Tableau asks to wait {} s, longer than \"max_rate_limit_wait_secs\" ({} s); publish again after {when} (the data is kept), or raise that limit.",
                    wait.as_secs(),
                    self.policy.max_rate_limit_wait.as_secs()
                ))
            }
            _ => e,
        }
    }

    fn session_keeps_dying(&self, e: Error) -> Error {
        let who = match &self.auth {
            Auth::Pat { token_name, .. } => format!(
                "the personal access token \"{token_name}\" is probably used by another job at the same time (Tableau allows one session per token: each sign-in ends the previous session). Give each concurrent job its own token"
            ),
            Auth::Password { username, .. } | Auth::ConnectedApp { username, .. } => format!(
                "something ends the sessions of \"{username}\" as soon as they start (another job signing in, or an administrator); find it, or use a personal access token for this job"
            ),
        };
        Error::new(
            ErrorKind::Auth,
            format!(
                "{}. The session ended again right after signing in: {who}.",
                e.message()
            ),
        )
        .with_code(
            e.tableau_code().unwrap_or(""),
            e.http_status().unwrap_or(401),
        )
    }

    /// After the session ended: a new token (signed in by this client, or by another that
    /// noticed first), counted in this client's bound either way.
    async fn reauthenticate(&self, cause: &Error, stale: Option<u64>) -> Result<()> {
        let used = self.reauthentications.get();
        if used >= self.max_reauthentications {
            return Err(Error::new(
                ErrorKind::Auth,
                format!(
                    "{} The session ended {} times during this publish, more than \"max_reauthentications\" allows; check for other jobs using the same credentials.",
                    cause.message(),
                    used + 1
                ),
            )
            .with_code(cause.tableau_code().unwrap_or(""), cause.http_status().unwrap_or(401)));
        }
        self.reauthentications.set(used + 1);
        // Boxed: signing in goes through `call` too (unauthenticated, so it never comes back).
        Box::pin(self.renew(stale)).await
    }

    /// Waits for this client's turn at the session (reported as waiting for the session), then
    /// signs in: the token before belongs to the connection of the client whose turn it was.
    async fn take_turn(&self, what: &str) -> Result<()> {
        use futures_util::future::{select, Either};
        let started = Instant::now();
        let deadline = started + self.session_wait;
        self.log(
            LogLevel::Info,
            &format!(
                "{what}: waiting for the other publishes using the same credentials to finish with the session (this server ends a session used from two connections at once, so they take turns; at most {}, \"session_wait_secs\")",
                log::delay(self.session_wait)
            ),
        );
        let mut waiting = std::pin::pin!(self.shared.take_turn());
        let turn = loop {
            // Told again every second, so the host can cancel while it waits.
            self.reporter
                .phase(crate::progress::Phase::WaitingForSession);
            self.check_cancelled(Kind::Idempotent)?;
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "{what}: waited {} s for the other publishes using the same credentials to finish with the session (this server ends a session used from two connections at once, so they take turns); raise \"session_wait_secs\", or give each concurrent job its own credentials",
                        self.session_wait.as_secs()
                    ),
                ));
            }
            let tick = std::pin::pin!(tokio::time::sleep(Duration::from_secs(1)));
            match select(waiting.as_mut(), tick).await {
                Either::Left((turn, _)) => break turn,
                Either::Right(_) => {}
            }
        };
        *self.turn.borrow_mut() = Some(turn);
        self.log(
            LogLevel::Info,
            &format!(
                "got the turn at the session after waiting {}; signing in with a session of its own",
                log::delay(started.elapsed())
            ),
        );
        self.check_cancelled(Kind::Idempotent)?;
        self.reporter.phase(crate::progress::Phase::SigningIn);
        Box::pin(self.renew(None)).await
    }

    /// Uses the shared session's token, signing in when there is none: only one client of
    /// the session signs in at a time, and the others then use its token.
    pub async fn sign_in(&self) -> Result<()> {
        self.renew(None).await
    }

    /// Signs in afresh when the session is at least `max` old (unless another client of the
    /// session just did).
    pub async fn renew_if_older(&self, max: Duration) -> Result<()> {
        let stale = self
            .token
            .borrow()
            .as_ref()
            .filter(|t| t.age() >= max)
            .map(|t| t.generation);
        match stale {
            Some(generation) => {
                self.log(
                    LogLevel::Info,
                    &format!(
                        "the session is older than \"session_max_age_secs\" ({}); signing in again",
                        log::delay(max)
                    ),
                );
                self.renew(Some(generation)).await
            }
            None => Ok(()),
        }
    }

    /// A token newer than generation `stale`; see [`Shared::renew`]. Once the clients take
    /// turns, a token of this client's own, in its turn.
    async fn renew(&self, stale: Option<u64>) -> Result<()> {
        if self.shared.queued() {
            if self.turn.borrow().is_none() {
                return Box::pin(self.take_turn("Sign In")).await;
            }
            let token = self.shared.private(self.sign_in_request().await?);
            self.bump(|c| c.sign_ins += 1);
            *self.token.borrow_mut() = Some(token);
            self.log(LogLevel::Info, &self.signed_in("signed in"));
            return Ok(());
        }
        match self.shared.renew(stale, self.sign_in_request()).await? {
            Some((token, signed_in)) => {
                if signed_in {
                    self.bump(|c| c.sign_ins += 1);
                }
                *self.token.borrow_mut() = Some(token);
                self.log(
                    LogLevel::Info,
                    &self.signed_in(if signed_in {
                        "signed in"
                    } else {
                        "joined the session another publish with the same credentials signed in"
                    }),
                );
                Ok(())
            }
            // The clients began taking turns meanwhile.
            None => Box::pin(self.take_turn("Sign In")).await,
        }
    }

    /// Reads Server Info (no sign-in needed) and picks min(server, client) as the version.
    pub async fn negotiate_version(&mut self) -> Result<()> {
        let path = format!("/api/{SERVER_INFO_VERSION}/serverinfo");
        let what = &format!("Server Info (GET {path})");
        let resp = self
            .call(what, Kind::Idempotent, false, &|_| Ok(self.http.request(Method::GET, &path)))
            .await
            .map_err(|e| {
                if e.http_status() == Some(404) {
                    e.with_suffix(" If this server does not offer Server Info, set \"api_version\" in the config.")
                } else {
                    e
                }
            })?;
        let info = xml::server_info(&resp.xml(what)?).map_err(|e| bad_answer(what, &e))?;
        let server: ApiVersion = info.rest_api_version.parse().map_err(|_| {
            bad_answer(
                what,
                &format!(
                    "restApiVersion \"{}\" is not a version",
                    info.rest_api_version
                ),
            )
        })?;
        self.version = server.min(CLIENT_MAX_API_VERSION);
        Ok(())
    }

    fn site_path(&self, rest: &str) -> Result<String> {
        let site = self.site_id().ok_or_else(|| {
            Error::new(
                ErrorKind::Internal,
                "a site call was made before signing in",
            )
        })?;
        Ok(format!("/api/{}/sites/{site}{rest}", self.version))
    }

    fn with_token(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let req = self.http.request(method, path);
        match token {
            Some(t) => req.header("X-Tableau-Auth", t),
            None => req,
        }
    }

    /// A request with a freshly built (streamed) multipart body.
    fn multipart(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        payload_xml: &str,
        file: Option<FilePart<'_>>,
    ) -> Result<RequestBuilder> {
        let body = multipart::body(payload_xml, file, &self.reporter, self.http.activity())?;
        Ok(self
            .with_token(method, path, token)
            .header(CONTENT_TYPE, body.content_type)
            .header(CONTENT_LENGTH, body.content_length)
            .body(body.body))
    }

    /// The Sign In request itself, reading secrets from the environment now.
    async fn sign_in_request(&self) -> Result<SignedIn> {
        let site_xml = xml_attr::escape("\"site\"", &self.site)?;
        let body = match &self.auth {
            Auth::Pat {
                token_name,
                token_secret,
            } => {
                let secret = token_secret.resolve()?;
                format!(
                    "<tsRequest><credentials personalAccessTokenName=\"{}\" personalAccessTokenSecret=\"{}\"><site contentUrl=\"{site_xml}\"/></credentials></tsRequest>",
                    xml_attr::escape("\"auth.token_name\"", token_name)?,
                    xml_attr::escape("the PAT secret (auth.token_secret or auth.token_secret_env)", secret.expose())?
                )
            }
            Auth::Password { username, password } => {
                let secret = password.resolve()?;
                format!(
                    "<tsRequest><credentials name=\"{}\" password=\"{}\"><site contentUrl=\"{site_xml}\"/></credentials></tsRequest>",
                    xml_attr::escape("\"auth.username\"", username)?,
                    xml_attr::escape("the password (auth.password or auth.password_env)", secret.expose())?
                )
            }
            Auth::ConnectedApp { .. } => {
                let jwt = super::jwt::sign(&self.auth)?;
                format!(
                    "<tsRequest><credentials jwt=\"{}\"><site contentUrl=\"{site_xml}\"/></credentials></tsRequest>",
                    xml_attr::escape("the connected-app JWT", jwt.expose())?
                )
            }
        };
        let what = format!("Sign In to site \"{}\"", self.site);
        let path = format!("/api/{}/auth/signin", self.version);
        let resp = self
            .call(&what, Kind::Idempotent, false, &|_| {
                Ok(self
                    .http
                    .request(Method::POST, &path)
                    .header(CONTENT_TYPE, "text/xml")
                    .body(body.clone()))
            })
            .await?;
        let creds = xml::credentials(&resp.xml(&what)?).map_err(|e| bad_answer(&what, &e))?;
        Ok(SignedIn {
            token: creds.token,
            site_id: creds.site_id,
        })
    }

    /// This client is done with the session: signs out when it was the last client using it
    /// (a session another client uses is left alone). A session that already ended counts as
    /// signed out.
    pub async fn sign_out(&self) -> Result<()> {
        if self.left.replace(true) {
            return Ok(());
        }
        let mine = self.token.borrow_mut().take();
        let turn = self.turn.borrow_mut().take();
        let last = self.shared.leave().await;
        // Taking turns, the token is this client's own: it goes with its turn.
        let token = match (&turn, mine) {
            (Some(_), Some(mine)) => Some(mine),
            _ => last,
        };
        let Some(token) = token else {
            return Ok(());
        };
        let path = format!("/api/{}/auth/signout", self.version);
        let req = |_: Option<&str>| Ok(self.with_token(Method::POST, &path, Some(&token.value)));
        match self.call("Sign Out", Kind::Cleanup, false, &req).await {
            Err(e) if e.is_session_ended() => Ok(()),
            Err(e) => {
                self.log(
                    LogLevel::Warn,
                    &format!(
                        "could not sign out ({}); the session ends when it expires",
                        e.message()
                    ),
                );
                Err(e)
            }
            Ok(_) => {
                self.log(LogLevel::Info, "signed out");
                Ok(())
            }
        }
    }

    fn filter_query(&self, terms: &[Filter<'_>]) -> String {
        // Since API 3.7 Tableau's client percent-encodes the whole filter, delimiters included;
        // before that it sent the delimiters raw. Do the same.
        let modern = self.version >= ENCODED_FILTER_DELIMITERS;
        let enc = |s: &str| utf8_percent_encode(s, QUERY_VALUE).to_string();
        let (colon, comma) = if modern { ("%3A", "%2C") } else { (":", ",") };
        terms
            .iter()
            .map(|t| format!("{}{colon}eq{colon}{}", enc(t.field), enc(t.value)))
            .collect::<Vec<_>>()
            .join(comma)
    }

    async fn get(&self, what: &str, rest: &str) -> Result<xml::Element> {
        let path = self.site_path(rest)?;
        let resp = self
            .call(what, Kind::Idempotent, true, &|t| {
                Ok(self.with_token(Method::GET, &path, t))
            })
            .await?;
        resp.xml(what)
    }

    /// All projects matching the filter terms, following pagination.
    pub async fn projects(&self, terms: &[Filter<'_>]) -> Result<Vec<Project>> {
        self.all_pages("projects", terms, xml::projects).await
    }

    /// All data sources matching the filter terms, following pagination.
    pub async fn datasources(&self, terms: &[Filter<'_>]) -> Result<Vec<Datasource>> {
        self.all_pages("datasources", terms, xml::datasources).await
    }

    async fn all_pages<T>(
        &self,
        resource: &str,
        terms: &[Filter<'_>],
        parse: ListParser<T>,
    ) -> Result<Vec<T>> {
        let what = format!("Query {resource}");
        let mut out = Vec::new();
        for page in 1.. {
            let mut query = format!("?pageSize={PAGE_SIZE}&pageNumber={page}");
            if !terms.is_empty() {
                query.push_str("&filter=");
                query.push_str(&self.filter_query(terms));
            }
            let root = self.get(&what, &format!("/{resource}{query}")).await?;
            let (pagination, items) = parse(&root).map_err(|e| bad_answer(&what, &e))?;
            let got = items.len() as u64;
            out.extend(items);
            if got == 0 || out.len() as u64 >= pagination.total_available {
                break;
            }
        }
        Ok(out)
    }

    /// Starts a file upload session.
    pub async fn initiate_upload(&self) -> Result<String> {
        let what = "Initiate File Upload";
        let path = self.site_path("/fileUploads")?;
        let resp = self
            .call(what, Kind::Idempotent, true, &|t| {
                Ok(self.with_token(Method::POST, &path, t))
            })
            .await?;
        let upload = xml::file_upload(&resp.xml(what)?).map_err(|e| bad_answer(what, &e))?;
        self.bump(|c| c.upload_sessions += 1);
        Ok(upload.upload_session_id)
    }

    /// Appends `len` bytes of `file` from `offset` to the upload session. Re-sent only when
    /// the failure proves the append did not apply.
    pub async fn append(
        &self,
        session: &str,
        file: &Path,
        offset: u64,
        len: u64,
    ) -> Result<FileUpload> {
        let what = format!("Append to File Upload (bytes {offset}..{})", offset + len);
        let path = self.site_path(&format!(
            "/fileUploads/{}",
            utf8_percent_encode(session, QUERY_VALUE)
        ))?;
        let part = FilePart {
            name: "tableau_file",
            filename: "file",
            path: file,
            offset,
            len,
        };
        let resp = self
            .call(&what, Kind::StateChanging, true, &|t| {
                self.multipart(Method::PUT, &path, t, "", Some(part))
            })
            .await?;
        xml::file_upload(&resp.xml(&what)?).map_err(|e| bad_answer(&what, &e))
    }

    /// Publish Data Source: commits an upload session, or sends `file` in the body.
    pub async fn publish_datasource(
        &self,
        params: &PublishParams<'_>,
        payload_xml: &str,
        file: Option<FilePart<'_>>,
    ) -> Result<Published> {
        let what = "Publish Data Source";
        let mut query = format!("?overwrite={}&asJob={}", params.overwrite, params.as_job);
        if params.append {
            query.push_str("&append=true");
        }
        if let Some(id) = params.upload_session_id {
            query.push_str(&format!(
                "&uploadSessionId={}&datasourceType={}",
                utf8_percent_encode(id, QUERY_VALUE),
                params.datasource_type
            ));
        }
        let path = self.site_path(&format!("/datasources{query}"))?;
        let resp = self
            .call(what, Kind::StateChanging, true, &|t| {
                self.multipart(Method::POST, &path, t, payload_xml, file)
            })
            .await?;
        xml::published(&resp.xml(what)?).map_err(|e| bad_answer(what, &e))
    }

    /// Query Job.
    pub async fn job(&self, id: &str) -> Result<Job> {
        let what = "Query Job";
        let root = self
            .get(
                what,
                &format!("/jobs/{}", utf8_percent_encode(id, QUERY_VALUE)),
            )
            .await?;
        xml::job(&root).map_err(|e| bad_answer(what, &e))
    }

    /// Polls a job until `completedAt` is set, with backoff between `first` and `max` waits.
    pub async fn wait_for_job(
        &self,
        id: &str,
        first: Duration,
        max: Duration,
        limit: Duration,
    ) -> Result<Job> {
        let started = Instant::now();
        let mut wait = first;
        loop {
            let job = self.job(id).await?;
            if job.completed_at.is_some() {
                return Ok(job);
            }
            if started.elapsed() + wait > limit {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "publish job {id} did not finish within {} s (progress {}%); it may still complete on the server: check the job in Tableau before publishing again, or raise \"job_timeout_secs\"",
                        limit.as_secs(),
                        job.progress.unwrap_or(0)
                    ),
                ));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 3 / 2).min(max);
        }
    }
}

impl Drop for Api {
    /// A client dropped without signing out (an error before it could) stops counting as a
    /// user of the shared session.
    fn drop(&mut self) {
        if !self.left.get() {
            self.shared.leave_quietly();
        }
    }
}

/// Which clients may share a session: the same server, site and credential identity, and the
/// same secret (by its SHA-256, so that a wrong secret never rides on another's session).
fn session_key(server: &str, site: &str, auth: &Auth) -> Result<String> {
    use sha2::{Digest, Sha256};
    let (who, secret) = match auth {
        Auth::Pat {
            token_name,
            token_secret,
        } => (format!("pat:{token_name}"), token_secret.resolve()?),
        Auth::Password { username, password } => {
            (format!("password:{username}"), password.resolve()?)
        }
        Auth::ConnectedApp {
            client_id,
            secret_id,
            secret_value,
            username,
            scopes,
        } => (
            format!(
                "connected_app:{client_id}:{secret_id}:{username}:{}",
                scopes.join(" ")
            ),
            secret_value.resolve()?,
        ),
    };
    let fingerprint = crate::hex::hex(&Sha256::digest(secret.expose().as_bytes()));
    Ok(format!("{server}\n{site}\n{who}\n{fingerprint}"))
}

/// Why a session token stopped working, for a log line.
fn session_ended(e: &Error) -> String {
    match e.tableau_code() {
        Some(code) => format!("the session expired or was ended (Tableau error {code})"),
        None => "the server refused the session token (HTTP 401)".to_owned(),
    }
}

/// Why a call is retried, for a log line: the HTTP status and Tableau's code, the wait the
/// server asked for, or the connection failure (whose message holds no secret).
fn retry_reason(e: &Error, decision: Retry) -> String {
    match e.http_status() {
        Some(429) => match decision {
            Retry::Wait(d) => format!(
                "Tableau is throttling requests (HTTP 429) and asks to wait {}",
                log::delay(d)
            ),
            _ => "Tableau is throttling requests (HTTP 429)".to_owned(),
        },
        Some(status) => {
            let reason = reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("error");
            match e.tableau_code() {
                Some(code) => format!("HTTP {status} {reason}, Tableau error {code}"),
                None => format!("HTTP {status} {reason}"),
            }
        }
        None => match e.kind() {
            ErrorKind::Timeout => format!("timed out ({})", e.message()),
            _ => format!("the connection failed ({})", e.message()),
        },
    }
}

fn gave_up(e: Error, attempts: u32, started: Instant) -> Error {
    if attempts <= 1 {
        return e;
    }
    e.with_suffix(&format!(
        " (gave up after {attempts} attempts over {:.0} s)",
        started.elapsed().as_secs_f64()
    ))
}

fn bad_answer(what: &str, detail: &str) -> Error {
    Error::new(
        ErrorKind::Server,
        format!("{what}: unexpected answer from the server ({detail})"),
    )
}
