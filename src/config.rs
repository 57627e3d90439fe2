//! The JSON configuration, validated once when a publisher is created (no network, no files
//! written).
//!
//! Secrets may be given inline or as the name of an environment variable (`<field>_env`) that is
//! read only when publishing starts. Secrets are never printed: [`Secret`]'s `Debug` is redacted.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::api_version::ApiVersion;
use crate::error::{Error, Result};
use crate::filetype::FileType;

/// The largest chunk Tableau accepts in one append (64 MiB).
pub(crate) const MAX_CHUNK_BYTES: u64 = 64 * 1024 * 1024;
/// The smallest chunk size accepted in the configuration.
pub(crate) const MIN_CHUNK_BYTES: u64 = 64 * 1024;
/// Default chunk size for appends.
pub(crate) const DEFAULT_CHUNK_BYTES: u64 = 32 * 1024 * 1024;
/// Default per-request timeout.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Default limit on how long to wait for an asynchronous publish job.
pub(crate) const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(4 * 3600);

/// A secret string; its `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub(crate) fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The secret itself; call only where it goes on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// Given in the configuration.
    Inline(Secret),
    /// Read from this environment variable when publishing starts.
    Env {
        /// The variable's name.
        var: String,
        /// The configuration field, for error messages (`auth.token_secret_env`).
        field: &'static str,
    },
}

impl SecretSource {
    /// Returns the secret, reading the environment variable now if configured that way.
    pub fn resolve(&self) -> Result<Secret> {
        match self {
            SecretSource::Inline(s) => Ok(s.clone()),
            SecretSource::Env { var, field } => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Secret(v)),
                Ok(_) => Err(Error::config(format!(
                    "environment variable {var} (from {field}) is empty; set it to the secret before publishing"
                ))),
                Err(_) => Err(Error::config(format!(
                    "environment variable {var} (from {field}) is not set; set it to the secret before publishing"
                ))),
            },
        }
    }
}

/// How to sign in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// A personal access token (works with MFA and SSO sites).
    Pat {
        /// The token's name.
        token_name: String,
        /// The token's secret.
        token_secret: SecretSource,
    },
    /// Username and password (Tableau Server, or Tableau Cloud without MFA).
    Password {
        /// The user name.
        username: String,
        /// The password.
        password: SecretSource,
    },
    /// A connected app (direct trust): a fresh HS256 JWT is signed for every sign-in.
    ConnectedApp {
        /// The connected app's client id (`iss`).
        client_id: String,
        /// The secret's id (`kid`).
        secret_id: String,
        /// The secret's value (signing key).
        secret_value: SecretSource,
        /// The Tableau user to sign in as (`sub`; the email on Tableau Cloud).
        username: String,
        /// Scopes granted (`scp`).
        scopes: Vec<String>,
    },
}

/// Scopes a connected app must grant for a publish: look up projects and data sources,
/// upload, publish, and read the job.
pub const PUBLISH_SCOPES: &[&str] = &[
    "tableau:content:read",
    "tableau:file_uploads:create",
    "tableau:datasources:create",
    "tableau:jobs:read",
];

/// What to do when a data source of the same name exists in the project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Fail with [`ErrorKind::Conflict`](crate::ErrorKind::Conflict) if it exists.
    CreateNew,
    /// Replace it (or create it if absent).
    Overwrite,
    /// Append the extract's rows to it; fails with
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) if absent.
    Append,
}

impl Mode {
    /// Every mode, in the order the config's messages list them.
    const ALL: [Mode; 3] = [Mode::CreateNew, Mode::Overwrite, Mode::Append];

    /// The mode's name in the config, the result JSON and the manifest: the one table of
    /// mode names (the config's list of words and the parser are derived from it).
    pub const fn name(self) -> &'static str {
        match self {
            Mode::CreateNew => "create_new",
            Mode::Overwrite => "overwrite",
            Mode::Append => "append",
        }
    }

    /// Every mode's name.
    const NAMES: [&'static str; Mode::ALL.len()] = {
        let mut names = [""; Mode::ALL.len()];
        let mut i = 0;
        while i < names.len() {
            names[i] = Mode::ALL[i].name();
            i += 1;
        }
        names
    };

    /// The mode called `name`.
    fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Mode, D::Error> {
        let name = String::deserialize(d)?;
        Mode::from_name(&name).ok_or_else(|| serde::de::Error::unknown_variant(&name, &Mode::NAMES))
    }
}

/// Where to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProjectTarget {
    /// A path of project names from a top-level project.
    Path(Vec<String>),
    /// A project LUID.
    Id(String),
}

impl ProjectTarget {
    /// The path as written by the user, for messages.
    pub fn display(&self) -> String {
        match self {
            ProjectTarget::Path(p) => p.join("/"),
            ProjectTarget::Id(id) => format!("id {id}"),
        }
    }
}

/// Whether to publish as an asynchronous job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsJob {
    /// Asynchronous when the file is uploaded in chunks, synchronous otherwise.
    Auto,
    /// Always asynchronous.
    Always,
    /// Never asynchronous.
    Never,
}

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Server base URL without a trailing slash, e.g. `https://tableau.example.com`.
    pub server_url: String,
    /// Site content URL (`""` = Default site).
    pub site: String,
    /// Credentials.
    pub auth: Auth,
    /// Target project.
    pub project: ProjectTarget,
    /// Data source name.
    pub datasource_name: String,
    /// Publish mode.
    pub mode: Mode,
    /// Forced file type, or detect from the bytes.
    pub file_type: Option<FileType>,
    /// Optional description.
    pub description: Option<String>,
    /// Forced REST API version, or negotiate with server info.
    pub api_version: Option<ApiVersion>,
    /// Directory for the spool file.
    pub spool_dir: PathBuf,
    /// Bytes per append request.
    pub chunk_size_bytes: u64,
    /// Asynchronous publishing.
    pub as_job: AsJob,
    /// Timeout of each HTTP request.
    pub request_timeout: Duration,
    /// Limit on waiting for an asynchronous publish job.
    pub job_timeout: Duration,
    /// Files of this size or more are uploaded in chunks (at most 64 MiB).
    pub single_request_max_bytes: u64,
    /// Sign in afresh before uploading or waiting for a job when the session is older.
    pub session_max_age: Option<Duration>,
    /// Retrying, re-authenticating and recovering.
    pub retry: RetrySettings,
    /// CA certificates trusted in addition to the system's (from `tls_ca_file`).
    pub tls_ca: Vec<reqwest::Certificate>,
    /// The HTTP(S) proxy to reach the server through, if any.
    pub proxy: Option<ProxySettings>,
}

/// An HTTP(S) proxy (`proxy` in the configuration).
#[derive(Clone, Debug)]
pub struct ProxySettings {
    /// `http://host:port` or `https://host:port`, without credentials.
    pub url: String,
    /// User name and password for the proxy (Basic), if it asks for them.
    pub credentials: Option<(String, SecretSource)>,
}

/// How to reach the server besides its URL: extra trusted CAs and the proxy.
pub struct Route {
    /// Trusted in addition to the system's certificate authorities.
    pub extra_roots: Vec<reqwest::Certificate>,
    /// Every request goes through this proxy (also to a loopback server).
    pub proxy: Option<reqwest::Proxy>,
}

impl Config {
    /// The route to the server, reading the proxy password from the environment now if it is
    /// configured that way.
    pub fn route(&self) -> Result<Route> {
        let proxy = match &self.proxy {
            None => None,
            Some(p) => {
                let mut proxy = reqwest::Proxy::all(&p.url).map_err(|e| {
                    Error::config(format!("\"proxy.url\" {} is not usable ({e})", p.url))
                })?;
                if let Some((user, password)) = &p.credentials {
                    proxy = proxy.basic_auth(user, password.resolve()?.expose());
                }
                Some(proxy)
            }
        };
        Ok(Route {
            extra_roots: self.tls_ca.clone(),
            proxy,
        })
    }
}

