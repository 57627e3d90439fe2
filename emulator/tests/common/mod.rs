//! Helpers shared by the emulator's integration tests: a tiny XML attribute reader (the tests
//! must not depend on the client library), multipart body builders and sign-in.
#![allow(dead_code)]

use reqwest::{Client, RequestBuilder, Response};
use sha2::{Digest, Sha256};
use tableau_emulator::{Config, Emulator, Fault, FaultAction};

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

/// The `<tsRequest>` payload of a data-source publish named `name` into `project`.
pub fn datasource_payload(name: &str, project: &str) -> String {
    format!(
        r#"<tsRequest><datasource name="{name}"><project id="{project}"/></datasource></tsRequest>"#
    )
}

/// A single-request publish body: the payload and a `tableau_datasource` file part.
pub fn publish_body(
    style: Style,
    name: &str,
    project: &str,
    filename: &str,
    data: &[u8],
) -> Vec<u8> {
    multipart(
        style,
        &datasource_payload(name, project),
        Some(("tableau_datasource", filename, data)),
    )
}

/// The query of an upload-session commit: `uploadSessionId=…&datasourceType=hyper`.
pub fn commit_query(id: &str) -> String {
    format!("uploadSessionId={}&datasourceType=hyper", enc(id))
}

/// A one-shot fault on the first `method` request whose path contains `path`.
pub fn fault(method: &str, path: &str, action: FaultAction) -> Fault {
    Fault {
        method: Some(method.into()),
        ..any_method_fault(path, action)
    }
}

/// A one-shot fault on the first request of any method whose path contains `path`.
pub fn any_method_fault(path: &str, action: FaultAction) -> Fault {
    Fault {
        method: None,
        path_contains: Some(path.into()),
        nth: 1,
        times: 1,
        action,
    }
}

/// A publish answer that must be 201 Created; returns its body.
pub fn created((st, _, body): (u16, Option<String>, String)) -> String {
    assert_eq!(st, 201, "{body}");
    body
}

/// GET `url` without an auth token.
pub async fn get_unauth(url: &str) -> (u16, Option<String>, String) {
    status_code(client().get(url).send().await.unwrap()).await
}

/// POST to the control API (`{url}/_emulator/{path}`); an empty `body` sends none.
pub async fn control_post(url: &str, path: &str, body: &str) -> Response {
    let mut rb = client().post(format!("{url}/_emulator/{path}"));
    if !body.is_empty() {
        rb = rb.body(body.to_owned());
    }
    rb.send().await.unwrap()
}

/// GET from the control API (`{url}/_emulator/{path}`).
pub async fn control_get(url: &str, path: &str) -> Response {
    client()
        .get(format!("{url}/_emulator/{path}"))
        .send()
        .await
        .unwrap()
}

