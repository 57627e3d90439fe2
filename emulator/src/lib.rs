//! `tableau-emulator`: a local emulator of the Tableau Server REST API (the parts a data-source
//! publisher uses) with fault injection, for tests and benchmarks.
//!
//! Written from the project's facts file and Tableau's canned responses only; it shares no code
//! with the client library. See `emulator/README.md` for the endpoints, the control API, the seed
//! format and the list of behaviours that are choices rather than confirmed facts.
//!
//! ```no_run
//! let emu = tableau_emulator::Emulator::start(tableau_emulator::Config::default()).unwrap();
//! println!("{}", emu.url());
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

mod extract;
mod filter;
mod jwt;
mod multipart;
mod server;
mod state;
mod util;
mod xml;

pub use extract::{ExtractColumn, ExtractContents, ExtractTable};

/// Emulator settings. `Config::default()` gives a Tableau-Server-like setup on a random port.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on; default `127.0.0.1:0` (a free port).
    pub listen: SocketAddr,
    /// Session lifetime; default 240 minutes. An idle timeout (each authenticated request extends
    /// it) unless `absolute_token_ttl` is set.
    pub token_ttl: Duration,
    /// Count `token_ttl` from sign-in instead of from the last request. Default false.
    pub absolute_token_ttl: bool,
    /// `restApiVersion` advertised by serverinfo; URLs with a higher version get 404003. Default "3.25".
    pub api_version: String,
    /// Where uploads and published files are kept. `None` → a temporary directory owned by the
    /// emulator and removed when it is dropped.
    pub data_dir: Option<PathBuf>,
    /// Count uploads but neither hash nor store them, so the emulator costs as little as
    /// possible per byte (benchmarks). Data sources then report an empty `sha256`.
    pub discard_data: bool,
    /// Sites, users, PATs and projects to start with.
    pub seed: Seed,
    /// Asynchronous publish jobs complete this long after creation; default 300 ms.
    pub job_duration: Duration,
    /// Cap on `pageSize` (larger values are clamped); default 1000.
    pub max_page_size: u32,
    /// A single-request publish whose file part is larger is refused (413); default 64 MiB.
    pub max_single_request_bytes: u64,
    /// An append whose file part is larger is refused (413); default 64 MiB.
    pub max_chunk_bytes: u64,
    /// Error code an expired token gets; default "401000". Tokens ended by sign-out or by a second
    /// sign-in with the same PAT always get "401002".
    pub expired_token_code: String,
    /// HTTP status of an `asJob=true` publish; default 202.
    pub async_publish_status: u16,
    /// When true an upload session can only be used with the auth session that created it
    /// (after a re-sign-in it answers 404). Default false.
    pub bind_upload_sessions_to_auth: bool,
    /// Serve HTTPS with this certificate chain and key (PEM files) instead of plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Accept the named entity `&apos;` in the attribute values of sign-in and publish
    /// requests. Default false: such a request gets 400 `400000`, as Tableau's publish endpoint
    /// is reported to answer (the real code is unconfirmed).
    pub accept_apos_entity: bool,
    /// End a session when its token is used on a second TCP connection, as one maintainer
    /// statement says Tableau does (unconfirmed; other sources share one token across parallel
    /// connections). Default false: one token works on any number of connections at once.
    pub end_session_on_second_connection: bool,
    /// Read each published `.hyper` with Tableau's hyperd when it is asked about
    /// ([`Emulator::datasources`], `GET /_emulator/datasources`): tables, columns, row counts
    /// in [`PublishedDatasource::extract`]. Default false here, true in the `tableau-emulator`
    /// binary (`--no-read-extracts`); `TABLEAU_EMULATOR_HYPERD=off` turns it off everywhere.
    pub read_extracts: bool,
    /// hyperd to read extracts with; default `HYPERD_PATH`, else python3's `tableauhyperapi`.
    pub hyperd_path: Option<PathBuf>,
    /// Larger published files are not read; default 1 GiB.
    pub extract_read_max_bytes: u64,
}

/// The PEM files of an HTTPS emulator.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The server's certificate, then any intermediates.
    pub cert_chain: PathBuf,
    /// The server's private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token_ttl: Duration::from_secs(240 * 60),
            absolute_token_ttl: false,
            api_version: "3.25".to_owned(),
            data_dir: None,
            discard_data: false,
            seed: Seed::default(),
            job_duration: Duration::from_millis(300),
            max_page_size: 1000,
            max_single_request_bytes: 64 * 1024 * 1024,
            max_chunk_bytes: 64 * 1024 * 1024,
            expired_token_code: "401000".to_owned(),
            async_publish_status: 202,
            bind_upload_sessions_to_auth: false,
            tls: None,
            accept_apos_entity: false,
            end_session_on_second_connection: false,
            read_extracts: false,
            hyperd_path: None,
            extract_read_max_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// The seed file format (JSON). See `emulator/README.md`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Seed {
    pub sites: Vec<SeedSite>,
}

