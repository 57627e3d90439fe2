//! The demo's "usual tool": what most publishing scripts do. It signs in when the workflow
//! starts, keeps that one session, and neither retries nor signs in again.
//!
//! A few REST calls over a plain HTTP/1.1 connection per request (`std::net::TcpStream`, JSON
//! bodies), for the demo's emulator on this machine only: it speaks no TLS and refuses any
//! other address. It shares no code with the library it is compared with.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::{json, Value};

/// Longest wait for a connection, a write or a read.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The version Server Info is asked with (it exists since 2.4).
const SERVER_INFO_VERSION: &str = "2.4";

/// A signed-in session, as the usual tool keeps it from the start of the workflow.
pub struct UsualTool {
    addr: SocketAddr,
    host: String,
    version: String,
    token: String,
    site_id: String,
}

/// An answer other than the one expected.
#[derive(Debug)]
pub enum Failure {
    /// The server answered with an error status.
    Status {
        /// HTTP status.
        status: u16,
        /// What the tool said about it, as such tools do: the call, the status and
        /// Tableau's error.
        message: String,
    },
    /// No answer, or not one that could be read.
    Broken(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status { message, .. } | Failure::Broken(message) => f.write_str(message),
        }
    }
}

/// An HTTP answer.
struct Answer {
    status: u16,
    body: Value,
}

impl UsualTool {
    /// Reads Server Info for the REST API version, then signs in to `site` with a personal
    /// access token.
    pub fn sign_in(
        server_url: &str,
        site: &str,
        token_name: &str,
        token_secret: &str,
    ) -> Result<UsualTool, Failure> {
        let host = server_url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|host| !host.contains('/'))
            .ok_or_else(|| Failure::Broken(format!("{server_url} is not http://HOST:PORT")))?;
        let addr = host
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .filter(|a| a.ip().is_loopback())
            .ok_or_else(|| Failure::Broken(format!("{host} is not an address on this machine")))?;
        let mut tool = UsualTool {
            addr,
            host: host.to_owned(),
            version: SERVER_INFO_VERSION.to_owned(),
            token: String::new(),
            site_id: String::new(),
        };
        let what = "Server Info";
        let info = tool.expect(
            what,
            200,
            tool.send(
                "GET",
                &format!("/api/{SERVER_INFO_VERSION}/serverinfo"),
                None,
            )?,
        )?;
        tool.version = text(what, &info, &["serverInfo", "restApiVersion"])?;
        let what = "Sign In";
        let body = json!({"credentials": {
            "personalAccessTokenName": token_name,
            "personalAccessTokenSecret": token_secret,
            "site": {"contentUrl": site},
        }});
        let path = format!("/api/{}/auth/signin", tool.version);
        let creds = tool.expect(what, 200, tool.send("POST", &path, Some(&body))?)?;
        tool.token = text(what, &creds, &["credentials", "token"])?;
        tool.site_id = text(what, &creds, &["credentials", "site", "id"])?;
        Ok(tool)
    }

    /// Initiate File Upload, the first step of publishing a large extract, with the session
    /// signed in at the start. Returns the upload session's id.
    pub fn initiate_upload(&self) -> Result<String, Failure> {
        let what = "Initiate File Upload";
        let path = format!("/api/{}/sites/{}/fileUploads", self.version, self.site_id);
        let upload = self.expect(what, 201, self.send("POST", &path, None)?)?;
        text(what, &upload, &["fileUpload", "uploadSessionId"])
    }

    /// The answer's body if its status is `want`; else the failure, worded from Tableau's
    /// error (`{"error": {"code", "summary", "detail"}}`).
    fn expect(&self, what: &str, want: u16, answer: Answer) -> Result<Value, Failure> {
        if answer.status == want {
            return Ok(answer.body);
        }
        let error = &answer.body["error"];
        let field = |k: &str| error[k].as_str().unwrap_or("").to_owned();
        let message = match error["code"].as_str() {
            Some(code) => format!(
                "{what} failed: HTTP {}, Tableau error {code} ({}): {}",
                answer.status,
                field("summary"),
                field("detail")
            ),
            None => format!("{what} failed: HTTP {}", answer.status),
        };
        Err(Failure::Status {
            status: answer.status,
            message,
        })
    }

    /// Sends one request on a new connection and reads the whole answer.
    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, Failure> {
        let broken = |e: std::io::Error| Failure::Broken(format!("{method} {path}: {e}"));
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        if !self.token.is_empty() {
            head.push_str(&format!("X-Tableau-Auth: {}\r\n", self.token));
        }
        head.push_str("\r\n");
        let mut stream = TcpStream::connect_timeout(&self.addr, TIMEOUT).map_err(broken)?;
        stream.set_read_timeout(Some(TIMEOUT)).map_err(broken)?;
        stream.set_write_timeout(Some(TIMEOUT)).map_err(broken)?;
        stream.write_all(head.as_bytes()).map_err(broken)?;
        stream.write_all(body.as_bytes()).map_err(broken)?;
        let mut raw = Vec::new();
        // `Connection: close`: the answer ends where the connection does.
        stream.read_to_end(&mut raw).map_err(broken)?;
        parse_answer(&raw).ok_or_else(|| {
            Failure::Broken(format!(
                "{method} {path}: the answer is not HTTP/1.1 with JSON"
            ))
        })
    }
}

/// The status and JSON body (null if empty) of a complete HTTP/1.1 answer.
fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().ok()?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let body = match (chunked, length) {
        (true, _) => dechunk(rest)?,
        (false, Some(n)) => rest.get(..n)?.to_vec(),
        (false, None) => rest.to_vec(),
    };
    let body = match body.is_empty() {
        true => Value::Null,
        false => serde_json::from_slice(&body).ok()?,
    };
    Some(Answer { status, body })
}

/// The body of a `Transfer-Encoding: chunked` answer.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// The string at `path` in `value`.
fn text(what: &str, value: &Value, path: &[&str]) -> Result<String, Failure> {
    path.iter()
        .fold(value, |v, key| &v[*key])
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Failure::Broken(format!("{what}: the answer has no {}", path.join("."))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_answers_with_a_length_chunked_or_until_closed() {
        let a = parse_answer(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 9\r\n\r\n{\"a\": 1}\nextra",
        )
        .unwrap();
        assert_eq!((a.status, a.body), (401, json!({"a": 1})));
        let a = parse_answer(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"b\"\r\n3;x=y\r\n: 2\r\n1\r\n}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((a.status, a.body), (200, json!({"b": 2})));
        let a = parse_answer(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert_eq!((a.status, a.body), (204, Value::Null));
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}").is_none());
        assert!(parse_answer(b"garbage").is_none());
    }
}
