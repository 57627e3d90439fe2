//! Fuzzing entry points: one function per parser of outside input, shared by the cargo-fuzz
//! targets in `fuzz/` and the stable smoke test `tests/fuzz_smoke.rs`.
//!
//! Each function runs its parser over arbitrary bytes and panics only if an invariant fails;
//! any other panic, a stack overflow, or a hang is a bug in the parser. Server answers reach
//! the parsers as text decoded lossily (as `reqwest`'s `text()` does), so the targets do that
//! too. The emulator's multipart reader has its own entry, `tableau_emulator::fuzz_multipart`.
//! Not part of the API.

use crate::client::xml::{self, Element};
use crate::config::{Auth, Config, ProjectTarget, SecretSource};

/// The size limit of answers ([`xml::MAX_ANSWER_BYTES`]), for the smoke test's hostile inputs.
pub const MAX_ANSWER_BYTES: usize = xml::MAX_ANSWER_BYTES;

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

fn nonblank(s: &str, what: &str) {
    assert!(!s.trim().is_empty(), "{what} is blank");
}

/// The parsed tree if `data` is accepted, after checking the limits hold for it.
fn tree(data: &[u8]) -> Option<Element> {
    let body = text(data);
    let parsed = xml::parse(&body);
    if body.len() > xml::MAX_ANSWER_BYTES {
        assert!(
            parsed.is_err(),
            "an answer over MAX_ANSWER_BYTES was parsed"
        );
    }
    let root = match parsed {
        Ok(root) => root,
        Err(e) => {
            assert!(!e.is_empty(), "an empty error message");
            return None;
        }
    };
    // Depth by an explicit stack: the walk itself must not recurse.
    let (mut elements, mut attributes) = (0usize, 0usize);
    let mut todo = vec![(&root, 1usize)];
    while let Some((el, depth)) = todo.pop() {
        assert!(depth <= xml::MAX_DEPTH, "a tree deeper than MAX_DEPTH");
        assert!(!el.name.is_empty(), "an element without a name");
        assert!(el.attrs.len() <= xml::MAX_ATTRIBUTES_PER_ELEMENT);
        elements += 1;
        attributes += el.attrs.len();
        todo.extend(el.children.iter().map(|c| (c, depth + 1)));
    }
    assert!(
        elements <= xml::MAX_ELEMENTS,
        "more than MAX_ELEMENTS elements"
    );
    assert!(
        attributes <= xml::MAX_ATTRIBUTES,
        "more than MAX_ATTRIBUTES attributes"
    );
    assert_eq!(root.walk().count(), elements, "walk missed elements");
    assert!(
        !root.name.eq_ignore_ascii_case("html"),
        "an HTML page was accepted"
    );
    Some(root)
}

/// `xml::parse`: no panic, and an accepted tree is within every limit.
pub fn xml_parse(data: &[u8]) {
    if let Some(root) = tree(data) {
        // A search for any name present must find it, and find the first in document order.
        if let Some(last) = root.walk().last() {
            let found = root.find(&last.name).expect("find missed a present name");
            assert!(std::ptr::eq(
                found,
                root.walk().find(|e| e.name == last.name).unwrap()
            ));
        }
    }
}

/// `xml::server_info`.
pub fn server_info(data: &[u8]) {
    let Some(root) = tree(data) else { return };
    if let Ok(info) = xml::server_info(&root) {
        nonblank(&info.rest_api_version, "restApiVersion");
        assert_eq!(info.rest_api_version.trim(), info.rest_api_version);
    }
}

/// `xml::credentials`.
pub fn credentials(data: &[u8]) {
    let Some(root) = tree(data) else { return };
    if let Ok(c) = xml::credentials(&root) {
        nonblank(&c.token, "token");
        nonblank(&c.site_id, "site id");
    }
}

/// `xml::projects`.
pub fn projects(data: &[u8]) {
    let Some(root) = tree(data) else { return };
    if let Ok((_, list)) = xml::projects(&root) {
        for p in &list {
            nonblank(&p.id, "project id");
            nonblank(&p.name, "project name");
            if let Some(parent) = &p.parent_id {
                nonblank(parent, "parent project id");
            }
        }
    }
}

/// `xml::datasources`.
pub fn datasources(data: &[u8]) {
    let Some(root) = tree(data) else { return };
    if let Ok((_, list)) = xml::datasources(&root) {
        for d in &list {
            check_datasource(d);
        }
    }
}

fn check_datasource(d: &xml::Datasource) {
    nonblank(&d.id, "data source id");
    nonblank(&d.name, "data source name");
}

/// `xml::file_upload`.
pub fn file_upload(data: &[u8]) {
    let Some(root) = tree(data) else { return };
    if let Ok(f) = xml::file_upload(&root) {
        nonblank(&f.upload_session_id, "uploadSessionId");
    }
}