/// A site in the seed. `content_url` "" is the Default site.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SeedSite {
    #[serde(default)]
    pub content_url: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub users: Vec<SeedUser>,
    #[serde(default)]
    pub projects: Vec<SeedProject>,
    /// Connected apps (direct trust) whose JWTs can sign in to this site. Entries with the same
    /// `client_id` are one app with several secrets; it is disabled if any entry says so.
    #[serde(default)]
    pub connected_apps: Vec<SeedConnectedApp>,
}

/// A connected app (direct trust) secret in the seed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SeedConnectedApp {
    /// The JWT's `iss`.
    pub client_id: String,
    /// The JWT header's `kid`.
    pub secret_id: String,
    /// The HS256 key.
    pub secret_value: String,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A user in the seed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SeedUser {
    pub name: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default = "default_site_role")]
    pub site_role: String,
    #[serde(default)]
    pub pats: Vec<SeedPat>,
}

fn default_site_role() -> String {
    "ServerAdministrator".to_owned()
}

/// A personal access token in the seed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SeedPat {
    pub name: String,
    pub secret: String,
}

/// A project (and its children) in the seed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SeedProject {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub children: Vec<SeedProject>,
}

impl Default for Seed {
    /// Default site ("") and site "qa"; on each: user `admin` / `admin-pass`
    /// (ServerAdministrator) with PAT `ci` / `ci-secret`; projects `default`, `Finance` › `Quarterly`;
    /// connected app `ci-app` with secret id `ci-secret-id` and value
    /// `ci-app-secret-value-0123456789abcdef` (enabled).
    fn default() -> Self {
        let site = |content_url: &str, name: &str| SeedSite {
            content_url: content_url.to_owned(),
            name: Some(name.to_owned()),
            users: vec![SeedUser {
                name: "admin".to_owned(),
                password: Some("admin-pass".to_owned()),
                site_role: "ServerAdministrator".to_owned(),
                pats: vec![SeedPat {
                    name: "ci".to_owned(),
                    secret: "ci-secret".to_owned(),
                }],
            }],
            projects: vec![
                SeedProject {
                    name: "default".to_owned(),
                    description: Some(
                        "The default project that was automatically created by Tableau.".to_owned(),
                    ),
                    children: vec![],
                },
                SeedProject {
                    name: "Finance".to_owned(),
                    description: None,
                    children: vec![SeedProject {
                        name: "Quarterly".to_owned(),
                        description: None,
                        children: vec![],
                    }],
                },
            ],
            connected_apps: vec![SeedConnectedApp {
                client_id: "ci-app".to_owned(),
                secret_id: "ci-secret-id".to_owned(),
                secret_value: "ci-app-secret-value-0123456789abcdef".to_owned(),
                enabled: true,
            }],
        };
        Seed {
            sites: vec![site("", "Default"), site("qa", "qa")],
        }
    }
}

impl Seed {
    /// Read a JSON seed file.
    pub fn from_file(path: impl AsRef<Path>) -> std::io::Result<Seed> {
        let text = std::fs::read_to_string(path)?;
        Self::from_json(&text)
    }

    /// Parse a JSON seed.
    pub fn from_json(text: &str) -> std::io::Result<Seed> {
        serde_json::from_str(text)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

/// One published data source, as the emulator stores it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublishedDatasource {
    pub id: String,
    /// Site content URL ("" = Default).
    pub site: String,
    pub name: String,
    pub content_url: String,
    pub project_id: String,
    pub project_name: String,
    /// hyper | tds | tdsx | tde
    pub file_type: String,
    /// Bytes of the last uploaded file.
    pub size: u64,
    /// Hex SHA-256 of the last uploaded file.
    pub sha256: String,
    pub history: Vec<DatasourceOp>,
    pub created_at: String,
    pub updated_at: String,
    /// What the published `.hyper` holds, read with hyperd ([`Config::read_extracts`]).
    #[serde(default)]
    pub extract: Option<ExtractContents>,
    /// Why it was not read (no hyperd, not a Hyper file, too large, hyperd's error).
    #[serde(default)]
    pub extract_error: Option<String>,
}

/// One publish applied to a data source.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DatasourceOp {
    /// "create" | "overwrite" | "append"
    pub op: String,
    pub size: u64,
    pub sha256: String,
}

