//! `Ctx`, the per-request context handlers work with: the request, its body, the caller's
//! authentication, and what the log needs to know.

use std::sync::Arc;

use futures_util::StreamExt;
use hyper::header::{HeaderMap, CONTENT_TYPE};

use super::body::drain;
use crate::multipart::Body;
use crate::state::{ApiError, Auth, Shared};

// Connected-app scopes a JWT session needs (see the README's scope table).
pub(super) const SCOPE_CONTENT_READ: &str = "tableau:content:read";
pub(super) const SCOPE_JOBS_READ: &str = "tableau:jobs:read";
pub(super) const SCOPE_FILE_UPLOADS_CREATE: &str = "tableau:file_uploads:create";
pub(super) const SCOPE_DATASOURCES_CREATE: &str = "tableau:datasources:create";

/// Per-request context.
pub(super) struct Ctx {
    pub sh: Arc<Shared>,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    /// The body, until a handler (or a fault) takes it.
    pub body: Option<Body>,
    pub auth_serial: Option<u64>,
    /// The request passed token authentication.
    pub authed: bool,
    /// The request changed the state (see `LoggedRequest::applied`).
    pub applied: bool,
    /// Notes of an injected `FailJob` fault, for the job this request creates.
    pub fail_job: Option<String>,
    /// The client asked for JSON (`Accept`).
    pub want_json: bool,
    /// The TCP connection the request came on (1, 2, … in accept order).
    pub connection: u64,
}

impl Ctx {
    /// The `X-Tableau-Auth` token.
    pub(super) fn token(&self) -> Option<String> {
        self.headers
            .get("x-tableau-auth")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    pub(super) fn content_type(&self) -> Option<String> {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Authenticate the request's token.
    pub(super) fn auth(&mut self) -> Result<Auth, ApiError> {
        let token = self.token();
        let mut st = self.sh.lock();
        let a = st.authenticate(token.as_deref(), &self.sh.cfg, self.connection)?;
        self.auth_serial = Some(a.serial);
        self.authed = true;
        Ok(a)
    }

    /// Authenticate and check the token belongs to the site in the URL.
    pub(super) fn site_auth(&mut self, site: &str) -> Result<Auth, ApiError> {
        let a = self.auth()?;
        if a.site_id != site {
            return Err(ApiError::new(
                403,
                "403000",
                "Forbidden",
                format!("The token is not valid for site '{site}'."),
            ));
        }
        Ok(a)
    }

    /// `site_auth`, then (for a connected-app JWT session) require one of the scopes `any_of`.
    pub(super) fn scoped_auth(&mut self, site: &str, any_of: &[&str]) -> Result<Auth, ApiError> {
        let a = self.site_auth(site)?;
        a.require_scope(any_of)?;
        Ok(a)
    }

    /// The whole body, refused (after draining it) if larger than `limit`.
    pub(super) async fn read_small(&mut self, limit: usize) -> Result<Vec<u8>, ApiError> {
        let mut out = Vec::new();
        if let Some(mut b) = self.body.take() {
            while let Some(c) = b.next().await {
                let c = c.map_err(|_| ApiError::malformed())?;
                if out.len() + c.len() > limit {
                    drain(b).await;
                    return Err(ApiError::bad_request("The request body is too large."));
                }
                out.extend_from_slice(&c);
            }
        }
        Ok(out)
    }

    /// The body as UTF-8 text, at most 1 MiB.
    pub(super) async fn read_text(&mut self) -> Result<String, ApiError> {
        let body = self.read_small(1024 * 1024).await?;
        String::from_utf8(body).map_err(|_| ApiError::malformed())
    }
}
