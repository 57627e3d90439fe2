//! The JSON configuration, validated once by `tp_init` (no network, no files written).
//!
//! Secrets may be given inline or as the name of an environment variable (`<field>_env`) that is
//! read only when publishing starts. Secrets are never printed: [`Secret`]'s `Debug` is redacted.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Fail with `TP_ERR_CONFLICT` if it exists.
    CreateNew,
    /// Replace it (or create it if absent).
    Overwrite,
    /// Append the extract's rows to it; fails with `TP_ERR_NOT_FOUND` if absent.
    Append,
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
    pub api_version: Option<String>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server_url: String,
    #[serde(default)]
    allow_insecure_http: bool,
    site: String,
    auth: serde_json::Map<String, serde_json::Value>,
    project: Option<RawProject>,
    project_id: Option<String>,
    datasource_name: String,
    mode: Mode,
    file_type: Option<FileType>,
    description: Option<String>,
    api_version: Option<String>,
    spool_dir: Option<PathBuf>,
    chunk_size_bytes: Option<u64>,
    as_job: Option<RawAsJob>,
    request_timeout_secs: Option<u64>,
    job_timeout_secs: Option<u64>,
    single_request_max_bytes: Option<u64>,
    session_max_age_secs: Option<u64>,
    #[serde(default)]
    retry: RetrySettings,
    tls_ca_file: Option<PathBuf>,
    proxy: Option<Object>,
}

#[derive(Deserialize)]
#[serde(untagged)]
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

const REQUIRED_KEYS: &[&str] = &["server_url", "site", "auth", "datasource_name", "mode"];

impl Config {
    /// Parses and validates the JSON configuration. Touches neither network nor files.
    pub fn from_json(json: &str) -> Result<Config> {
        // Missing required keys get a message of our own; serde's is terser.
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| Error::config(format!("config is not valid JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| Error::config("config must be a JSON object"))?;
        for key in REQUIRED_KEYS {
            if !obj.contains_key(*key) {
                return Err(Error::config(format!(
                    "config is missing the required key \"{key}\""
                )));
            }
        }
        let raw: RawConfig = serde_json::from_value(value).map_err(|e| {
            Error::config(format!(
                "config: {e}; check the key's spelling and type against the README's config table"
            ))
        })?;
        Self::validate(raw)
    }

    fn validate(raw: RawConfig) -> Result<Config> {
        let server_url = validate_server_url(&raw.server_url, raw.allow_insecure_http)?;
        let auth = parse_auth(&raw.auth)?;
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
        if let Some(v) = &raw.api_version {
            if parse_version(v).is_none() {
                return Err(Error::config(format!(
                    "\"api_version\" must look like \"3.21\", not \"{v}\""
                )));
            }
        }
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
        let as_job = match raw.as_job {
            None => AsJob::Auto,
            Some(RawAsJob::Bool(true)) => AsJob::Always,
            Some(RawAsJob::Bool(false)) => AsJob::Never,
            Some(RawAsJob::Word(w)) if w == "auto" => AsJob::Auto,
            Some(RawAsJob::Word(w)) => {
                return Err(Error::config(format!(
                    "\"as_job\" must be \"auto\", true or false, not \"{w}\""
                )))
            }
        };
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
        let proxy = raw.proxy.as_ref().map(parse_proxy).transpose()?;
        Ok(Config {
            server_url,
            site: raw.site,
            auth,
            project,
            datasource_name: raw.datasource_name,
            mode: raw.mode,
            file_type: raw.file_type,
            description: raw.description,
            api_version: raw.api_version,
            spool_dir,
            chunk_size_bytes,
            as_job,
            request_timeout,
            job_timeout,
            single_request_max_bytes,
            session_max_age,
            retry: raw.retry,
            tls_ca,
            proxy,
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
            "\"project\" \"{shown}\" has an empty name; write a path like \"Finance/Quarterly\", or an array of names if a name contains '/'"
        )));
    }
    Ok(names)
}

/// Parses `"3.21"` into `(3, 21)`.
pub fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
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

/// Checks the `proxy` object: an http(s) URL without credentials in it, and a user name with
/// a password (`password` or `password_env`), or neither.
fn parse_proxy(obj: &Object) -> Result<ProxySettings> {
    reject_unknown(
        obj,
        "proxy",
        &["url", "username", "password", "password_env"],
        "",
    )?;
    let raw_url = plain_field(obj, "proxy", "url")?;
    let url = url::Url::parse(&raw_url).map_err(|e| {
        Error::config(format!(
            "\"proxy.url\" must look like \"http://proxy.example.com:3128\" ({e})"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::config(
            "\"proxy.url\" must be an http:// or https:// URL with a host, like \"http://proxy.example.com:3128\"",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config(
            "\"proxy.url\" must not contain credentials: give \"proxy.username\" and \"proxy.password_env\" (or \"proxy.password\") instead",
        ));
    }
    let password = secret_field(obj, "proxy", "password", "proxy.password_env")?;
    let credentials = match (obj.contains_key("username"), password) {
        (true, Some(password)) => Some((plain_field(obj, "proxy", "username")?, password)),
        (false, None) => None,
        _ => {
            return Err(Error::config(
                "\"proxy.username\" and a password (\"proxy.password_env\" or \"proxy.password\") go together",
            ))
        }
    };
    Ok(ProxySettings {
        url: raw_url,
        credentials,
    })
}

/// The certificates of a PEM file named by `tls_ca_file`: at least one.
fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path).map_err(|e| {
        Error::config(format!(
            "\"tls_ca_file\" {}: cannot read it ({e})",
            path.display()
        ))
    })?;
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
        Error::config(format!(
            "\"server_url\" \"{url}\" is not a URL ({e}); write it like \"https://tableau.example.com\""
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
                    "\"server_url\" \"{url}\" uses plain http, which would send credentials unencrypted; use https, or set \"allow_insecure_http\": true if you accept that"
                )));
            }
        }
        other => {
            return Err(Error::config(format!(
                "\"server_url\" has scheme \"{other}\"; use https://"
            )))
        }
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

