//! The REST calls the publisher makes, with the session they need.

use std::path::Path;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use quick_xml::escape::escape;
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;

use super::http::Http;
use super::multipart::{self, FilePart};
use super::xml::{self, Datasource, FileUpload, Job, Pagination, Project, Published, ServerInfo};
use crate::config::{parse_version, Auth};
use crate::error::{Error, ErrorKind, Result};

/// The newest REST API version this client was written against.
pub const CLIENT_MAX_API_VERSION: &str = "3.28";
/// The version used for the Server Info call (available since 2.4).
const SERVER_INFO_VERSION: &str = "2.4";
/// Page size for listings (Tableau's maximum).
const PAGE_SIZE: u32 = 1000;

/// Characters escaped in query values: everything but unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One `field:operator:value` filter term.
pub struct Filter<'a> {
    /// Field name, e.g. `name`.
    pub field: &'a str,
    /// Value (compared with `eq`).
    pub value: &'a str,
}

impl Filter<'_> {
    /// Whether Tableau's filter syntax can carry the value (it cannot contain `,` or `&`).
    pub fn is_expressible(value: &str) -> bool {
        !value.contains([',', '&'])
    }
}

/// Counters reported in the result JSON.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// Successful sign-ins.
    pub sign_ins: u64,
    /// Upload sessions initiated.
    pub upload_sessions: u64,
}

/// A signed-in (or not yet signed-in) client for one server and API version.
pub struct Api {
    http: Http,
    version: String,
    token: Option<String>,
    site_id: Option<String>,
    counters: Counters,
}

/// Query parameters of Publish Data Source.
pub struct PublishParams<'a> {
    /// `overwrite=true`.
    pub overwrite: bool,
    /// `append=true`.
    pub append: bool,
    /// `asJob=true`.
    pub as_job: bool,
    /// Commit this upload session instead of sending the file in the body.
    pub upload_session_id: Option<&'a str>,
    /// `datasourceType` (required with an upload session).
    pub datasource_type: &'a str,
}

impl Api {
    /// A client for `http`'s server, speaking `version` once negotiated.
    pub fn new(http: Http) -> Api {
        Api {
            http,
            version: String::new(),
            token: None,
            site_id: None,
            counters: Counters::default(),
        }
    }

    /// The REST API version in use.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Counters so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// HTTP requests so far.
    pub fn http_requests(&self) -> u64 {
        self.http.requests()
    }

    /// The signed-in site's LUID.
    pub fn site_id(&self) -> Option<&str> {
        self.site_id.as_deref()
    }

    /// Uses `version` without asking the server.
    pub fn set_version(&mut self, version: &str) {
        self.version = version.to_owned();
    }

    /// Reads Server Info (no sign-in needed) and picks min(server, client) as the version.
    pub async fn negotiate_version(&mut self) -> Result<ServerInfo> {
        let what = "Server Info (GET /api/2.4/serverinfo)";
        let req = self
            .http
            .request(Method::GET, &format!("/api/{SERVER_INFO_VERSION}/serverinfo"));
        let resp = self.http.send(req, what).await.map_err(|e| {
            if e.http_status() == Some(404) {
                e.with_suffix(" If this server does not offer Server Info, set \"api_version\" in the config.")
            } else {
                e
            }
        })?;
        let info = xml::server_info(&resp.xml(what)?).map_err(|e| bad_answer(what, &e))?;
        let server = parse_version(&info.rest_api_version).ok_or_else(|| {
            bad_answer(what, &format!("restApiVersion \"{}\" is not a version", info.rest_api_version))
        })?;
        let client = parse_version(CLIENT_MAX_API_VERSION).expect("valid constant");
        self.version = if server < client {
            info.rest_api_version.clone()
        } else {
            CLIENT_MAX_API_VERSION.to_owned()
        };
        Ok(info)
    }

    fn site_path(&self, rest: &str) -> Result<String> {
        let site = self.site_id.as_deref().ok_or_else(|| {
            Error::new(ErrorKind::Internal, "a site call was made before signing in")
        })?;
        Ok(format!("/api/{}/sites/{site}{rest}", self.version))
    }