/// Sign in with a JSON body, asking for a JSON answer.
pub async fn signin_json(url: &str, body: String) -> Response {
    client()
        .post(format!("{url}/api/{V}/auth/signin"))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
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

/// The session described by a successful sign-in answer.
pub fn session_from(url: &str, body: &str) -> Session {
    Session {
        base: format!("{url}/api/{V}"),
        token: attr(body, "credentials", "token").unwrap(),
        site: attr(body, "site", "id").unwrap(),
        user: attr(body, "user", "id").unwrap(),
        http: client(),
    }
}

/// Sign in with `body`, which must succeed.
pub async fn signin_with(url: &str, body: String) -> Session {
    let (s, body) = signin_raw(url, body).await;
    assert_eq!(s, 200, "{body}");
    session_from(url, &body)
}

/// PAT sign-in (`ci`) on `site`.
pub async fn signin(url: &str, site: &str) -> Session {
    signin_with(url, pat_body("ci", "ci-secret", site)).await
}

/// Password sign-in (`admin`) on `site`.
pub async fn signin_password(url: &str, site: &str) -> Session {
    signin_with(url, password_body("admin", "admin-pass", site)).await
}

impl Session {
    pub fn site_url(&self, rest: &str) -> String {
        format!("{}/sites/{}/{rest}", self.base, self.site)
    }
    /// `rb` with this session's token.
    pub fn auth(&self, rb: RequestBuilder) -> RequestBuilder {
        rb.header("X-Tableau-Auth", &self.token)
    }
    pub async fn get_raw(&self, url: &str) -> reqwest::Result<Response> {
        self.auth(self.http.get(url)).send().await
    }
    pub async fn get(&self, url: &str) -> (u16, Option<String>, String) {
        status_code(self.get_raw(url).await.unwrap()).await
    }
    /// GET …/sessions/current.
    pub async fn current(&self) -> (u16, Option<String>, String) {
        self.get(&format!("{}/sessions/current", self.base)).await
    }
    /// GET …/jobs/{job}.
    pub async fn job(&self, job: &str) -> (u16, Option<String>, String) {
        self.get(&self.site_url(&format!("jobs/{job}"))).await
    }
    /// GET …/datasources?{query}.
    pub async fn datasources(&self, query: &str) -> (u16, Option<String>, String) {
        self.get(&format!("{}?{query}", self.site_url("datasources")))
            .await
    }
    pub async fn projects(&self, query: &str) -> (u16, Option<String>, String) {
        self.get(&format!("{}?{query}", self.site_url("projects")))
            .await
    }
    pub async fn signout_raw(&self) -> reqwest::Result<Response> {
        self.auth(self.http.post(format!("{}/auth/signout", self.base)))
            .send()
            .await
    }
    pub async fn signout(&self) -> (u16, Option<String>, String) {
        status_code(self.signout_raw().await.unwrap()).await
    }
    /// POST …/fileUploads.
    pub async fn initiate_raw(&self) -> (u16, Option<String>, String) {
        let r = self
            .auth(self.http.post(self.site_url("fileUploads")))
            .send()
            .await
            .unwrap();
        status_code(r).await
    }
    pub async fn initiate(&self) -> String {
        let (st, _, body) = self.initiate_raw().await;
        assert_eq!(st, 201);
        assert_eq!(attr(&body, "fileUpload", "fileSize").as_deref(), Some("0"));
        attr(&body, "fileUpload", "uploadSessionId").unwrap()
    }
    /// PUT one chunk of upload session `id`, returning the raw reqwest result.
    pub async fn put_chunk(
        &self,
        id: &str,
        style: Style,
        data: &[u8],
    ) -> reqwest::Result<Response> {
        self.auth(
            self.http
                .put(self.site_url(&format!("fileUploads/{}", enc(id)))),
        )
        .header("Content-Type", content_type(style))
        .body(multipart(style, "", Some(("tableau_file", "file", data))))
        .send()
        .await
    }
    pub async fn append(
        &self,
        id: &str,
        style: Style,
        data: &[u8],
    ) -> (u16, Option<String>, String) {
        status_code(self.put_chunk(id, style, data).await.unwrap()).await
    }
    pub async fn project_id(&self, name: &str) -> String {
        let (s, _, body) = self.projects(&format!("filter=name:eq:{name}")).await;
        assert_eq!(s, 200);
        attr(&body, "project", "id").unwrap()
    }
    /// POST …/datasources?{query} (no `?` for an empty query) with the given multipart body,
    /// returning the raw reqwest result.
    pub async fn publish_send(
        &self,
        query: &str,
        style: Style,
        body: Vec<u8>,
    ) -> reqwest::Result<Response> {
        let mut url = self.site_url("datasources");
        if !query.is_empty() {
            url = format!("{url}?{query}");
        }
        self.auth(self.http.post(url))
            .header("Content-Type", content_type(style))
            .body(body)
            .send()
            .await
    }
    /// POST …/datasources?{query} with the given multipart body.
    pub async fn publish_raw(
        &self,
        query: &str,
        style: Style,
        body: Vec<u8>,
    ) -> (u16, Option<String>, String) {
        status_code(self.publish_send(query, style, body).await.unwrap()).await
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
        let body = publish_body(Style::FormData, name, project, filename, data);
        self.publish_raw(query, Style::FormData, body).await
    }
    /// A new upload session holding `data`, appended in one chunk (which must answer 200).
    pub async fn upload(&self, style: Style, data: &[u8]) -> String {
        let id = self.initiate().await;
        assert_eq!(self.append(&id, style, data).await.0, 200);
        id
    }
    /// Commit upload session `id` as an asynchronous job (`asJob=true`).
    pub async fn commit_job(
        &self,
        id: &str,
        name: &str,
        project: &str,
    ) -> (u16, Option<String>, String) {
        self.commit(&format!("{}&asJob=true", commit_query(id)), name, project)
            .await
    }
    /// Commit an upload session.
    pub async fn commit(
        &self,
        query: &str,
        name: &str,
        project: &str,
    ) -> (u16, Option<String>, String) {
        let payload = datasource_payload(name, project);
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