/// Limits on retrying, re-authenticating and recovering (the `"retry"` object).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Longest time spent retrying one call.
    pub max_elapsed_secs: u64,
    /// Backoff base delay.
    pub base_delay_ms: u64,
    /// Longest single backoff wait.
    pub max_delay_ms: u64,
    /// Longest wait honoured when Tableau throttles (429).
    pub max_rate_limit_wait_secs: u64,
    /// New sign-ins allowed per publish after the session ended.
    pub max_reauthentications: u32,
    /// Fresh upload sessions allowed after an append of unknown outcome.
    pub max_upload_restarts: u32,
    /// How long to look for the data source after a commit whose answer was lost.
    pub commit_verify_secs: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 6,
            max_elapsed_secs: 600,
            base_delay_ms: 500,
            max_delay_ms: 30_000,
            max_rate_limit_wait_secs: 900,
            max_reauthentications: 10,
            max_upload_restarts: 3,
            commit_verify_secs: 120,
        }
    }
}

/// The configuration as read: every key known and of the right type. [`Config::validate`]
/// checks the values.
struct RawConfig {
    server_url: String,
    allow_insecure_http: bool,
    site: String,
    auth: Auth,
    project: Option<RawProject>,
    project_id: Option<String>,
    datasource_name: String,
    mode: Mode,
    file_type: Option<FileType>,
    description: Option<String>,
    api_version: Option<String>,
    spool_dir: Option<PathBuf>,
    chunk_size_bytes: Option<u64>,
    as_job: AsJob,
    request_timeout_secs: Option<u64>,
    job_timeout_secs: Option<u64>,
    single_request_max_bytes: Option<u64>,
    session_max_age_secs: Option<u64>,
    retry: RetrySettings,
    tls_ca_file: Option<PathBuf>,
    proxy: Option<ProxySettings>,
}

enum RawProject {
    Path(String),
    Names(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawAsJob {
    Bool(bool),
    Word(String),
}

impl Config {
    /// Parses and validates the JSON configuration. Touches neither network nor files.
    ///
    /// Unknown keys, missing keys and values of the wrong type, at the top level and in
    /// `auth`, `proxy` and `retry`, are all reported in one error, each with its JSON path.
    pub fn from_json(json: &str) -> Result<Config> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| Error::config(format!("config is not valid JSON: {e}")))?;
        let Value::Object(obj) = &value else {
            return Err(Error::config(format!(
                "config must be a JSON object, like {{\"server_url\": …, \"site\": …, …}}, not {}",
                found(&value, true)
            )));
        };
        Self::validate(read_config(obj)?)
    }

    fn validate(raw: RawConfig) -> Result<Config> {
        let server_url = validate_server_url(&raw.server_url, raw.allow_insecure_http)?;
        let auth = raw.auth;
        let project = match (raw.project, raw.project_id) {
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "config has both \"project\" and \"project_id\"; give only one",
                ))
            }
            (None, None) => {
                return Err(Error::config(
                    "config needs \"project\" (a path such as \"Finance/Quarterly\", or an array of names) or \"project_id\"",
                ))
            }
            (None, Some(id)) => {
                if id.trim().is_empty() {
                    return Err(Error::config("\"project_id\" is empty"));
                }
                ProjectTarget::Id(id)
            }
            (Some(RawProject::Path(p)), None) => {
                ProjectTarget::Path(check_project_names(p.split('/').map(str::to_owned).collect(), &p)?)
            }
            (Some(RawProject::Names(names)), None) => {
                let shown = names.join("/");
                ProjectTarget::Path(check_project_names(names, &shown)?)
            }
        };
        if raw.datasource_name.trim().is_empty() {
            return Err(Error::config("\"datasource_name\" is empty"));
        }
        if raw.datasource_name.chars().count() > 255 {
            return Err(Error::config(
                "\"datasource_name\" is longer than 255 characters",
            ));
        }
        if let (Mode::Append, Some(ft)) = (raw.mode, raw.file_type) {
            if !ft.can_append() {
                return Err(Error::config(format!(
                    "mode \"append\" needs an extract (file_type \"hyper\" or \"tde\"), not \"{}\"",
                    ft.as_str()
                )));
            }
        }
        let api_version = match &raw.api_version {
            None => None,
            Some(v) => Some(v.parse::<ApiVersion>().map_err(|_| {
                Error::config(format!(
                    "\"api_version\" must look like \"3.21\", not {}",
                    quote(v)
                ))
            })?),
        };
        let spool_dir = match raw.spool_dir {
            Some(dir) => {
                if !dir.is_dir() {
                    return Err(Error::config(format!(
                        "\"spool_dir\" {} is not an existing directory; create it or choose another",
                        dir.display()
                    )));
                }
                dir
            }
            None => std::env::temp_dir(),
        };
        let chunk_size_bytes = raw.chunk_size_bytes.unwrap_or(DEFAULT_CHUNK_BYTES);
        if !(MIN_CHUNK_BYTES..=MAX_CHUNK_BYTES).contains(&chunk_size_bytes) {
            return Err(Error::config(format!(
                "\"chunk_size_bytes\" must be between {MIN_CHUNK_BYTES} and {MAX_CHUNK_BYTES} (64 MiB, Tableau's limit per append), not {chunk_size_bytes}"
            )));
        }
        let request_timeout = positive_secs(raw.request_timeout_secs, "request_timeout_secs")?
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT);
        let job_timeout =
            positive_secs(raw.job_timeout_secs, "job_timeout_secs")?.unwrap_or(DEFAULT_JOB_TIMEOUT);
        let single_request_max_bytes = raw.single_request_max_bytes.unwrap_or(MAX_CHUNK_BYTES);
        if !(1..=MAX_CHUNK_BYTES).contains(&single_request_max_bytes) {
            return Err(Error::config(format!(
                "\"single_request_max_bytes\" must be between 1 and {MAX_CHUNK_BYTES} (64 MiB, Tableau's single-request limit), not {single_request_max_bytes}"
            )));
        }
        let session_max_age = positive_secs(raw.session_max_age_secs, "session_max_age_secs")?;
        if raw.retry.max_attempts == 0 {
            return Err(Error::config("\"retry.max_attempts\" must be at least 1"));
        }
        let tls_ca = match &raw.tls_ca_file {
            Some(path) => read_ca_file(path)?,
            None => Vec::new(),
        };
        Ok(Config {
            server_url,
            site: raw.site,
            auth,
            project,
            datasource_name: raw.datasource_name,
            mode: raw.mode,
            file_type: raw.file_type,
            description: raw.description,
            api_version,
            spool_dir,
            chunk_size_bytes,
            as_job: raw.as_job,
            request_timeout,
            job_timeout,
            single_request_max_bytes,
            session_max_age,
            retry: raw.retry,
            tls_ca,
            proxy: raw.proxy,
        })
    }
}

fn positive_secs(v: Option<u64>, key: &str) -> Result<Option<Duration>> {
    match v {
        Some(0) => Err(Error::config(format!("\"{key}\" must be at least 1"))),
        Some(s) => Ok(Some(Duration::from_secs(s))),
        None => Ok(None),
    }
}

fn check_project_names(names: Vec<String>, shown: &str) -> Result<Vec<String>> {
    if names.is_empty() || names.iter().any(|n| n.is_empty()) {
        return Err(Error::config(format!(
            "\"project\" {} has an empty name; write a path like \"Finance/Quarterly\", or an array of names if a name contains '/'",
            quote(shown)
        )));
    }
    Ok(names)
}