/// One handled REST request (control requests are not logged).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoggedRequest {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    /// HTTP status sent; 0 when the connection was dropped without a response.
    pub status: u16,
    /// Tableau error code when the response was an error.
    pub code: Option<String>,
    /// Request body bytes read.
    pub body_bytes: u64,
    /// Serial number of the auth session used (never the token).
    pub auth_session: Option<u64>,
    /// The injected fault applied to this request, if any.
    pub fault: Option<String>,
    /// Whether the request changed the emulator's state: a sign-in or switchSite created a
    /// session, a sign-out ended one, an initiate created an upload session, an append stored its
    /// bytes, a publish was applied or created a job. False for read-only, refused and failed
    /// requests, and for requests a fault stopped before they were applied.
    #[serde(default)]
    pub applied: bool,
    /// Which TCP connection carried the request: 1, 2, … in the order they were accepted.
    #[serde(default)]
    pub connection: u64,
}

/// One upload session (file upload), as the emulator stores it. Committed sessions are kept in
/// this list (in creation order) even though they can no longer be used.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UploadSessionInfo {
    /// `uploadSessionId`.
    pub id: String,
    /// Bytes stored so far (only appends that were applied count).
    pub bytes: u64,
    /// Number of appends that were applied.
    pub appends: u32,
    /// Whether a publish consumed the session.
    pub committed: bool,
}

/// A fault to inject. It applies to the `nth`..`nth+times-1` matching requests counted from
/// injection time (1-based). A request matches when the method (if given) equals it
/// case-insensitively and the path plus `?query` contains `path_contains` (if given).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Fault {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path_contains: Option<String>,
    #[serde(default = "one")]
    pub nth: u32,
    #[serde(default = "one")]
    pub times: u32,
    pub action: FaultAction,
}

fn one() -> u32 {
    1
}

/// What an injected fault does.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with this Tableau error (the request is not applied). An empty `code` sends a
    /// non-XML HTML body instead, like a gateway would.
    Error {
        status: u16,
        code: String,
        #[serde(default)]
        summary: String,
        #[serde(default)]
        detail: String,
        #[serde(default)]
        retry_after: Option<String>,
    },
    /// Wait, then handle normally.
    Delay { ms: u64 },
    /// Read the request body no faster than `bytes_per_sec`, then handle normally: a slow link.
    SlowBody { bytes_per_sec: u64 },
    /// Close the connection without any response, before reading the body.
    Reset,
    /// Read `after_bytes` bytes of the body (all of it if it is shorter), do not apply the
    /// request, then close the connection without a response. The client sees a connection error
    /// while sending (or, for a short body, while waiting for the response).
    ResetMidBody { after_bytes: u64 },
    /// Read the whole body, apply the request, then close the connection without a response.
    ResetAfterBody,
    /// Read the whole body and apply the request, then wait before answering: the window in
    /// which a client (or its whole process) can die after the server acted but before it knew.
    DelayAnswer { ms: u64 },
    /// Read the whole body and apply the request, then send the status line, the headers (with
    /// the full `Content-Length`) and the first half of the body, and close the connection. The
    /// client sees a truncated body. An empty body (204) is not sent at all: the connection is
    /// closed after the request is applied, like `ResetAfterBody`.
    ResetMidResponse,
    /// Expire the request's auth session right before handling it.
    ExpireToken,
    /// End the request's auth session right before handling it, as if the same PAT had signed in
    /// again elsewhere (a password session is simply ended), so it gets 401 `401002`.
    KillSession,
    /// The async job created by this request ends with finishCode 1 and these notes.
    FailJob { notes: String },
}

/// A running emulator. Dropping it stops the server (same as [`Emulator::shutdown`]).
pub struct Emulator {
    shared: Arc<state::Shared>,
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _tempdir: Option<tempfile::TempDir>,
}