    fn authed(&self, method: Method, path: &str) -> Result<reqwest::RequestBuilder> {
        let token = self.token.as_deref().ok_or_else(|| {
            Error::new(ErrorKind::Internal, "an authenticated call was made before signing in")
        })?;
        Ok(self.http.request(method, path).header("X-Tableau-Auth", token))
    }

    /// Signs in to `site` (content URL) with `auth`, reading secrets from the environment now.
    pub async fn sign_in(&mut self, site: &str, auth: &Auth) -> Result<()> {
        let site_xml = escape(site);
        let body = match auth {
            Auth::Pat {
                token_name,
                token_secret,
            } => {
                let secret = token_secret.resolve()?;
                format!(
                    "<tsRequest><credentials personalAccessTokenName=\"{}\" personalAccessTokenSecret=\"{}\"><site contentUrl=\"{site_xml}\"/></credentials></tsRequest>",
                    escape(token_name),
                    escape(secret.expose())
                )
            }
            Auth::Password { username, password } => {
                let secret = password.resolve()?;
                format!(
                    "<tsRequest><credentials name=\"{}\" password=\"{}\"><site contentUrl=\"{site_xml}\"/></credentials></tsRequest>",
                    escape(username),
                    escape(secret.expose())
                )
            }
        };
        let what = format!("Sign In to site \"{site}\"");
        let req = self
            .http
            .request(Method::POST, &format!("/api/{}/auth/signin", self.version))
            .header(CONTENT_TYPE, "text/xml")
            .body(body);
        let resp = self.http.send(req, &what).await?;
        let creds = xml::credentials(&resp.xml(&what)?).map_err(|e| bad_answer(&what, &e))?;
        self.token = Some(creds.token);
        self.site_id = Some(creds.site_id);
        self.counters.sign_ins += 1;
        Ok(())
    }

    /// Signs out, ending the session. Does nothing when not signed in.
    pub async fn sign_out(&mut self) -> Result<()> {
        if self.token.is_none() {
            return Ok(());
        }
        let req = self.authed(Method::POST, &format!("/api/{}/auth/signout", self.version))?;
        self.token = None;
        self.http.send(req, "Sign Out").await.map(|_| ())
    }