/// Whether the URL's host is this machine (`localhost`, 127.0.0.0/8, `::1`).
pub(crate) fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The certificates of a PEM file named by `tls_ca_file`: at least one.
/// The most of a `tls_ca_file` read: a bundle of every public CA is about 250 KiB.
const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    use std::io::Read;
    let cannot = |e: &dyn std::fmt::Display| {
        Error::config(format!(
            "\"tls_ca_file\" {}: cannot read it ({e})",
            path.display()
        ))
    };
    // A device or a pipe (/dev/zero, a FIFO) would be read forever, or block the validation.
    let meta = std::fs::metadata(path).map_err(|e| cannot(&e))?;
    if !meta.is_file() {
        return Err(Error::config(format!(
            "\"tls_ca_file\" {} is not a regular file; give the path of a PEM file of certificates",
            path.display()
        )));
    }
    let mut pem = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CA_FILE_BYTES + 1).read_to_end(&mut pem))
        .map_err(|e| cannot(&e))?;
    if pem.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(Error::config(format!(
            "\"tls_ca_file\" {} is larger than {} MiB, far more than a bundle of certificates; give the PEM file of your CA",
            path.display(),
            MAX_CA_FILE_BYTES >> 20
        )));
    }
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        Error::config(format!(
            "\"tls_ca_file\" {} is not a PEM file of certificates ({e})",
            path.display()
        ))
    })?;
    if certs.is_empty() {
        return Err(Error::config(format!(
            "\"tls_ca_file\" {} holds no certificate; it should contain -----BEGIN CERTIFICATE----- blocks (the CA that issued the server's certificate)",
            path.display()
        )));
    }
    Ok(certs)
}

fn validate_server_url(url: &str, allow_insecure_http: bool) -> Result<String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        // Text before an '@' may be a user name and password.
        let shown = match url.contains('@') {
            true => "(not shown: it contains '@')".to_owned(),
            false => quote(url),
        };
        Error::config(format!(
            "\"server_url\" {shown} is not a URL ({e}); write it like \"https://tableau.example.com\", without credentials"
        ))
    })?;
    if parsed.username() != "" || parsed.password().is_some() {
        return Err(Error::config(
            "\"server_url\" must not contain a user name or password; put credentials in \"auth\"",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Error::config(
            "\"server_url\" must not have a query or fragment; give the server's base URL",
        ));
    }
    match parsed.scheme() {
        "https" => {}
        "http" => {
            if !is_loopback(&parsed) && !allow_insecure_http {
                return Err(Error::config(format!(
                    "\"server_url\" {} uses plain http, which would send credentials unencrypted; use https, or set \"allow_insecure_http\": true if you accept that",
                    quote(url)
                )));
            }
        }
        other => {
            return Err(Error::config(format!(
                "\"server_url\" has scheme {}; use https://",
                quote(other)
            )))
        }
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

type Object = serde_json::Map<String, Value>;
type Value = serde_json::Value;

/// At most this many problems are listed in one message (and get a "did you mean").
const MAX_SHOWN: usize = 20;
/// How similar (Jaro-Winkler, 0..1) an unknown word must be to a known one to suggest it
/// (or one edit away).
const SIMILAR: f64 = 0.85;

/// Reads the top-level object into a [`RawConfig`], with every problem in one error.
fn read_config(obj: &Object) -> Result<RawConfig> {
    let p = &mut Problems::default();
    let mut s = Section::open(obj, "", p);
    let server_url = s.required(p, "server_url", TEXT);
    let allow_insecure_http = s.get(p, "allow_insecure_http", FLAG).unwrap_or(false);
    let site = s.required(p, "site", TEXT);
    let auth = s
        .required::<Object>(p, "auth", AUTH)
        .and_then(|auth| read_auth(&auth, p));
    let project = match obj.get("project") {
        Some(Value::Array(_)) => s.get(p, "project", NAMES).map(RawProject::Names),
        _ => s.opt(p, "project", PROJECT).map(RawProject::Path),
    };
    let project_id = s.opt(p, "project_id", TEXT);
    let datasource_name = s.required(p, "datasource_name", TEXT);
    let mode = s.required(p, "mode", MODE);
    let file_type = s.opt(p, "file_type", FILE_TYPE);
    let description = s.opt(p, "description", TEXT);
    let api_version = s.opt(p, "api_version", TEXT);
    let spool_dir = s.opt(p, "spool_dir", PATH);
    let chunk_size_bytes = s.opt(p, "chunk_size_bytes", COUNT);
    let as_job = match s.opt(p, "as_job", AS_JOB) {
        None => AsJob::Auto,
        Some(RawAsJob::Bool(true)) => AsJob::Always,
        Some(RawAsJob::Bool(false)) => AsJob::Never,
        Some(RawAsJob::Word(w)) if w == "auto" => AsJob::Auto,
        Some(RawAsJob::Word(w)) => {
            p.push(format!(
                "\"as_job\" must be \"auto\", true or false, not {}{}",
                quote(&w),
                did_you_mean(&w, &["auto"])
            ));
            AsJob::Auto
        }
    };
    let request_timeout_secs = s.opt(p, "request_timeout_secs", COUNT);
    let job_timeout_secs = s.opt(p, "job_timeout_secs", COUNT);
    let single_request_max_bytes = s.opt(p, "single_request_max_bytes", COUNT);
    let session_max_age_secs = s.opt(p, "session_max_age_secs", COUNT);
    let retry = match s.get::<Object>(p, "retry", OBJECT) {
        Some(retry) => read_retry(&retry, p),
        None => RetrySettings::default(),
    };
    let tls_ca_file = s.opt(p, "tls_ca_file", PATH);
    // None when the proxy object has problems; Some(None) when there is no proxy.
    let proxy = match s.opt::<Object>(p, "proxy", OBJECT) {
        Some(proxy) => read_proxy(&proxy, p).map(Some),
        None => Some(None),
    };
    s.close(p, "");
    std::mem::take(p).check()?;
    let (Some(server_url), Some(site), Some(auth), Some(datasource_name), Some(mode), Some(proxy)) =
        (server_url, site, auth, datasource_name, mode, proxy)
    else {
        // Each of these is None only after a problem was recorded, reported just above.
        return Err(Error::config(
            "config is incomplete; check it against the README's config table",
        ));
    };
    Ok(RawConfig {
        server_url,
        allow_insecure_http,
        site,
        auth,
        project,
        project_id,
        datasource_name,
        mode,
        file_type,
        description,
        api_version,
        spool_dir,
        chunk_size_bytes,
        as_job,
        request_timeout_secs,
        job_timeout_secs,
        single_request_max_bytes,
        session_max_age_secs,
        retry,
        tls_ca_file,
        proxy,
    })
}

const AUTH_METHODS: &[&str] = &["pat", "connected_app", "password"];

/// Reads `auth`: the keys its `method` allows, with the names and secrets it needs.
fn read_auth(obj: &Object, p: &mut Problems) -> Option<Auth> {
    let mut s = Section::open(obj, "auth", p);
    if s.value("method").is_none() {
        p.push("\"auth\" needs \"method\": \"pat\", \"connected_app\" or \"password\"".into());
        return None;
    }
    // Without a known method, which other keys belong here cannot be told.
    let method = s.get::<String>(p, "method", METHOD)?;
    let auth = match method.as_str() {
        "pat" => {
            let token_name = s.name(p, "token_name");
            let token_secret = s.secret(
                p,
                "token_secret",
                "token_secret_env",
                "auth.token_secret_env",
                true,
            );
            match (token_name, token_secret) {
                (Some(token_name), Some(token_secret)) => Some(Auth::Pat {
                    token_name,
                    token_secret,
                }),
                _ => None,
            }
        }
        "password" => {
            let username = s.name(p, "username");
            let password = s.secret(p, "password", "password_env", "auth.password_env", true);
            match (username, password) {
                (Some(username), Some(password)) => Some(Auth::Password { username, password }),
                _ => None,
            }
        }
        "connected_app" => {
            let client_id = s.name(p, "client_id");
            let secret_id = s.name(p, "secret_id");
            let secret_value = s.secret(
                p,
                "secret_value",
                "secret_value_env",
                "auth.secret_value_env",
                true,
            );
            let username = s.name(p, "username");
            let scopes = match s.value("scopes") {
                None => Some(PUBLISH_SCOPES.iter().map(|s| s.to_string()).collect()),
                Some(_) => match s.get::<Vec<String>>(p, "scopes", SCOPES) {
                    Some(scopes) if scopes.is_empty() => {
                        p.push(format!("\"auth.scopes\" must be {}", SCOPES.what()));
                        None
                    }
                    scopes => scopes,
                },
            };
            match (client_id, secret_id, secret_value, username, scopes) {
                (
                    Some(client_id),
                    Some(secret_id),
                    Some(secret_value),
                    Some(username),
                    Some(scopes),
                ) => Some(Auth::ConnectedApp {
                    client_id,
                    secret_id,
                    secret_value,
                    username,
                    scopes,
                }),
                _ => None,
            }
        }
        other => {
            p.push(format!(
                "\"auth.method\" {} is not supported; use \"pat\" (personal access token) or \"connected_app\" (JWT), which work with MFA, or \"password\"{}",
                quote(other),
                did_you_mean(other, AUTH_METHODS)
            ));
            return None;
        }
    };
    s.close(p, &format!(" for method {}", quote(&method)));
    auth
}

/// Reads `proxy`: an http(s) URL without credentials in it, and a user name with a password
/// (`password` or `password_env`), or neither.
fn read_proxy(obj: &Object, p: &mut Problems) -> Option<ProxySettings> {
    let mut s = Section::open(obj, "proxy", p);
    let url = s.name(p, "url").and_then(|url| check_proxy_url(url, p));
    let has_username = s.value("username").is_some();
    let username = if has_username {
        s.name(p, "username")
    } else {
        None
    };
    let password = s.secret(p, "password", "password_env", "proxy.password_env", false);
    s.close(p, "");
    let has_password = obj.contains_key("password") || obj.contains_key("password_env");
    if has_username != has_password {
        p.push(
            "\"proxy.username\" and a password (\"proxy.password_env\" or \"proxy.password\") go together"
                .into(),
        );
        return None;
    }
    let credentials = if has_username {
        Some((username?, password?))
    } else {
        None
    };
    Some(ProxySettings {
        url: url?,
        credentials,
    })
}

/// `proxy.url` if it is an http(s) URL with a host and without credentials.
fn check_proxy_url(raw: String, p: &mut Problems) -> Option<String> {
    let problem = match url::Url::parse(&raw) {
        Err(e) => format!("\"proxy.url\" must look like \"http://proxy.example.com:3128\" ({e})"),
        Ok(url) if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() => {
            "\"proxy.url\" must be an http:// or https:// URL with a host, like \"http://proxy.example.com:3128\"".into()
        }
        Ok(url) if !url.username().is_empty() || url.password().is_some() => {
            "\"proxy.url\" must not contain credentials: give \"proxy.username\" and \"proxy.password_env\" (or \"proxy.password\") instead".into()
        }
        Ok(_) => return Some(raw),
    };
    p.push(problem);
    None
}

/// Reads `retry`; a key that is absent (or has a problem) keeps its default.
fn read_retry(obj: &Object, p: &mut Problems) -> RetrySettings {
    let d = RetrySettings::default();
    let mut s = Section::open(obj, "retry", p);
    let retry = RetrySettings {
        max_attempts: s.get(p, "max_attempts", COUNT32).unwrap_or(d.max_attempts),
        max_elapsed_secs: s
            .get(p, "max_elapsed_secs", COUNT)
            .unwrap_or(d.max_elapsed_secs),
        base_delay_ms: s.get(p, "base_delay_ms", COUNT).unwrap_or(d.base_delay_ms),
        max_delay_ms: s.get(p, "max_delay_ms", COUNT).unwrap_or(d.max_delay_ms),
        max_rate_limit_wait_secs: s
            .get(p, "max_rate_limit_wait_secs", COUNT)
            .unwrap_or(d.max_rate_limit_wait_secs),
        max_reauthentications: s
            .get(p, "max_reauthentications", COUNT32)
            .unwrap_or(d.max_reauthentications),
        max_upload_restarts: s
            .get(p, "max_upload_restarts", COUNT32)
            .unwrap_or(d.max_upload_restarts),
        commit_verify_secs: s
            .get(p, "commit_verify_secs", COUNT)
            .unwrap_or(d.commit_verify_secs),
    };
    s.close(p, "");
    retry
}

/// What a value should be, for "expected …, found …".
#[derive(Clone, Copy)]
struct Want {
    /// E.g. "a string".
    what: &'static str,
    /// Said after `what` when a number was found (so of the right type): "from 0 to 4294967295".
    range: &'static str,
    /// What each element of an array should be.
    item: &'static str,
    /// The words accepted, for "did you mean".
    words: &'static [&'static str],
    /// The value may be a secret: say what type was found, never the value.
    secret: bool,
}

impl Want {
    const fn new(what: &'static str) -> Want {
        Want {
            what,
            range: "",
            item: "",
            words: &[],
            secret: false,
        }
    }
    /// One of `words`, which are listed as what is expected.
    const fn one_of(words: &'static [&'static str]) -> Want {
        Want::new("").words(words)
    }
    /// What is expected: `what`, or the words listed (`"a", "b" or "c"`).
    fn what(&self) -> std::borrow::Cow<'static, str> {
        match self.words {
            [.., last] if self.what.is_empty() => {
                let quoted = |w: &&str| format!("\"{w}\"");
                let init: Vec<String> = self.words[..self.words.len() - 1]
                    .iter()
                    .map(quoted)
                    .collect();
                match init.is_empty() {
                    true => quoted(last).into(),
                    false => format!("{} or {}", init.join(", "), quoted(last)).into(),
                }
            }
            _ => self.what.into(),
        }
    }
    const fn range(self, range: &'static str) -> Want {
        Want { range, ..self }
    }
    const fn item(self, item: &'static str) -> Want {
        Want { item, ..self }
    }
    const fn words(self, words: &'static [&'static str]) -> Want {
        Want { words, ..self }
    }
    const fn secret(self) -> Want {
        Want {
            secret: true,
            ..self
        }
    }
}

