//! HTTP transport: one kept-alive connection, request counting, and turning failures into
//! [`Error`]s that name Tableau's code, summary, detail, the HTTP status, and what to do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder, StatusCode};

use super::activity::{self, Activity};
use super::xml::{self, Element, TableauError};
use crate::config::Route;
use crate::error::{Error, ErrorKind, Result};

/// A successful response with its body read.
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: StatusCode,
    /// Body as text.
    pub body: String,
    /// The server's clock, from the `Date` header.
    pub date: Option<std::time::SystemTime>,
}

impl Response {
    /// Parses the body as XML; a parse failure is a server error naming the call.
    pub fn xml(&self, what: &str) -> Result<Element> {
        xml::parse(&self.body).map_err(|e| {
            Error::new(
                ErrorKind::Server,
                format!(
                    "{what}: the server's answer (HTTP {}) is not Tableau XML ({e}); is server_url a Tableau Server or Tableau Cloud address? Body starts: {}",
                    self.status.as_u16(),
                    snippet(&self.body)
                ),
            )
        })
    }
}

/// What to do when the proxy answers 407.
const PROXY_REFUSED: &str = "the proxy wants credentials: check \"proxy.username\" and \"proxy.password_env\" (or \"proxy.password\")";

use super::xml::MAX_ANSWER_BYTES;

/// A body read up to [`MAX_ANSWER_BYTES`].
enum Answer {
    Whole(String),
    /// Longer than allowed: what was read of it, for the message of an error status.
    TooLarge(String),
}

/// Longest wait for a TCP (and TLS) connection to the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP side of the client.
pub struct Http {
    client: Client,
    base: String,
    timeout: Duration,
    activity: Activity,
    requests: AtomicU64,
}

