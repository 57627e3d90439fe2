//! Reading the configuration's JSON key by key: every unknown key (with a "did you mean"),
//! missing key and value of the wrong type is collected, each with its JSON path, and reported
//! in one message.

use super::*;

/// At most this many problems are listed in one message (and get a "did you mean").
pub(super) const MAX_SHOWN: usize = 20;
/// How similar (Jaro-Winkler, 0..1) an unknown word must be to a known one to suggest it
/// (or one edit away).
const SIMILAR: f64 = 0.85;

/// Reads the top-level object into a [`RawConfig`], with every problem in one error.
pub(super) fn read_config(obj: &Object) -> Result<RawConfig> {
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
    let file_type = s.opt::<String>(p, "file_type", FILE_TYPE).and_then(|name| {
        let input = Input::from_name(&name);
        if input.is_none() {
            p.push(format!(
                "\"file_type\" must be one of {}, not {}{}",
                Input::NAMES.join(", "),
                quote(&name),
                did_you_mean(&name, &Input::NAMES)
            ));
        }
        input
    });
    let columns = match s.value("columns") {
        None => None,
        Some(_) => s
            .get::<Vec<RawColumn>>(p, "columns", COLUMNS)
            .and_then(|c| read_columns(c, p)),
    };
    let csv = match s.get::<Object>(p, "csv", OBJECT) {
        Some(csv) => read_csv(&csv, p),
        None => CsvOptions::default(),
    };
    let hyper_database_version = s.opt(p, "hyper_database_version", COUNT32);
    let hyperd_path = s.opt(p, "hyperd_path", PATH);
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
    let session_wait_secs = s.opt(p, "session_wait_secs", COUNT);
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
        extract: RawExtract {
            columns,
            csv,
            hyper_database_version,
            hyperd_path,
        },
        description,
        api_version,
        spool_dir,
        chunk_size_bytes,
        as_job,
        request_timeout_secs,
        job_timeout_secs,
        session_wait_secs,
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
/// One entry of `columns` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawColumn {
    name: String,
    #[serde(rename = "type")]
    column_type: String,
}

/// Checks the declared columns: names present and unique, types known.
fn read_columns(raw: Vec<RawColumn>, p: &mut Problems) -> Option<Vec<Column>> {
    let before = p.list.len();
    if raw.is_empty() {
        p.push("\"columns\" is empty; declare every column of the CSV, or leave \"columns\" out to name them from the header".into());
    }
    let mut seen = std::collections::HashSet::new();
    let mut columns = Vec::new();
    for (i, c) in raw.into_iter().enumerate() {
        if c.name.trim().is_empty() {
            p.push(format!("\"columns[{i}].name\" is empty"));
        } else if !seen.insert(c.name.to_lowercase()) {
            p.push(format!(
                "\"columns[{i}].name\" {} is declared twice",
                quote(&c.name)
            ));
        }
        match ColumnType::parse(&c.column_type) {
            Some(t) => columns.push(Column {
                name: c.name,
                column_type: t,
            }),
            None => p.push(format!(
                "\"columns[{i}].type\" {} is not a column type; use {COLUMN_TYPES}",
                quote(&c.column_type)
            )),
        }
    }
    (p.list.len() == before).then_some(columns)
}

/// Reads `csv`: the dialect of a CSV input.
fn read_csv(obj: &Object, p: &mut Problems) -> CsvOptions {
    let d = CsvOptions::default();
    let mut s = Section::open(obj, "csv", p);
    let one_char = |s: &mut Section, p: &mut Problems, key: &'static str, default: u8| -> u8 {
        match s.get::<String>(p, key, CHARACTER) {
            None => default,
            Some(v) if v.len() == 1 && v.is_ascii() && v != "\n" && v != "\r" => v.as_bytes()[0],
            Some(v) => {
                p.push(format!(
                    "\"csv.{key}\" must be one ASCII character other than a line break, not {}",
                    quote(&v)
                ));
                default
            }
        }
    };
    let delimiter = one_char(&mut s, p, "delimiter", d.delimiter);
    let quote_char = one_char(&mut s, p, "quote", d.quote);
    let escape = one_char(&mut s, p, "escape", quote_char);
    let header = s.get(p, "header", FLAG).unwrap_or(d.header);
    let null = s.get(p, "null", TEXT).unwrap_or(d.null);
    let encoding = match s.get::<String>(p, "encoding", TEXT) {
        None => d.encoding,
        Some(e) => {
            let lower = e
                .to_ascii_lowercase()
                .replace("utf16", "utf-16")
                .replace("utf8", "utf-8");
            if ENCODINGS.contains(&lower.as_str()) {
                lower
            } else {
                p.push(format!(
                    "\"csv.encoding\" {} is not one Hyper reads; use {} (convert other encodings to UTF-8 first, e.g. with iconv)",
                    quote(&e),
                    ENCODINGS.join(", ")
                ));
                d.encoding
            }
        }
    };
    if delimiter == quote_char {
        p.push("\"csv.delimiter\" and \"csv.quote\" are the same character".into());
    }
    s.close(p, "");
    CsvOptions {
        delimiter,
        quote: quote_char,
        escape,
        header,
        null,
        encoding,
    }
}

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
pub(super) struct Want {
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
    pub(super) const fn one_of(words: &'static [&'static str]) -> Want {
        Want::new("").words(words)
    }
    /// What is expected: `what`, or the words listed (`"a", "b" or "c"`).
    pub(super) fn what(&self) -> std::borrow::Cow<'static, str> {
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
pub(super) const MODE: Want = Want::one_of(&Mode::NAMES);
const FILE_TYPE: Want =
    Want::new("\"hyper\", \"tdsx\", \"tds\", \"tde\", \"csv\", \"arrow_stream\" or \"parquet\"")
        .words(&Input::NAMES);
const COLUMNS: Want = Want::new(
    "an array of columns such as [{\"name\": \"id\", \"type\": \"bigint\"}, {\"name\": \"amount\", \"type\": \"numeric(12,2)\"}]",
)
.item("an object {\"name\": …, \"type\": …}");
const CHARACTER: Want = Want::new("one ASCII character (a string)");
const AS_JOB: Want = Want::new("\"auto\", true or false");
pub(super) const METHOD: Want = Want::one_of(AUTH_METHODS);
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
pub(super) fn found(value: &Value, secret: bool) -> String {
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
pub(super) fn quote(text: &str) -> String {
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