const TEXT: Want = Want::new("a string");
const SECRET: Want = Want::new("a string").secret();
const ENV_VAR: Want = Want::new("the name of an environment variable (a string)").secret();
const FLAG: Want = Want::new("true or false");
const COUNT: Want = Want::new("an integer").range("from 0 to 18446744073709551615");
const COUNT32: Want = Want::new("an integer").range("from 0 to 4294967295");
const PATH: Want = Want::new("a path (a string)");
// A string where an object belongs could be a credential (`"proxy": "http://user:pw@…"`).
const OBJECT: Want = Want::new("an object").secret();
const AUTH: Want = Want::new(
    "an object such as {\"method\": \"pat\", \"token_name\": …, \"token_secret_env\": …}",
)
.secret();
const MODE: Want = Want::one_of(&Mode::NAMES);
const FILE_TYPE: Want =
    Want::new("\"hyper\", \"tdsx\", \"tds\" or \"tde\"").words(&["hyper", "tdsx", "tds", "tde"]);
const AS_JOB: Want = Want::new("\"auto\", true or false");
const METHOD: Want = Want::one_of(AUTH_METHODS);
const PROJECT: Want = Want::new("a path such as \"Finance/Quarterly\", or an array of names");
const NAMES: Want = Want::new("an array of names").item("a string");
const SCOPES: Want =
    Want::new("a non-empty array of strings such as \"tableau:datasources:create\"")
        .item("a string");

/// Everything wrong with a configuration, to report at once.
#[derive(Default)]
struct Problems {
    list: Vec<String>,
}

impl Problems {
    fn push(&mut self, problem: String) {
        self.list.push(problem);
    }