fn parse_auth(obj: &Object) -> Result<Auth> {
    let method = obj.get("method").and_then(|m| m.as_str()).ok_or_else(|| {
        Error::config("\"auth\" needs \"method\": \"pat\", \"connected_app\" or \"password\"")
    })?;
    let (allowed, auth) = match method {
        "pat" => (
            &["method", "token_name", "token_secret", "token_secret_env"][..],
            Auth::Pat {
                token_name: plain_field(obj, "auth", "token_name")?,
                token_secret: auth_secret(obj, "token_secret", "auth.token_secret_env")?,
            },
        ),
        "password" => (
            &["method", "username", "password", "password_env"][..],
            Auth::Password {
                username: plain_field(obj, "auth", "username")?,
                password: auth_secret(obj, "password", "auth.password_env")?,
            },
        ),
        "connected_app" => (
            &[
                "method",
                "client_id",
                "secret_id",
                "secret_value",
                "secret_value_env",
                "username",
                "scopes",
            ][..],
            Auth::ConnectedApp {
                client_id: plain_field(obj, "auth", "client_id")?,
                secret_id: plain_field(obj, "auth", "secret_id")?,
                secret_value: auth_secret(obj, "secret_value", "auth.secret_value_env")?,
                username: plain_field(obj, "auth", "username")?,
                scopes: match obj.get("scopes") {
                    None => PUBLISH_SCOPES.iter().map(|s| s.to_string()).collect(),
                    Some(serde_json::Value::Array(items)) if !items.is_empty() => items
                        .iter()
                        .map(|v| v.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| Error::config("\"auth.scopes\" must be an array of strings"))?,
                    Some(_) => {
                        return Err(Error::config(
                            "\"auth.scopes\" must be a non-empty array of strings such as \"tableau:datasources:create\"",
                        ))
                    }
                },
            },
        ),
        other => {
            return Err(Error::config(format!(
                "\"auth.method\" \"{other}\" is not supported; use \"pat\" (personal access token) or \"connected_app\" (JWT), which work with MFA, or \"password\""
            )))
        }
    };
    reject_unknown(obj, "auth", allowed, &format!(" for method \"{method}\""))?;
    Ok(auth)
}

type Object = serde_json::Map<String, serde_json::Value>;

/// A non-empty string at `section.key`.
fn plain_field(obj: &Object, section: &str, key: &str) -> Result<String> {
    match obj.get(key).and_then(|v| v.as_str()) {
        Some(s) if !s.is_empty() => Ok(s.to_owned()),
        _ => Err(Error::config(format!(
            "\"{section}.{key}\" is missing or empty"
        ))),
    }
}

/// A secret given inline (`section.key`) or as the name of an environment variable
/// (`section.key_env`, which is `env_field`); None when neither is given.
fn secret_field(
    obj: &Object,
    section: &str,
    key: &str,
    env_field: &'static str,
) -> Result<Option<SecretSource>> {
    let env_key = format!("{key}_env");
    match (obj.get(key), obj.get(&env_key)) {
        (Some(_), Some(_)) => Err(Error::config(format!(
            "give either \"{section}.{key}\" or \"{section}.{env_key}\", not both"
        ))),
        (Some(v), None) => match v.as_str() {
            Some(s) if !s.is_empty() => Ok(Some(SecretSource::Inline(Secret(s.to_owned())))),
            _ => Err(Error::config(format!(
                "\"{section}.{key}\" must be a non-empty string"
            ))),
        },
        (None, Some(v)) => match v.as_str() {
            Some(s) if !s.is_empty() => Ok(Some(SecretSource::Env {
                var: s.to_owned(),
                field: env_field,
            })),
            _ => Err(Error::config(format!(
                "\"{section}.{env_key}\" must name an environment variable"
            ))),
        },
        (None, None) => Ok(None),
    }
}

/// A secret `auth` must have.
fn auth_secret(obj: &Object, key: &str, env_field: &'static str) -> Result<SecretSource> {
    secret_field(obj, "auth", key, env_field)?.ok_or_else(|| {
        Error::config(format!(
            "\"auth\" needs \"{key}\" or \"{key}_env\" (the name of an environment variable holding it)"
        ))
    })
}

/// Refuses keys of `section` not in `allowed`.
fn reject_unknown(obj: &Object, section: &str, allowed: &[&str], what: &str) -> Result<()> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(Error::config(format!(
            "unknown key \"{section}.{unknown}\"{what}; allowed: {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn project_as_array_allows_slashes_in_names() {
        let c = Config::from_json(&with("project", serde_json::json!(["A/B", "C, D"]))).unwrap();
        assert_eq!(
            c.project,
            ProjectTarget::Path(vec!["A/B".into(), "C, D".into()])
        );
    }
}