fn check_job(j: &xml::Job) {
    nonblank(&j.id, "job id");
    assert!(j.progress.is_none_or(|p| p <= 100), "progress over 100");
    if let Some(at) = &j.completed_at {
        nonblank(at, "completedAt");
    }
    for n in &j.notes {
        nonblank(n, "notes");
        assert_eq!(n.trim(), n, "notes not trimmed");
    }
}

/// `xml::job`.
pub fn job(data: &[u8]) {
    let Some(root) = tree(data) else { return };
    if let Ok(j) = xml::job(&root) {
        check_job(&j);
    }
}

/// `xml::published`.
pub fn published(data: &[u8]) {
    let Some(root) = tree(data) else { return };
    match xml::published(&root) {
        Ok(xml::Published::Datasource(d)) => check_datasource(&d),
        Ok(xml::Published::Job(j)) => {
            assert!(
                root.find("datasource").is_none(),
                "a job chosen over a data source"
            );
            check_job(&j);
        }
        Err(_) => {}
    }
}

/// `xml::parse_error`: the error-body parser, XML or JSON.
pub fn parse_error(data: &[u8]) {
    let body = text(data);
    let parsed = xml::parse_error(&body);
    if body.len() > xml::MAX_ANSWER_BYTES {
        assert!(
            parsed.is_none(),
            "an error body over MAX_ANSWER_BYTES was read"
        );
    }
    let is_json = body.trim_start().starts_with('{');
    if !is_json {
        // XML: exactly when the body parses and has an <error>.
        let has_error = xml::parse(&body).is_ok_and(|r| r.find("error").is_some());
        assert_eq!(
            parsed.is_some(),
            has_error,
            "parse_error disagrees with parse"
        );
    }
    if let Some(e) = parsed {
        if !is_json {
            assert_eq!(e.summary.trim(), e.summary);
            assert_eq!(e.detail.trim(), e.detail);
            let total = e.code.len() + e.summary.len() + e.detail.len();
            assert!(total <= body.len(), "an error longer than its body");
        }
    }
}

/// `Config::from_json`: no panic, and an accepted config meets what its fields document.
pub fn config(data: &[u8]) {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = Config::from_json(json) else {
        return;
    };
    assert!(
        cfg.server_url.starts_with("https://") || cfg.server_url.starts_with("http://"),
        "server_url {}",
        cfg.server_url
    );
    assert!(
        !cfg.server_url.ends_with('/'),
        "server_url keeps a trailing slash"
    );
    nonblank(&cfg.datasource_name, "datasource_name");
    assert!(cfg.datasource_name.chars().count() <= 255);
    assert!((64 * 1024..=64 * 1024 * 1024).contains(&cfg.chunk_size_bytes));
    assert!((1..=64 * 1024 * 1024).contains(&cfg.single_request_max_bytes));
    assert!(!cfg.request_timeout.is_zero() && !cfg.job_timeout.is_zero());
    assert!(cfg.session_max_age.is_none_or(|d| !d.is_zero()));
    assert!(cfg.retry.max_attempts >= 1);
    match &cfg.project {
        ProjectTarget::Path(names) => {
            assert!(!names.is_empty() && names.iter().all(|n| !n.is_empty()))
        }
        ProjectTarget::Id(id) => nonblank(id, "project_id"),
    }
    // An inline secret never shows in Debug output. Checked when the secret cannot appear
    // there for another reason: long, alphanumeric, once in the input, no percent-escapes.
    let lower = json.to_ascii_lowercase();
    let debug = format!("{cfg:?}").to_ascii_lowercase();
    for secret in [inline_secret(&cfg.auth), proxy_secret(&cfg)]
        .into_iter()
        .flatten()
    {
        let s = secret.to_ascii_lowercase();
        if s.len() >= 12
            && s.bytes().all(|b| b.is_ascii_alphanumeric())
            && !lower.contains('%')
            && lower.matches(&s).count() == 1
        {
            assert!(
                !debug.contains(&s),
                "an inline secret shows in the config's Debug"
            );
        }
    }
}

fn inline(s: &SecretSource) -> Option<&str> {
    match s {
        SecretSource::Inline(s) => Some(s.expose()),
        SecretSource::Env { .. } => None,
    }
}

fn inline_secret(auth: &Auth) -> Option<&str> {
    if let Auth::Pat { token_secret, .. } = auth {
        return inline(token_secret);
    }
    if let Auth::Password { password, .. } = auth {
        return inline(password);
    }
    if let Auth::ConnectedApp { secret_value, .. } = auth {
        return inline(secret_value);
    }
    None
}

fn proxy_secret(cfg: &Config) -> Option<&str> {
    inline(&cfg.proxy.as_ref()?.credentials.as_ref()?.1)
}
