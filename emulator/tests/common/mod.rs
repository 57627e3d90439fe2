//! Helpers shared by the emulator's integration tests: a tiny XML attribute reader (the tests
//! must not depend on the client library), multipart body builders and sign-in.
#![allow(dead_code)]

use reqwest::{Client, Response};
use sha2::{Digest, Sha256};
use tableau_emulator::{Config, Emulator};

pub const V: &str = "3.25";

pub fn start(cfg: Config) -> Emulator {
    Emulator::start(cfg).expect("emulator starts")
}

pub fn client() -> Client {
    Client::builder().build().unwrap()
}

/// Attribute `name` of the first `<elem …>` in `xml`.
pub fn attr(xml: &str, elem: &str, name: &str) -> Option<String> {
    attrs_all(xml, elem, name).into_iter().next()
}

/// Attribute `name` of every `<elem …>` in `xml` (elements without it are skipped).
pub fn attrs_all(xml: &str, elem: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let open = format!("<{elem}");
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let next = after.chars().next().unwrap_or('>');
        if !(next == ' ' || next == '/' || next == '>') {
            rest = after;
            continue;
        }
        let end = after.find('>').unwrap_or(after.len());
        let tag = &after[..end];
        let key = format!(" {name}=\"");
        if let Some(k) = tag.find(&key) {
            let v = &tag[k + key.len()..];
            let v = &v[..v.find('"').unwrap()];
            out.push(
                v.replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .replace("&amp;", "&"),
            );
        }
        rest = after;
    }
    out
}

/// Number of `<elem` elements.
pub fn count(xml: &str, elem: &str) -> usize {
    let open = format!("<{elem}");
    xml.match_indices(&open)
        .filter(|(i, _)| {
            let c = xml[i + open.len()..].chars().next().unwrap_or('>');
            c == ' ' || c == '/' || c == '>'
        })
        .count()
}

/// Tableau error code in an error body.
pub fn error_code(xml: &str) -> Option<String> {
    attr(xml, "error", "code")
}

pub async fn status_code(resp: Response) -> (u16, Option<String>, String) {
    let s = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    (s, error_code(&body), body)
}

pub fn sha_hex(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// A `.hyper`-looking file: the magic, then pseudo-random bytes.
pub fn hyper_file(n: usize, seed: u64) -> Vec<u8> {
    let mut v = bytes(n, seed);
    let magic = b"Hyper\x08\x00\x00";
    let k = magic.len().min(n);
    v[..k].copy_from_slice(&magic[..k]);
    v
}

/// Which Content-Disposition style to write.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Style {
    /// `Content-Disposition: name="…"` (Tableau docs / samples)
    Docs,
    /// `Content-Disposition: form-data; name="…"; filename="…"` (TSC / urllib3)
    FormData,
}

pub const BOUNDARY: &str = "b0undary-XyZ-1234567890";

/// A two-part body; `file` = (part name, filename, bytes).
pub fn multipart(style: Style, payload: &str, file: Option<(&str, &str, &[u8])>) -> Vec<u8> {
    let mut b = Vec::new();
    let disp = |name: &str, filename: Option<&str>| match (style, filename) {
        (Style::Docs, None) => format!("Content-Disposition: name=\"{name}\""),
        (Style::Docs, Some(f)) => format!("Content-Disposition: name=\"{name}\"; filename=\"{f}\""),
        (Style::FormData, None) => format!("Content-Disposition: form-data; name=\"{name}\""),
        (Style::FormData, Some(f)) => {
            format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"")
        }
    };
    b.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\n{}\r\nContent-Type: text/xml\r\n\r\n",
            disp("request_payload", None)
        )
        .as_bytes(),
    );
    b.extend_from_slice(payload.as_bytes());
    b.extend_from_slice(b"\r\n");
    if let Some((name, filename, data)) = file {
        b.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\n{}\r\nContent-Type: application/octet-stream\r\n\r\n",
                disp(name, Some(filename))
            )
            .as_bytes(),
        );
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

pub fn content_type(style: Style) -> String {
    match style {
        Style::Docs => format!("multipart/mixed; boundary={BOUNDARY}"),
        Style::FormData => format!("multipart/form-data; boundary={BOUNDARY}"),
    }
}

/// A signed-in session.
#[derive(Clone, Debug)]
pub struct Session {
    pub base: String,
    pub token: String,
    pub site: String,
    pub user: String,
    pub http: Client,
}

pub fn pat_body(name: &str, secret: &str, site: &str) -> String {
    format!(
        r#"<tsRequest><credentials personalAccessTokenName="{name}" personalAccessTokenSecret="{secret}"><site contentUrl="{site}"/></credentials></tsRequest>"#
    )
}