    /// Records that the value at `path` (or, after `inner`, inside it) is not what `want` says.
    fn wrong_type(
        &mut self,
        path: &str,
        value: &Value,
        inner: &serde_path_to_error::Path,
        want: Want,
    ) {
        let (below, value) = follow(value, inner);
        let what = if below.is_empty() || want.item.is_empty() {
            want.what()
        } else {
            want.item.into()
        };
        let range = match value {
            Value::Number(_) if !want.range.is_empty() => format!(" {}", want.range),
            _ => String::new(),
        };
        let hint = match value {
            Value::String(s) if !want.secret => did_you_mean(s, want.words),
            _ => String::new(),
        };
        self.push(format!(
            "{}: expected {what}{range}, found {}{hint}",
            quote(&format!("{path}{below}")),
            found(value, want.secret)
        ));
    }

    /// Ok if there is no problem, else one error that lists them all.
    fn check(self) -> Result<()> {
        let message = match self.list.as_slice() {
            [] => return Ok(()),
            [only] => format!("config: {only}"),
            all => {
                let mut listed: Vec<String> = all
                    .iter()
                    .take(MAX_SHOWN)
                    .enumerate()
                    .map(|(i, problem)| format!("({}) {problem}", i + 1))
                    .collect();
                if all.len() > MAX_SHOWN {
                    listed.push(format!("and {} more", all.len() - MAX_SHOWN));
                }
                format!("config has {} problems: {}", all.len(), listed.join("; "))
            }
        };
        Err(Error::config(message))
    }
}

/// One object of the configuration being read: the top level, `auth`, `proxy` or `retry`.
/// The keys it allows are those the code reads from it.
struct Section<'a> {
    obj: &'a Object,
    /// `""` for the top level.
    name: &'static str,
    /// Every key read so far, in order.
    known: Vec<&'static str>,
    /// Where this section's problems start: its unknown keys are listed first.
    start: usize,
}

impl<'a> Section<'a> {
    fn open(obj: &'a Object, name: &'static str, problems: &Problems) -> Section<'a> {
        Section {
            obj,
            name,
            known: Vec::new(),
            start: problems.list.len(),
        }
    }

    /// The JSON path of `key`: `retry.max_attempts`, or `mode` at the top level.
    fn path(&self, key: &str) -> String {
        if self.name.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.name)
        }
    }

    /// The value of `key`, which this section allows.
    fn value(&mut self, key: &'static str) -> Option<&'a Value> {
        if !self.known.contains(&key) {
            self.known.push(key);
        }
        self.obj.get(key)
    }

    /// `key` as a `T`; None if it is absent or (a problem) not a `T`.
    fn get<T: DeserializeOwned>(
        &mut self,
        p: &mut Problems,
        key: &'static str,
        want: Want,
    ) -> Option<T> {
        let value = self.value(key)?;
        match serde_path_to_error::deserialize(value) {
            Ok(v) => Some(v),
            Err(e) => {
                p.wrong_type(&self.path(key), value, e.path(), want);
                None
            }
        }
    }

    /// Like [`Section::get`], with null meaning absent.
    fn opt<T: DeserializeOwned>(
        &mut self,
        p: &mut Problems,
        key: &'static str,
        want: Want,
    ) -> Option<T> {
        self.get::<Option<T>>(p, key, want).flatten()
    }

    /// Like [`Section::get`], and a problem if absent.
    fn required<T: DeserializeOwned>(
        &mut self,
        p: &mut Problems,
        key: &'static str,
        want: Want,
    ) -> Option<T> {
        if self.value(key).is_none() {
            p.push(format!(
                "missing the required key {} ({})",
                quote(&self.path(key)),
                want.what()
            ));
            return None;
        }
        self.get(p, key, want)
    }

    /// A required non-empty string.
    fn name(&mut self, p: &mut Problems, key: &'static str) -> Option<String> {
        match self.required::<String>(p, key, TEXT)? {
            v if v.is_empty() => {
                p.push(format!("{} is empty", quote(&self.path(key))));
                None
            }
            v => Some(v),
        }
    }

    /// A secret, given inline or as the name of an environment variable; None when neither
    /// is given (a problem if it is required) or on a problem.
    /// `env_field` is `env_key`'s JSON path, for messages when the variable is read.
    fn secret(
        &mut self,
        p: &mut Problems,
        key: &'static str,
        env_key: &'static str,
        env_field: &'static str,
        required: bool,
    ) -> Option<SecretSource> {
        match (self.value(key).is_some(), self.value(env_key).is_some()) {
            (true, true) => {
                p.push(format!(
                    "give either {} or {}, not both",
                    quote(&self.path(key)),
                    quote(&self.path(env_key))
                ));
                None
            }
            (true, false) => match self.get::<String>(p, key, SECRET)? {
                s if s.is_empty() => {
                    p.push(format!(
                        "{} must be a non-empty string",
                        quote(&self.path(key))
                    ));
                    None
                }
                s => Some(SecretSource::Inline(Secret(s))),
            },
            (false, true) => match self.get::<String>(p, env_key, ENV_VAR)? {
                var if var.is_empty() => {
                    p.push(format!(
                        "{} must name an environment variable",
                        quote(&self.path(env_key))
                    ));
                    None
                }
                var => Some(SecretSource::Env {
                    var,
                    field: env_field,
                }),
            },
            (false, false) => {
                if required {
                    p.push(format!(
                        "{} needs {} or {} (the name of an environment variable holding it)",
                        quote(self.name),
                        quote(key),
                        quote(env_key)
                    ));
                }
                None
            }
        }
    }

    /// Records the keys of this section that nothing read, before its other problems.
    fn close(self, p: &mut Problems, what: &str) {
        let unknown = self
            .obj
            .keys()
            .filter(|k| !self.known.contains(&k.as_str()));
        // Suggest only keys not given already.
        let absent: Vec<&str> = self
            .known
            .iter()
            .copied()
            .filter(|k| !self.obj.contains_key(*k))
            .collect();
        let problems = unknown.enumerate().map(|(i, key)| {
            let fix = match (i < MAX_SHOWN).then(|| suggest(key, &absent)).flatten() {
                Some(known) => format!(" (did you mean {}?)", quote(known)),
                None if self.name.is_empty() => {
                    ": remove it, or see the README's config table for the keys".to_owned()
                }
                None => format!(" (allowed: {})", self.known.join(", ")),
            };
            format!("unknown key {}{what}{fix}", quote(&self.path(key)))
        });
        let after = p.list.split_off(self.start.min(p.list.len()));
        p.list.extend(problems);
        p.list.extend(after);
    }
}

/// Follows `path` (where deserializing failed) into `value`: the path's text (`[1]`) and the
/// value there.
fn follow<'v>(mut value: &'v Value, path: &serde_path_to_error::Path) -> (String, &'v Value) {
    use serde_path_to_error::Segment;
    let mut text = String::new();
    for segment in path.iter() {
        let (step, next) = match segment {
            Segment::Seq { index } => (format!("[{index}]"), value.get(*index)),
            Segment::Map { key } => (format!(".{key}"), value.get(key.as_str())),
            _ => break,
        };
        let Some(next) = next else { break };
        text.push_str(&step);
        value = next;
    }
    (text, value)
}

/// What was found, for "expected …, found …". Of a secret, only the type is told.
fn found(value: &Value, secret: bool) -> String {
    match (value, secret) {
        (Value::Null, _) => "null".to_owned(),
        (Value::Bool(_), true) => "a boolean".to_owned(),
        (Value::Bool(b), false) => b.to_string(),
        (Value::Number(_), true) => "a number".to_owned(),
        (Value::Number(n), false) => format!("the number {n}"),
        (Value::String(_), true) => "a string".to_owned(),
        (Value::String(s), false) => format!("the string {}", quote(s)),
        (Value::Array(a), _) if a.is_empty() => "an empty array".to_owned(),
        (Value::Array(_), _) => "an array".to_owned(),
        (Value::Object(_), _) => "an object".to_owned(),
    }
}

