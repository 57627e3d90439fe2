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
use crate::extract::options::{
    Column, ColumnType, CsvOptions, ExtractOptions, COLUMN_TYPES, DEFAULT_HYPER_DATABASE_VERSION,
    ENCODINGS, HYPER_DATABASE_VERSIONS,
};
use crate::filetype::Input;

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
/// Default for `session_wait_secs`.
pub(crate) const DEFAULT_SESSION_WAIT: Duration = Duration::from_secs(4 * 3600);

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
    /// Forced input type, or detect from the bytes.
    pub file_type: Option<Input>,
    /// How rows (CSV, Arrow, Parquet) become a `.hyper`.
    pub extract: ExtractOptions,
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
    /// Limit on waiting for the turn at a session that publishes with the same credentials
    /// must take in turns (a server that ends a session used from two connections at once).
    pub session_wait: Duration,
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
    file_type: Option<Input>,
    extract: RawExtract,
    description: Option<String>,
    api_version: Option<String>,
    spool_dir: Option<PathBuf>,
    chunk_size_bytes: Option<u64>,
    as_job: AsJob,
    request_timeout_secs: Option<u64>,
    job_timeout_secs: Option<u64>,
    session_wait_secs: Option<u64>,
    single_request_max_bytes: Option<u64>,
    session_max_age_secs: Option<u64>,
    retry: RetrySettings,
    tls_ca_file: Option<PathBuf>,
    proxy: Option<ProxySettings>,
}

/// The keys of building rows into a `.hyper`, as read.
struct RawExtract {
    columns: Option<Vec<Column>>,
    csv: CsvOptions,
    hyper_database_version: Option<u32>,
    hyperd_path: Option<PathBuf>,
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
        let extract = validate_extract(raw.extract, raw.file_type)?;
        let api_version = match &raw.api_version {
            None => None,
            Some(v) => Some(v.parse::<ApiVersion>().map_err(|_| {
                Error::config(format!(
                    "\"api_version\" must look like \"3.21\", not {}",
                    quote(v)
                ))
            })?),
        };
        let spool_dir = match raw.spool_dir.map(crate::native_path::native) {
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
        let session_wait = positive_secs(raw.session_wait_secs, "session_wait_secs")?
            .unwrap_or(DEFAULT_SESSION_WAIT);
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
            extract,
            description: raw.description,
            api_version,
            spool_dir,
            chunk_size_bytes,
            as_job: raw.as_job,
            request_timeout,
            job_timeout,
            session_wait,
            single_request_max_bytes,
            session_max_age,
            retry: raw.retry,
            tls_ca,
            proxy: raw.proxy,
        })
    }
}

/// Checks the row-building keys against the input type, and finds hyperd now when the input
/// is rows, so a machine without it is told at init.
fn validate_extract(raw: RawExtract, input: Option<Input>) -> Result<ExtractOptions> {
    let version = raw
        .hyper_database_version
        .unwrap_or(DEFAULT_HYPER_DATABASE_VERSION);
    if !HYPER_DATABASE_VERSIONS.contains(&version) {
        return Err(Error::config(format!(
            "\"hyper_database_version\" must be one of {HYPER_DATABASE_VERSIONS:?}, not {version} (2, the default, is read by every supported Tableau version)"
        )));
    }
    let options = ExtractOptions {
        columns: raw.columns,
        csv: raw.csv,
        hyper_database_version: version,
        hyperd_path: raw.hyperd_path.map(crate::native_path::native),
    };
    if let Some(cols) = &options.columns {
        let max = options.max_numeric_precision();
        if let Some(c) = cols
            .iter()
            .find(|c| matches!(c.column_type, ColumnType::Numeric(p, _) if p > max))
        {
            return Err(Error::config(format!(
                "\"columns\": {} is {}, wider than the {max} digits hyper_database_version {version} stores; use at most numeric({max},s), or \"hyper_database_version\": 3",
                quote(&c.name),
                c.column_type.name()
            )));
        }
    }
    let declared_csv = options.columns.is_some() || options.csv != CsvOptions::default();
    match input {
        Some(Input::Tableau(t)) if declared_csv => Err(Error::config(format!(
            "\"columns\" and \"csv\" describe a CSV input, but \"file_type\" is \"{}\"; set \"file_type\": \"csv\" or leave them out",
            t.as_str()
        ))),
        Some(Input::Rows(r)) if declared_csv && r != crate::filetype::RowFormat::Csv => Err(Error::config(format!(
            "\"columns\" and \"csv\" describe a CSV input; a {} input carries its own schema, so leave them out",
            r.as_str()
        ))),
        Some(Input::Rows(r)) => {
            if !crate::extract::AVAILABLE {
                return Err(Error::config(format!(
                    "\"file_type\" \"{}\" needs a library built with the \"extract\" feature (the default); this one was built without it",
                    r.as_str()
                )));
            }
            crate::extract::locate::find(options.hyperd_path.as_deref())?;
            Ok(options)
        }
        _ => Ok(options),
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

mod read;
use read::{found, quote, read_config};

#[cfg(test)]
mod tests;