impl Http {
    /// A client for `base` (e.g. `https://tableau.example.com`), reached by `route` (extra
    /// trusted certificate authorities, a proxy).
    pub fn new(base: &str, timeout: Duration, route: Route) -> Result<Http> {
        let mut builder = Client::builder()
            .user_agent(concat!("tableau-publisher/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_max_idle_per_host(2)
            .tcp_nodelay(true);
        match route.proxy {
            Some(proxy) => builder = builder.proxy(proxy),
            None if reqwest::Url::parse(base).is_ok_and(|u| crate::config::is_loopback(&u)) => {
                builder = builder.no_proxy();
            }
            None => {}
        }
        for root in route.extra_roots {
            builder = builder.add_root_certificate(root);
        }
        let client = builder.build().map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot set up the HTTP client: {e}"),
            )
        })?;
        Ok(Http {
            client,
            base: base.to_owned(),
            timeout,
            activity: Activity::new(),
            requests: AtomicU64::new(0),
        })
    }

    /// The server's address, e.g. `https://tableau.example.com`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// HTTP requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Starts a request to `base + path` (path begins with `/`).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// What a streamed body touches as it hands bytes to the connection.
    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// Sends a request; non-2xx answers become errors. `what` names the call in messages.
    /// The per-request timeout counts from the request's latest progress: its start, or the
    /// latest piece of its body handed to the connection.
    pub async fn send(&self, req: RequestBuilder, what: &str) -> Result<Response> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        activity::until_idle(&self.activity, self.timeout, self.exchange(req, what))
            .await
            .map_err(|()| self.stalled(what))?
    }

    /// The request and its whole answer.
    async fn exchange(&self, req: RequestBuilder, what: &str) -> Result<Response> {
        let resp = req
            .send()
            .await
            .map_err(|e| self.transport_error(what, &e))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        let body = match self.read_bounded(resp, what).await? {
            Answer::Whole(body) => body,
            Answer::TooLarge(_) if status.is_success() => {
                return Err(Error::new(
                    ErrorKind::Server,
                    format!(
                        "{what}: the server's answer (HTTP {}) is larger than {} MiB, far more than any Tableau answer; refused without reading the rest; check that server_url is a Tableau Server or Tableau Cloud address (not a proxy's or portal's page)",
                        status.as_u16(),
                        MAX_ANSWER_BYTES / (1024 * 1024)
                    ),
                ))
            }
            // An error status says enough; its body's start is kept for the message.
            Answer::TooLarge(head) => head,
        };
        if status.is_success() {
            return Ok(Response { status, body, date });
        }
        Err(status_error(what, status, &body, retry_after.as_deref()))
    }

    /// Reads the answer's body, at most [`MAX_ANSWER_BYTES`] of it: a hostile or broken peer
    /// cannot make the host hold more. A body that says it is longer is refused unread.
    async fn read_bounded(&self, mut resp: reqwest::Response, what: &str) -> Result<Answer> {
        let declared = resp.content_length().unwrap_or(0);
        let mut buf = Vec::with_capacity((declared as usize).min(MAX_ANSWER_BYTES));
        let mut too_large = declared > MAX_ANSWER_BYTES as u64;
        while !too_large {
            match resp.chunk().await {
                Ok(Some(piece)) => {
                    let room = MAX_ANSWER_BYTES - buf.len();
                    buf.extend_from_slice(&piece[..piece.len().min(room)]);
                    too_large = piece.len() > room;
                }
                Ok(None) => break,
                Err(e) => return Err(self.transport_error(what, &e)),
            }
        }
        let text = match String::from_utf8(buf) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        Ok(if too_large {
            Answer::TooLarge(text)
        } else {
            Answer::Whole(text)
        })
    }

    fn stalled(&self, what: &str) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "{what}: {} made no progress for {} s (it took no byte of the request, or its answer did not come, or came too slowly to finish); raise \"request_timeout_secs\" if the server is slow to answer",
                self.base,
                self.timeout.as_secs()
            ),
        )
    }

    fn transport_error(&self, what: &str, e: &reqwest::Error) -> Error {
        let cause = error_chain(e);
        if e.is_timeout() {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "{what}: could not connect to {} within {} s ({cause}); check server_url, DNS, proxy and firewall",
                    self.base,
                    CONNECT_TIMEOUT.as_secs()
                ),
            )
        } else if cause.contains("proxy authorization required") {
            Error::new(
                ErrorKind::Auth,
                format!(
                    "{what}: the proxy refused to connect to {} ({cause}); {PROXY_REFUSED}",
                    self.base
                ),
            )
            .mark_not_sent()
        } else if cause.contains("invalid peer certificate") {
            // Permanent until the configuration changes: not retried.
            Error::new(
                ErrorKind::Config,
                format!(
                    "{what}: the TLS certificate of {} is not trusted ({cause}); if it was issued by your organisation's own certificate authority, set \"tls_ca_file\" to that CA's certificate (PEM); check that server_url names the host the certificate was issued for",
                    self.base
                ),
            )
            .mark_not_sent()
        } else if e.is_connect() {
            Error::new(
                ErrorKind::Network,
                format!(
                    "{what}: cannot connect to {} ({cause}); check server_url, DNS, proxy and firewall",
                    self.base
                ),
            )
            .mark_not_sent()
        } else {
            Error::new(
                ErrorKind::Network,
                format!("{what}: the connection to {} failed ({cause})", self.base),
            )
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

fn snippet(body: &str) -> String {
    let one_line: String = body
        .chars()
        .take(160)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("\"{}\"", one_line.trim())
}

/// The error kind and advice for a Tableau error code (or bare HTTP status).
fn classify(status: StatusCode, code: &str) -> (ErrorKind, &'static str) {
    match code {
        "401001" => (
            ErrorKind::Auth,
            "sign-in was refused: check the token name and secret (or user name and password; for a connected app: client id, secret id and value, that the app is enabled, the user name, and that this machine's clock is right) and that \"site\" is the site's content URL as it appears after /site/ in the browser (\"\" for the Default site); with MFA on, use a personal access token or a connected app",
        ),
        "401000" | "401002" => (
            ErrorKind::Auth,
            "the session token was missing, expired or ended (a second sign-in with the same personal access token ends the first session); use one token per concurrent job",
        ),
        "403007" => (
            ErrorKind::Conflict,
            "a data source with this name already exists in the project; use mode \"overwrite\" to replace it or choose another datasource_name",
        ),
        _ => match status.as_u16() {
            401 => (ErrorKind::Auth, "the server refused the credentials"),
            403 => (
                ErrorKind::Permission,
                "the user lacks permission for this (publishing needs a Creator/Explorer-can-publish role and Publish permission on the project), or the token belongs to another site",
            ),
            404 => (ErrorKind::NotFound, "check the site, project and data source names"),
            405 => (ErrorKind::Server, "the server does not support this call at this API version"),
            407 => (ErrorKind::Auth, PROXY_REFUSED),
            409 => (ErrorKind::Conflict, "the request conflicts with what is on the server"),
            413 => (ErrorKind::Server, "the request is too large for the server; lower \"chunk_size_bytes\""),
            429 => (
                ErrorKind::RateLimited,
                "Tableau is throttling requests; retry later",
            ),
            408 | 504 => (
                ErrorKind::Timeout,
                "a gateway timed out; publish asynchronously (\"as_job\": true) or lower \"chunk_size_bytes\"",
            ),
            400 => (
                ErrorKind::Server,
                "the server could not process the request; check the file is a valid extract of the configured type",
            ),
            _ => (ErrorKind::Server, "the server failed; retry later or ask its administrator"),
        },
    }
}

/// Builds the error for a non-2xx answer.
pub fn status_error(
    what: &str,
    status: StatusCode,
    body: &str,
    retry_after: Option<&str>,
) -> Error {
    let parsed: Option<TableauError> = xml::parse_error(body);
    let code = parsed.as_ref().map(|e| e.code.as_str()).unwrap_or("");
    let (kind, advice) = classify(status, code);
    let mut msg = match &parsed {
        Some(e) => format!(
            "{what} failed: HTTP {}, Tableau error {} ({}): {}",
            status.as_u16(),
            e.code,
            e.summary,
            e.detail
        ),
        None if body.trim().is_empty() => format!("{what} failed: HTTP {}", status),
        None => format!(
            "{what} failed: HTTP {}; the body is not a Tableau error: {}",
            status,
            snippet(body)
        ),
    };
    if let Some(ra) = retry_after {
        msg.push_str(&format!(" (Retry-After: {ra})"));
    }
    msg.push_str(". ");
    msg.push_str(advice);
    let wait = if status == StatusCode::TOO_MANY_REQUESTS || retry_after.is_some() {
        let detail = parsed.as_ref().map_or("", |e| e.detail.as_str());
        super::retry::requested_wait(retry_after, detail, std::time::SystemTime::now())
    } else {
        None
    };
    Error::new(kind, msg)
        .with_code(code, status.as_u16())
        .with_retry_after(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_tableau_codes() {
        let body = r#"<tsResponse xmlns="http://tableau.com/api"><error code="403007"><summary>Forbidden</summary><detail>The datasource 'X' already exists</detail></error></tsResponse>"#;
        let e = status_error("Publish", StatusCode::FORBIDDEN, body, None);
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(e.message().contains("403007") && e.message().contains("HTTP 403"));
        let e = status_error(
            "Publish",
            StatusCode::FORBIDDEN,
            "<tsResponse><error code=\"403004\"/></tsResponse>",
            None,
        );
        assert_eq!(e.kind(), ErrorKind::Permission);
        let e = status_error(
            "Query",
            StatusCode::BAD_GATEWAY,
            "<html>bad gateway</html>",
            None,
        );
        assert_eq!(e.kind(), ErrorKind::Server);
        assert!(e.message().contains("502"));
        let e = status_error("Query", StatusCode::TOO_MANY_REQUESTS, "", Some("30"));
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert!(e.message().contains("Retry-After: 30"));
    }
}