/// The word of `words` that `word` is probably a misspelling of: similar (Jaro-Winkler, which
/// favours a common start), or one edit away (which short words need: "pta" for "pat").
fn suggest<'w>(word: &str, words: &[&'w str]) -> Option<&'w str> {
    if word.len() > 200 {
        return None;
    }
    let word = word.to_lowercase();
    words
        .iter()
        .map(|w| {
            let similar = strsim::jaro_winkler(&word, w);
            let edits = strsim::damerau_levenshtein(&word, w);
            (similar >= SIMILAR || edits <= 1, similar, *w)
        })
        .filter(|(close, _, _)| *close)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(_, _, w)| w)
}

/// ` (did you mean "word"?)`, or nothing when no word of `words` is close to `word`.
fn did_you_mean(word: &str, words: &[&str]) -> String {
    match suggest(word, words) {
        Some(w) => format!(" (did you mean {}?)", quote(w)),
        None => String::new(),
    }
}

/// `text` in double quotes, escaped and cut to 60 characters: safe to put in a message.
fn quote(text: &str) -> String {
    let mut quoted = String::from("\"");
    for (i, c) in text.chars().enumerate() {
        if i == 60 {
            quoted.push('…');
            break;
        }
        quoted.extend(c.escape_debug());
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_ca_file_that_is_a_device_or_too_large_is_refused_without_reading_it_all() {
        let mut b = base();
        b["tls_ca_file"] = "/dev/zero".into();
        let e = Config::from_json(&b.to_string()).unwrap_err();
        assert!(e.message().contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pem");
        std::fs::write(&big, vec![b'A'; (MAX_CA_FILE_BYTES + 1) as usize]).unwrap();
        b["tls_ca_file"] = big.to_str().unwrap().into();
        let e = Config::from_json(&b.to_string()).unwrap_err();
        assert!(e.message().contains("larger than 4 MiB"), "{e}");
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "server_url": "https://tableau.example.com/",
            "site": "",
            "auth": {"method": "pat", "token_name": "ci", "token_secret": "s3cret-value"},
            "project": "Finance/Quarterly",
            "datasource_name": "Sales",
            "mode": "create_new"
        })
    }

    fn with(key: &str, v: serde_json::Value) -> String {
        let mut b = base();
        b[key] = v;
        b.to_string()
    }

    fn err(json: &str) -> String {
        Config::from_json(json).unwrap_err().message().to_owned()
    }

    #[test]
    fn valid_config_parses_with_defaults() {
        let c = Config::from_json(&base().to_string()).unwrap();
        assert_eq!(c.server_url, "https://tableau.example.com");
        assert_eq!(
            c.project,
            ProjectTarget::Path(vec!["Finance".into(), "Quarterly".into()])
        );
        assert_eq!(c.chunk_size_bytes, DEFAULT_CHUNK_BYTES);
        assert_eq!(c.as_job, AsJob::Auto);
        assert!(
            !format!("{c:?}").contains("s3cret-value"),
            "Debug must redact secrets"
        );
    }

    #[test]
    fn modes_are_read_and_named_from_one_table() {
        for mode in Mode::ALL {
            let c = Config::from_json(&with("mode", mode.name().into())).unwrap();
            assert_eq!(c.mode, mode);
        }
        assert_eq!(Mode::NAMES, ["create_new", "overwrite", "append"]);
        assert_eq!(MODE.what(), "\"create_new\", \"overwrite\" or \"append\"");
        assert_eq!(METHOD.what(), "\"pat\", \"connected_app\" or \"password\"");
        assert_eq!(Want::one_of(&["only"]).what(), "\"only\"");
    }

    #[test]
    fn api_version_is_parsed_once() {
        let c = Config::from_json(&with("api_version", "3.19".into())).unwrap();
        assert_eq!(c.api_version, Some(ApiVersion::new(3, 19)));
        assert_eq!(c.api_version.unwrap().to_string(), "3.19");
        assert!(Config::from_json(&base().to_string())
            .unwrap()
            .api_version
            .is_none());
        assert_eq!(
            err(&with("api_version", "3.x".into())),
            "\"api_version\" must look like \"3.21\", not \"3.x\""
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        assert!(err(&with("chunk_size", 5.into())).contains("chunk_size"));
        let mut b = base();
        b["auth"]["tokn_name"] = "x".into();
        assert!(err(&b.to_string()).contains("auth.tokn_name"));
    }

    #[test]
    fn plain_http_only_for_loopback_or_opt_in() {
        assert!(
            err(&with("server_url", "http://tableau.example.com".into()))
                .contains("allow_insecure_http")
        );
        assert!(Config::from_json(&with("server_url", "http://127.0.0.1:8080".into())).is_ok());
        assert!(Config::from_json(&with("server_url", "http://[::1]:8080".into())).is_ok());
        let mut b = base();
        b["server_url"] = "http://tableau.example.com".into();
        b["allow_insecure_http"] = true.into();
        assert!(Config::from_json(&b.to_string()).is_ok());
    }

    #[test]
    fn secrets_from_env_are_read_late() {
        let mut b = base();
        b["auth"] = serde_json::json!({"method": "password", "username": "u", "password_env": "TP_TEST_UNSET_VAR_123"});
        let c = Config::from_json(&b.to_string()).unwrap();
        let Auth::Password { password, .. } = &c.auth else {
            panic!()
        };
        let e = password.resolve().unwrap_err();
        assert!(e.message().contains("TP_TEST_UNSET_VAR_123"));
    }

    #[test]
    fn bad_values_get_clear_errors() {
        assert!(err(&with("chunk_size_bytes", (MAX_CHUNK_BYTES + 1).into())).contains("64 MiB"));
        assert!(err(&with("project", "Finance//Q".into())).contains("empty name"));
        assert!(err(&with("mode", "upsert".into())).contains("upsert"));
        assert!(err(&with("api_version", "three".into())).contains("api_version"));
        assert!(err(&with("as_job", "sometimes".into())).contains("as_job"));
        let mut b = base();
        b["mode"] = "append".into();
        b["file_type"] = "tdsx".into();
        assert!(err(&b.to_string()).contains("append"));
        let mut b = base();
        b.as_object_mut().unwrap().remove("site");
        assert!(err(&b.to_string()).contains("\"site\""));
        assert!(err("[1]").contains("JSON object"));
        assert!(err("{").contains("not valid JSON"));
    }

    #[test]
    fn connected_app_auth_with_default_scopes() {
        let mut b = base();
        b["auth"] = serde_json::json!({"method": "connected_app", "client_id": "c", "secret_id": "k",
            "secret_value_env": "TP_APP_SECRET", "username": "ana@example.com"});
        let c = Config::from_json(&b.to_string()).unwrap();
        let Auth::ConnectedApp { scopes, .. } = &c.auth else {
            panic!()
        };
        assert_eq!(scopes.len(), PUBLISH_SCOPES.len());
        b["auth"]["scopes"] = serde_json::json!([]);
        assert!(err(&b.to_string()).contains("auth.scopes"));
        b["auth"]["scopes"] = serde_json::json!(["tableau:datasources:create"]);
        b["auth"]["password"] = "x".into();
        assert!(err(&b.to_string()).contains("auth.password"));
    }

    /// The message of the configuration error `config` gets (it must get one).
    fn problems(config: &serde_json::Value) -> String {
        let e = Config::from_json(&config.to_string()).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Config, "{e}");
        e.message().to_owned()
    }

    fn with_auth(auth: serde_json::Value) -> serde_json::Value {
        let mut b = base();
        b["auth"] = auth;
        b
    }

    #[test]
    fn a_misspelled_key_is_named_with_the_key_it_probably_means() {
        let mut b = base();
        let name = b
            .as_object_mut()
            .unwrap()
            .remove("datasource_name")
            .unwrap();
        b["datasourcename"] = name;
        assert_eq!(
            problems(&b),
            "config has 2 problems: (1) unknown key \"datasourcename\" (did you mean \"datasource_name\"?); \
             (2) missing the required key \"datasource_name\" (a string)"
        );
    }

    #[test]
    fn a_type_error_names_the_key_what_was_expected_and_what_was_found() {
        let mut b = base();
        b["chunk_size_bytes"] = "big".into();
        assert_eq!(
            problems(&b),
            "config: \"chunk_size_bytes\": expected an integer, found the string \"big\""
        );
        // A number out of range: the range is said.
        b["chunk_size_bytes"] = serde_json::json!(-1);
        assert_eq!(
            problems(&b),
            "config: \"chunk_size_bytes\": expected an integer from 0 to 18446744073709551615, found the number -1"
        );
        let mut b = base();
        b["retry"] = serde_json::json!({"max_attempts": 5_000_000_000u64, "base_delay_ms": 1.5});
        assert_eq!(
            problems(&b),
            "config has 2 problems: (1) \"retry.max_attempts\": expected an integer from 0 to 4294967295, found the number 5000000000; \
             (2) \"retry.base_delay_ms\": expected an integer from 0 to 18446744073709551615, found the number 1.5"
        );
        // Inside an array: the element's path.
        let mut b = base();
        b["project"] = serde_json::json!(["Finance", 7]);
        assert_eq!(
            problems(&b),
            "config: \"project[1]\": expected a string, found the number 7"
        );
        let msg = problems(&with_auth(serde_json::json!({"method": "connected_app",
            "client_id": "c", "secret_id": "k", "secret_value_env": "V", "username": "u",
            "scopes": ["tableau:content:read", 5]})));
        assert_eq!(
            msg,
            "config: \"auth.scopes[1]\": expected a string, found the number 5"
        );
        // A word that is close to an accepted one gets a suggestion.
        let mut b = base();
        b["mode"] = "overwite".into();
        assert_eq!(
            problems(&b),
            "config: \"mode\": expected \"create_new\", \"overwrite\" or \"append\", found the string \"overwite\" (did you mean \"overwrite\"?)"
        );
        let mut b = base();
        b["allow_insecure_http"] = "yes".into();
        b["site"] = serde_json::Value::Null;
        assert_eq!(
            problems(&b),
            "config has 2 problems: (1) \"allow_insecure_http\": expected true or false, found the string \"yes\"; \
             (2) \"site\": expected a string, found null"
        );
        let mut b = base();
        b["retry"] = "often".into();
        assert_eq!(
            problems(&b),
            "config: \"retry\": expected an object, found a string"
        );
    }

    #[test]
    fn null_is_absent_for_optional_top_level_keys() {
        let mut b = base();
        for key in [
            "description",
            "chunk_size_bytes",
            "as_job",
            "proxy",
            "project_id",
        ] {
            b[key] = serde_json::Value::Null;
        }
        let c = Config::from_json(&b.to_string()).unwrap();
        assert_eq!(c.chunk_size_bytes, DEFAULT_CHUNK_BYTES);
        assert!(c.proxy.is_none() && c.description.is_none());
    }

    #[test]
    fn an_unknown_key_in_retry_is_named_with_its_path() {
        let mut b = base();
        b["retry"] = serde_json::json!({"max_atempts": 3});
        assert_eq!(
            problems(&b),
            "config: unknown key \"retry.max_atempts\" (did you mean \"max_attempts\"?)"
        );
    }

    #[test]
    fn unknown_keys_in_auth_and_proxy_are_named_with_their_paths() {
        let msg = problems(&with_auth(
            serde_json::json!({"method": "pat", "tokn_name": "ci", "token_secret": "s3cret-value"}),
        ));
        assert_eq!(
            msg,
            "config has 2 problems: (1) unknown key \"auth.tokn_name\" for method \"pat\" (did you mean \"token_name\"?); \
             (2) missing the required key \"auth.token_name\" (a string)"
        );
        let mut b = base();
        b["proxy"] = serde_json::json!({"url": "http://proxy.example.com:3128", "username": "etl", "pasword": "pw-4711"});
        let msg = problems(&b);
        assert!(
            msg.contains("unknown key \"proxy.pasword\" (did you mean \"password\"?)"),
            "{msg}"
        );
        assert!(msg.contains("go together"), "{msg}");
        assert!(!msg.contains("pw-4711"), "{msg}");
        b["proxy"] = serde_json::json!({"url": "http://proxy.example.com:3128", "colour": "red"});
        assert_eq!(
            problems(&b),
            "config: unknown key \"proxy.colour\" (allowed: url, username, password, password_env)"
        );
        // The method is misspelled: which keys belong cannot be told, so only that is said.
        let msg = problems(&with_auth(serde_json::json!({"method": "pta", "tokn": 1})));
        assert!(
            msg.contains("\"auth.method\" \"pta\" is not supported"),
            "{msg}"
        );
        assert!(msg.ends_with("(did you mean \"pat\"?)"), "{msg}");
    }

    #[test]
    fn did_you_mean_only_when_a_known_key_is_close() {
        let mut b = base();
        b["colour"] = "red".into();
        assert_eq!(
            problems(&b),
            "config: unknown key \"colour\": remove it, or see the README's config table for the keys"
        );
        for far in ["foo", "chunk_größe", "timeout", "secret"] {
            let mut b = base();
            b[far] = 1.into();
            let msg = problems(&b);
            assert!(
                msg.contains(&format!("unknown key \"{far}\": remove it")),
                "{msg}"
            );
            assert!(!msg.contains("did you mean"), "{far}: {msg}");
        }
        for (near, meant) in [
            ("chunk_sise", "chunk_size_bytes"),
            ("Description", "description"),
            ("projectid", "project_id"),
            ("request_timeout", "request_timeout_secs"),
        ] {
            let mut b = base();
            b[near] = 1.into();
            let msg = problems(&b);
            assert!(
                msg.contains(&format!("(did you mean \"{meant}\"?)")),
                "{near}: {msg}"
            );
        }
        // A key already given is not suggested.
        let mut b = base();
        b["datasource-name"] = "Sales".into();
        assert!(!problems(&b).contains("did you mean"));
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let config = serde_json::json!({
            "server_url": "https://tableau.example.com",
            "site": 5,
            "auth": {"method": "pat", "token_name": "", "token_secret": "s3cret-value", "extra": 1},
            "project": "P",
            "datasourcename": "Sales",
            "mode": "create_new",
            "chunk_size_bytes": "big",
            "retry": {"max_atempts": 3, "base_delay_ms": "fast"},
            "proxy": {"url": 3128}
        });
        let msg = problems(&config);
        assert!(
            msg.starts_with("config has 9 problems: (1) unknown key \"datasourcename\" (did you mean \"datasource_name\"?); "),
            "{msg}"
        );
        for part in [
            "\"site\": expected a string, found the number 5",
            "unknown key \"auth.extra\" for method \"pat\" (allowed: method, token_name, token_secret, token_secret_env)",
            "\"auth.token_name\" is empty",
            "missing the required key \"datasource_name\" (a string)",
            "\"chunk_size_bytes\": expected an integer, found the string \"big\"",
            "unknown key \"retry.max_atempts\" (did you mean \"max_attempts\"?)",
            "\"retry.base_delay_ms\": expected an integer, found the string \"fast\"",
            "\"proxy.url\": expected a string, found the number 3128",
        ] {
            assert!(msg.contains(part), "{part}: {msg}");
        }
        assert!(!msg.contains("s3cret-value"), "{msg}");
        // Everything missing: every required key named.
        let msg = problems(&serde_json::json!({}));
        assert!(msg.starts_with("config has 5 problems: "), "{msg}");
        for key in REQUIRED {
            assert!(
                msg.contains(&format!("missing the required key \"{key}\"")),
                "{msg}"
            );
        }
    }

    const REQUIRED: [&str; 5] = ["server_url", "site", "auth", "datasource_name", "mode"];

    #[test]
    fn many_problems_are_listed_up_to_a_limit() {
        let mut b = base();
        for i in 0..30 {
            b[format!("extra_{i:02}")] = i.into();
        }
        let msg = problems(&b);
        assert!(msg.starts_with("config has 30 problems: "), "{msg}");
        assert!(msg.contains(&format!("({MAX_SHOWN}) unknown key")), "{msg}");
        assert!(!msg.contains(&format!("({}) ", MAX_SHOWN + 1)), "{msg}");
        assert!(msg.ends_with("; and 10 more"), "{msg}");
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_not_echoed() {
        let app = |secret: serde_json::Value| {
            serde_json::json!({"method": "connected_app", "client_id": "c", "secret_id": "k",
                "secret_value": secret, "username": "ana@example.com"})
        };
        for (auth, says) in [
            (
                serde_json::json!({"method": "pat", "token_name": "ci", "token_secret": 918273645}),
                "\"auth.token_secret\": expected a string, found a number",
            ),
            (
                serde_json::json!({"method": "pat", "token_name": "ci", "token_secret_env": 918273645}),
                "\"auth.token_secret_env\": expected the name of an environment variable (a string), found a number",
            ),
            (
                serde_json::json!({"method": "password", "username": "u", "password": true}),
                "\"auth.password\": expected a string, found a boolean",
            ),
            (
                serde_json::json!({"method": "password", "username": "u", "password": ["918273645"]}),
                "\"auth.password\": expected a string, found an array",
            ),
            (
                app(serde_json::json!({"value": "918273645"})),
                "\"auth.secret_value\": expected a string, found an object",
            ),
            (
                serde_json::json!("pat:918273645"),
                "\"auth\": expected an object such as",
            ),
        ] {
            let msg = problems(&with_auth(auth));
            assert!(msg.contains(says), "{says}: {msg}");
            assert!(!msg.contains("918273645"), "{msg}");
        }
        let mut b = base();
        b["proxy"] = serde_json::json!({"url": "http://proxy.example.com:3128", "username": "etl", "password": 918273645});
        assert_eq!(
            problems(&b),
            "config: \"proxy.password\": expected a string, found a number"
        );
        b["proxy"] = "http://etl:918273645@proxy.example.com:3128".into();
        assert_eq!(
            problems(&b),
            "config: \"proxy\": expected an object, found a string"
        );
        // Credentials in a server URL that does not parse are not echoed either.
        let mut b = base();
        b["server_url"] = "https://etl:918273645@tableau.example.com:port".into();
        let msg = problems(&b);
        assert!(msg.contains("\"server_url\" (not shown"), "{msg}");
        assert!(!msg.contains("918273645"), "{msg}");
        // A secret under a misspelled key: the key is named, its value is not.
        let msg = problems(&with_auth(
            serde_json::json!({"method": "pat", "token_name": "ci", "tokensecret": "918273645"}),
        ));
        assert!(msg.contains("unknown key \"auth.tokensecret\""), "{msg}");
        assert!(!msg.contains("918273645"), "{msg}");
    }

    #[test]
    fn a_root_that_is_not_an_object_is_refused_without_echoing_it() {
        for (json, found) in [
            ("[1]", "an array"),
            ("\"s3cret-token\"", "a string"),
            ("null", "null"),
            ("42", "a number"),
            ("true", "a boolean"),
        ] {
            let e = Config::from_json(json).unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::Config);
            assert_eq!(
                e.message(),
                format!("config must be a JSON object, like {{\"server_url\": …, \"site\": …, …}}, not {found}")
            );
        }
    }

    #[test]
    fn any_value_under_any_key_is_accepted_or_a_config_error() {
        let deep = (0..100).fold(serde_json::json!(1), |v, _| serde_json::json!([v]));
        let values = [
            serde_json::Value::Null,
            true.into(),
            (-1).into(),
            1.5.into(),
            1e300.into(),
            u64::MAX.into(),
            "".into(),
            "x".into(),
            "\"\n\u{1b}é".repeat(5_000).into(),
            serde_json::json!([]),
            serde_json::json!([null, 1, "a", {}]),
            serde_json::json!({}),
            serde_json::json!({"a": {"b": [null]}}),
            deep,
        ];
        // Messages quote what they echo, cut short; only a path is named in full.
        let check = |config: &serde_json::Value| match Config::from_json(&config.to_string()) {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.kind(), crate::error::ErrorKind::Config, "{e}");
                let names_a_path = ["spool_dir", "tls_ca_file"]
                    .iter()
                    .any(|k| e.message().starts_with(&format!("\"{k}\"")));
                assert!(
                    !e.message().is_empty() && (e.message().len() < 2_000 || names_a_path),
                    "{e}"
                );
            }
        };
        let top = [
            "server_url",
            "allow_insecure_http",
            "site",
            "auth",
            "project",
            "project_id",
            "datasource_name",
            "mode",
            "file_type",
            "description",
            "api_version",
            "spool_dir",
            "chunk_size_bytes",
            "as_job",
            "request_timeout_secs",
            "job_timeout_secs",
            "single_request_max_bytes",
            "session_max_age_secs",
            "retry",
            "tls_ca_file",
            "proxy",
            "unknown",
        ];
        let auths = [
            serde_json::json!({"method": "pat", "token_name": "ci", "token_secret": "s"}),
            serde_json::json!({"method": "password", "username": "u", "password_env": "V"}),
            serde_json::json!({"method": "connected_app", "client_id": "c", "secret_id": "k",
                "secret_value": "s", "username": "u", "scopes": ["a"]}),
        ];
        let nested = [
            (
                "auth",
                vec![
                    "method",
                    "token_name",
                    "token_secret",
                    "token_secret_env",
                    "username",
                    "password",
                    "password_env",
                    "client_id",
                    "secret_id",
                    "secret_value",
                    "secret_value_env",
                    "scopes",
                    "unknown",
                ],
            ),
            (
                "proxy",
                vec!["url", "username", "password", "password_env", "unknown"],
            ),
            (
                "retry",
                vec![
                    "max_attempts",
                    "max_elapsed_secs",
                    "base_delay_ms",
                    "max_delay_ms",
                    "max_rate_limit_wait_secs",
                    "max_reauthentications",
                    "max_upload_restarts",
                    "commit_verify_secs",
                    "unknown",
                ],
            ),
        ];
        for value in &values {
            for key in top {
                let mut b = base();
                b[key] = value.clone();
                check(&b);
            }
            for (section, keys) in &nested {
                let starts: Vec<serde_json::Value> = match *section {
                    "auth" => auths.to_vec(),
                    "proxy" => vec![serde_json::json!({"url": "http://proxy.example.com:3128"})],
                    _ => vec![serde_json::json!({})],
                };
                for start in starts {
                    for key in keys {
                        let mut b = base();
                        b[*section] = start.clone();
                        b[*section][*key] = value.clone();
                        check(&b);
                    }
                }
            }
        }
        // Numbers beyond u64 and f64, and nesting beyond serde_json's limit of 128.
        let text = base().to_string();
        for (value, says) in [
            (
                "18446744073709551616",
                "found the number 1.8446744073709552e+19",
            ),
            ("1e400", "not valid JSON"),
            (
                &format!("{}1{}", "[".repeat(200), "]".repeat(200)),
                "not valid JSON",
            ),
        ] {
            let json = text.replacen('{', &format!("{{\"chunk_size_bytes\": {value}, "), 1);
            let e = Config::from_json(&json).unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::Config);
            assert!(e.message().contains(says), "{says}: {e}");
        }
    }

    #[test]
    fn project_as_array_allows_slashes_in_names() {
        let c = Config::from_json(&with("project", serde_json::json!(["A/B", "C, D"]))).unwrap();
        assert_eq!(
            c.project,
            ProjectTarget::Path(vec!["A/B".into(), "C, D".into()])
        );
    }
}