    fn filter_query(&self, terms: &[Filter<'_>]) -> String {
        // Since API 3.7 Tableau's client percent-encodes the whole filter, delimiters included;
        // before that it sent the delimiters raw. Do the same.
        let modern = parse_version(&self.version).is_some_and(|v| v >= (3, 7));
        let enc = |s: &str| utf8_percent_encode(s, QUERY_VALUE).to_string();
        let (colon, comma) = if modern { ("%3A", "%2C") } else { (":", ",") };
        terms
            .iter()
            .map(|t| format!("{}{colon}eq{colon}{}", enc(t.field), enc(t.value)))
            .collect::<Vec<_>>()
            .join(comma)
    }

    async fn list_page(&self, resource: &str, terms: &[Filter<'_>], page: u64) -> Result<xml::Element> {
        let mut query = format!("?pageSize={PAGE_SIZE}&pageNumber={page}");
        if !terms.is_empty() {
            query.push_str("&filter=");
            query.push_str(&self.filter_query(terms));
        }
        let path = self.site_path(&format!("/{resource}{query}"))?;
        let what = format!("Query {resource}");
        let resp = self.http.send(self.authed(Method::GET, &path)?, &what).await?;
        resp.xml(&what)
    }

    /// All projects matching the filter terms, following pagination.
    pub async fn projects(&self, terms: &[Filter<'_>]) -> Result<Vec<Project>> {
        self.all_pages("projects", terms, xml::projects).await
    }

    /// All data sources matching the filter terms, following pagination.
    pub async fn datasources(&self, terms: &[Filter<'_>]) -> Result<Vec<Datasource>> {
        self.all_pages("datasources", terms, xml::datasources).await
    }

    async fn all_pages<T>(
        &self,
        resource: &str,
        terms: &[Filter<'_>],
        parse: fn(&xml::Element) -> std::result::Result<(Pagination, Vec<T>), String>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for page in 1.. {
            let root = self.list_page(resource, terms, page).await?;
            let (pagination, items) =
                parse(&root).map_err(|e| bad_answer(&format!("Query {resource}"), &e))?;
            let got = items.len() as u64;
            out.extend(items);
            if got == 0 || out.len() as u64 >= pagination.total_available {
                break;
            }
        }
        Ok(out)
    }

    /// Starts a file upload session.
    pub async fn initiate_upload(&mut self) -> Result<String> {
        let what = "Initiate File Upload";
        let path = self.site_path("/fileUploads")?;
        let resp = self.http.send(self.authed(Method::POST, &path)?, what).await?;
        let upload = xml::file_upload(&resp.xml(what)?).map_err(|e| bad_answer(what, &e))?;
        self.counters.upload_sessions += 1;
        Ok(upload.upload_session_id)
    }

    /// Appends `len` bytes of `file` from `offset` to the upload session.
    pub async fn append(&self, session: &str, file: &Path, offset: u64, len: u64) -> Result<FileUpload> {
        let what = format!("Append to File Upload (bytes {offset}..{})", offset + len);
        let body = multipart::body(
            "",
            Some(FilePart {
                name: "tableau_file",
                filename: "file",
                path: file,
                offset,
                len,
            }),
        )
        .await?;
        let path = self.site_path(&format!(
            "/fileUploads/{}",
            utf8_percent_encode(session, QUERY_VALUE)
        ))?;
        let req = self
            .authed(Method::PUT, &path)?
            .header(CONTENT_TYPE, body.content_type)
            .header(reqwest::header::CONTENT_LENGTH, body.content_length)
            .body(body.body);
        let resp = self.http.send(req, &what).await?;
        xml::file_upload(&resp.xml(&what)?).map_err(|e| bad_answer(&what, &e))
    }

    /// Publish Data Source: commits an upload session, or sends `file` in the body.
    pub async fn publish_datasource(
        &self,
        params: &PublishParams<'_>,
        payload_xml: &str,
        file: Option<FilePart<'_>>,
    ) -> Result<Published> {
        let what = "Publish Data Source";
        let mut query = format!(
            "?overwrite={}&asJob={}",
            params.overwrite, params.as_job
        );
        if params.append {
            query.push_str("&append=true");
        }
        if let Some(id) = params.upload_session_id {
            query.push_str(&format!(
                "&uploadSessionId={}&datasourceType={}",
                utf8_percent_encode(id, QUERY_VALUE),
                params.datasource_type
            ));
        }
        let path = self.site_path(&format!("/datasources{query}"))?;
        let body = multipart::body(payload_xml, file).await?;
        let req = self
            .authed(Method::POST, &path)?
            .header(CONTENT_TYPE, body.content_type)
            .header(reqwest::header::CONTENT_LENGTH, body.content_length)
            .body(body.body);
        let resp = self.http.send(req, what).await?;
        xml::published(&resp.xml(what)?).map_err(|e| bad_answer(what, &e))
    }

    /// Query Job.
    pub async fn job(&self, id: &str) -> Result<Job> {
        let what = "Query Job";
        let path = self.site_path(&format!("/jobs/{}", utf8_percent_encode(id, QUERY_VALUE)))?;
        let resp = self.http.send(self.authed(Method::GET, &path)?, what).await?;
        xml::job(&resp.xml(what)?).map_err(|e| bad_answer(what, &e))
    }

    /// Polls a job until `completedAt` is set, with backoff between `first` and `max` waits.
    pub async fn wait_for_job(&self, id: &str, first: Duration, max: Duration, limit: Duration) -> Result<Job> {
        let started = tokio::time::Instant::now();
        let mut wait = first;
        loop {
            let job = self.job(id).await?;
            if job.completed_at.is_some() {
                return Ok(job);
            }
            if started.elapsed() + wait > limit {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "publish job {id} did not finish within {} s (progress {}%); it may still complete on the server: check the job in Tableau, or raise \"job_timeout_secs\"",
                        limit.as_secs(),
                        job.progress.unwrap_or(0)
                    ),
                ));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 3 / 2).min(max);
        }
    }
}

fn bad_answer(what: &str, detail: &str) -> Error {
    Error::new(
        ErrorKind::Server,
        format!("{what}: unexpected answer from the server ({detail})"),
    )
}