pub fn password_body(name: &str, password: &str, site: &str) -> String {
    format!(
        r#"<tsRequest><credentials name="{name}" password="{password}"><site contentUrl="{site}"/></credentials></tsRequest>"#
    )
}

pub async fn signin_raw(url: &str, body: String) -> (u16, String) {
    let r = client()
        .post(format!("{url}/api/{V}/auth/signin"))
        .header("Content-Type", "text/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub async fn signin(url: &str, site: &str) -> Session {
    let (s, body) = signin_raw(url, pat_body("ci", "ci-secret", site)).await;
    assert_eq!(s, 200, "{body}");
    Session {
        base: format!("{url}/api/{V}"),
        token: attr(&body, "credentials", "token").unwrap(),
        site: attr(&body, "site", "id").unwrap(),
        user: attr(&body, "user", "id").unwrap(),
        http: client(),
    }
}

impl Session {
    pub fn site_url(&self, rest: &str) -> String {
        format!("{}/sites/{}/{rest}", self.base, self.site)
    }
    pub async fn get(&self, url: &str) -> (u16, Option<String>, String) {
        let r = self
            .http
            .get(url)
            .header("X-Tableau-Auth", &self.token)
            .send()
            .await
            .unwrap();
        status_code(r).await
    }
    pub async fn projects(&self, query: &str) -> (u16, Option<String>, String) {
        self.get(&format!("{}?{query}", self.site_url("projects")))
            .await
    }
    pub async fn initiate(&self) -> String {
        let r = self
            .http
            .post(self.site_url("fileUploads"))
            .header("X-Tableau-Auth", &self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let body = r.text().await.unwrap();
        assert_eq!(attr(&body, "fileUpload", "fileSize").as_deref(), Some("0"));
        attr(&body, "fileUpload", "uploadSessionId").unwrap()
    }
    pub async fn append(
        &self,
        id: &str,
        style: Style,
        data: &[u8],
    ) -> (u16, Option<String>, String) {
        let id = id.replace(':', "%3A");
        let r = self
            .http
            .put(self.site_url(&format!("fileUploads/{id}")))
            .header("X-Tableau-Auth", &self.token)
            .header("Content-Type", content_type(style))
            .body(multipart(style, "", Some(("tableau_file", "file", data))))
            .send()
            .await
            .unwrap();
        status_code(r).await
    }
    pub async fn project_id(&self, name: &str) -> String {
        let (s, _, body) = self.projects(&format!("filter=name:eq:{name}")).await;
        assert_eq!(s, 200);
        attr(&body, "project", "id").unwrap()
    }
    /// POST …/datasources?{query} with the given multipart body.
    pub async fn publish_raw(
        &self,
        query: &str,
        style: Style,
        body: Vec<u8>,
    ) -> (u16, Option<String>, String) {
        let r = self
            .http
            .post(format!("{}?{query}", self.site_url("datasources")))
            .header("X-Tableau-Auth", &self.token)
            .header("Content-Type", content_type(style))
            .body(body)
            .send()
            .await
            .unwrap();
        status_code(r).await
    }
    /// Single-request publish of `data` as `filename`.
    pub async fn publish_file(
        &self,
        query: &str,
        name: &str,
        project: &str,
        filename: &str,
        data: &[u8],
    ) -> (u16, Option<String>, String) {
        let payload = format!(
            r#"<tsRequest><datasource name="{name}"><project id="{project}"/></datasource></tsRequest>"#
        );
        let body = multipart(
            Style::FormData,
            &payload,
            Some(("tableau_datasource", filename, data)),
        );
        self.publish_raw(query, Style::FormData, body).await
    }
    /// Commit an upload session.
    pub async fn commit(
        &self,
        query: &str,
        name: &str,
        project: &str,
    ) -> (u16, Option<String>, String) {
        let payload = format!(
            r#"<tsRequest><datasource name="{name}"><project id="{project}"/></datasource></tsRequest>"#
        );
        self.publish_raw(query, Style::Docs, multipart(Style::Docs, &payload, None))
            .await
    }
}

pub fn enc(s: &str) -> String {
    s.replace('%', "%25")
        .replace(':', "%3A")
        .replace(',', "%2C")
        .replace('[', "%5B")
        .replace(']', "%5D")
        .replace(' ', "%20")
        .replace('&', "%26")
        .replace('"', "%22")
        .replace('<', "%3C")
        .replace('>', "%3E")
}

pub async fn json(r: Response) -> serde_json::Value {
    serde_json::from_str(&r.text().await.unwrap()).unwrap()
}