impl Emulator {
    /// Bind and start serving on a thread of its own (its own 2-worker tokio runtime). Returns
    /// once the listener is bound. Does not need (or use) a caller's tokio runtime.
    pub fn start(config: Config) -> std::io::Result<Emulator> {
        let (data_dir, tempdir) = match &config.data_dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("tableau-emulator-")
                    .tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        std::fs::create_dir_all(data_dir.join("uploads"))?;
        std::fs::create_dir_all(data_dir.join("incoming"))?;
        std::fs::create_dir_all(data_dir.join("datasources"))?;
        if util::parse_version(&config.api_version).is_none() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "api_version {:?} is not of the form X.Y",
                    config.api_version
                ),
            ));
        }
        let tls = config.tls.as_ref().map(server::tls_acceptor).transpose()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(state::Shared::new(config.clone(), data_dir));
        let listener = std::net::TcpListener::bind(config.listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("tableau-emulator".to_owned())
            .spawn(move || server::run(sh, listener, tls, stop_rx, ready_tx))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(std::io::Error::other(
                    "emulator thread exited during start-up",
                ));
            }
        }
        Ok(Emulator {
            shared,
            url: format!("{scheme}://{addr}"),
            stop: Some(stop_tx),
            thread: Some(thread),
            _tempdir: tempdir,
        })
    }

    /// `http://127.0.0.1:PORT` (`https://` with [`Config::tls`]; no trailing slash).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The data directory in use.
    pub fn data_dir(&self) -> PathBuf {
        self.shared.data_dir.clone()
    }

    /// All published data sources (completes due jobs first).
    pub fn datasources(&self) -> Vec<PublishedDatasource> {
        self.shared.datasources()
    }

    /// The request log (REST requests only, oldest first).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.requests()
    }

    /// Expire every live session now; they get `expired_token_code`.
    pub fn expire_all_tokens(&self) {
        self.shared.expire_all_tokens()
    }

    /// After `n` more REST requests that pass token authentication have been handled, expire
    /// every session that exists at that moment (one-shot; later sign-ins are unaffected).
    /// `n == 0` expires them now. A later call replaces a pending schedule.
    pub fn expire_tokens_after_requests(&self, n: u64) {
        self.shared.expire_tokens_after_requests(n)
    }

    /// At `at`, expire every session that exists at that time (one-shot; sessions created later
    /// are unaffected). A time in the past applies at once to the sessions created before it.
    /// A later call replaces a pending schedule.
    pub fn expire_tokens_at(&self, at: SystemTime) {
        self.shared.expire_tokens_at(at)
    }

    /// Sign in with the PAT named `pat_name` on the site `site_content_url` (its secret is taken
    /// from the emulator's users), as another client would. This ends the PAT's current session:
    /// its token then gets 401 `401002`. Returns false if the site has no such PAT.
    pub fn sign_in_elsewhere(&self, site_content_url: &str, pat_name: &str) -> bool {
        self.shared.sign_in_elsewhere(site_content_url, pat_name)
    }

    /// Enable or disable the connected app `client_id` of site `site` (content URL). A disabled
    /// app's JWTs get 401 `401001` with `(errorCode=67)`; sessions it already created are kept.
    /// Returns false if the site has no such app.
    pub fn set_connected_app_enabled(&self, site: &str, client_id: &str, enabled: bool) -> bool {
        self.shared
            .set_connected_app_enabled(site, client_id, enabled)
    }

    /// Every upload session created so far (committed ones included), oldest first.
    pub fn upload_sessions(&self) -> Vec<UploadSessionInfo> {
        self.shared.upload_sessions()
    }

    /// Change the session lifetime (applies to existing sessions too).
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.shared.set_token_ttl(ttl)
    }

    /// Add a fault; its match counter starts now.
    pub fn inject_fault(&self, fault: Fault) {
        self.shared.inject_fault(fault)
    }

    /// Remove all faults.
    pub fn clear_faults(&self) {
        self.shared.clear_faults()
    }

    /// Create a project; returns its LUID. Panics if the site or the parent is unknown.
    pub fn add_project(
        &self,
        site_content_url: &str,
        parent_id: Option<&str>,
        name: &str,
    ) -> String {
        self.shared
            .add_project(site_content_url, parent_id, name)
            .unwrap_or_else(|e| panic!("add_project: {e}"))
    }

    /// LUID of a project found by its path of names from the top level.
    pub fn project_id(&self, site_content_url: &str, path: &[&str]) -> Option<String> {
        self.shared.project_id(site_content_url, path)
    }

    /// Print one line per REST request to stderr (method path status code).
    pub fn set_log_to_stderr(&self, on: bool) {
        self.shared
            .log_stderr
            .store(on, std::sync::atomic::Ordering::Relaxed)
    }

    /// Stop the server and join its thread.
    pub fn shutdown(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator").field("url", &self.url).finish()
    }
}

/// Fuzzing entry for the multipart reader of publish and append bodies (used by `fuzz/` and
/// the root crate's `tests/fuzz_smoke.rs`): see `multipart::fuzz` for the input layout. Panics
/// only if the reader breaks its contract.
#[doc(hidden)]
pub fn fuzz_multipart(data: &[u8]) {
    multipart::fuzz(data)
}
