//! HTTP layer: connection handling, fault injection, routing and the REST handlers.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, BodyStream};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use sha2::Digest;

use crate::filter::{self, Kind};
use crate::multipart::{self, Body, MpError, Sink};
use crate::state::{ApiError, Auth, Mode, PendingPublish, Shared, Staged, State};
use crate::util::{ceil_mb, esc, hex, iso8601, parse_version, percent_decode, random_hex32, Query};
use crate::xml::{self, attrs, envelope, CONTENT_TYPE_XML};
use crate::{FaultAction, LoggedRequest};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Resp = Response<RespBody>;

/// A response body: the whole of `data`, or (`truncate`) only the bytes in `data` followed, after
/// a short pause that lets hyper flush them, by an error that makes hyper close the connection.
pub(crate) struct RespBody {
    data: Option<Bytes>,
    truncate: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl RespBody {
    fn new(data: impl Into<Bytes>) -> RespBody {
        RespBody {
            data: Some(data.into()),
            truncate: None,
        }
    }

    /// `data`, then a pause, then an error.
    fn truncated(data: Bytes) -> RespBody {
        RespBody {
            data: Some(data),
            truncate: Some(Box::pin(tokio::time::sleep(Duration::from_millis(50)))),
        }
    }
}

impl hyper::body::Body for RespBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(d) = self.data.take() {
            if !d.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(d))));
            }
        }
        match self.truncate.as_mut() {
            None => Poll::Ready(None),
            Some(sleep) => match sleep.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(()) => {
                    Poll::Ready(Some(Err("injected fault: response truncated".into())))
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.truncate.is_none() && self.data.as_ref().is_none_or(Bytes::is_empty)
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.truncate, &self.data) {
            // Unknown: the Content-Length header set by the fault is used instead.
            (Some(_), _) => SizeHint::default(),
            (None, Some(d)) => SizeHint::with_exact(d.len() as u64),
            (None, None) => SizeHint::with_exact(0),
        }
    }
}

/// Send the status, the headers (with the full Content-Length) and the first half of the body,
/// then close the connection.
fn truncate_response(resp: Resp) -> Resp {
    let (mut parts, body) = resp.into_parts();
    let full = body.data.unwrap_or_default();
    let half = full.slice(..full.len() / 2);
    parts.headers.insert(
        hyper::header::CONTENT_LENGTH,
        HeaderValue::from(full.len() as u64),
    );
    Response::from_parts(parts, RespBody::truncated(half))
}

const PRODUCT_VERSION: &str = "2025.1.0";
const PRODUCT_BUILD: &str = "20251.25.0312.1200";

/// The server thread: its own runtime, the accept loop, shutdown.
pub(crate) fn run(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: tokio::sync::oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<std::io::Result<()>>,
) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tableau-emulator-worker")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let mut stop = stop;
        let mut connections: u64 = 0;
        loop {
            tokio::select! {
                _ = &mut stop => break,
                r = listener.accept() => match r {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        connections += 1;
                        let (shared, number) = (shared.clone(), connections);
                        match tls.clone() {
                            None => {
                                tokio::spawn(serve_connection(shared, stream, number));
                            }
                            Some(acceptor) => {
                                tokio::spawn(async move {
                                    // A failed handshake (e.g. an untrusting client) just ends here.
                                    if let Ok(stream) = acceptor.accept(stream).await {
                                        serve_connection(shared, stream, number).await;
                                    }
                                });
                            }
                        }
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                },
            }
        }
    });
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// The TLS side of an HTTPS emulator, from PEM files.
pub(crate) fn tls_acceptor(files: &crate::TlsFiles) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::{crypto::ring, ServerConfig};
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}: {e}"))
    };
    let chain = std::fs::read(&files.cert_chain)?;
    let certs = CertificateDer::pem_slice_iter(&chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("TLS certificate file", &e))?;
    let key = PrivateKeyDer::from_pem_slice(&std::fs::read(&files.key)?)
        .map_err(|e| invalid("TLS key file", &e))?;
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("TLS set-up", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid("TLS certificate and key", &e))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves one connection; `connection` numbers it (1, 2, … in accept order) in the log.
async fn serve_connection<S>(shared: Arc<Shared>, stream: S, connection: u64)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| handle(shared.clone(), connection, req));
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .max_buf_size(1024 * 1024)
        .serve_connection(TokioIo::new(stream), svc)
        .await;
}

// Connected-app scopes a JWT session needs (see the README's scope table).
const SCOPE_CONTENT_READ: &str = "tableau:content:read";
const SCOPE_JOBS_READ: &str = "tableau:jobs:read";
const SCOPE_FILE_UPLOADS_CREATE: &str = "tableau:file_uploads:create";
const SCOPE_DATASOURCES_CREATE: &str = "tableau:datasources:create";

/// A successful reply.
struct Reply {
    status: u16,
    body: Option<String>,
    content_type: &'static str,
}

impl Reply {
    fn xml(status: u16, inner: &str) -> Reply {
        Reply {
            status,
            body: Some(envelope(inner)),
            content_type: CONTENT_TYPE_XML,
        }
    }
    fn json(status: u16, v: serde_json::Value) -> Reply {
        Reply {
            status,
            body: Some(v.to_string()),
            content_type: "application/json;charset=utf-8",
        }
    }
}

/// Per-request context.
struct Ctx {
    sh: Arc<Shared>,
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Option<Body>,
    auth_serial: Option<u64>,
    /// The request passed token authentication.
    authed: bool,
    /// The request changed the state (see `LoggedRequest::applied`).
    applied: bool,
    fail_job: Option<String>,
    want_json: bool,
}

impl Ctx {
    fn token(&self) -> Option<String> {
        self.headers
            .get("x-tableau-auth")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    fn content_type(&self) -> Option<String> {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Authenticate the request's token.
    fn auth(&mut self) -> Result<Auth, ApiError> {
        let token = self.token();
        let mut st = self.sh.lock();
        let a = st.authenticate(token.as_deref(), &self.sh.cfg)?;
        self.auth_serial = Some(a.serial);
        self.authed = true;
        Ok(a)
    }

    /// Authenticate and check the token belongs to the site in the URL.
    fn site_auth(&mut self, site: &str) -> Result<Auth, ApiError> {
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
    fn scoped_auth(&mut self, site: &str, any_of: &[&str]) -> Result<Auth, ApiError> {
        let a = self.site_auth(site)?;
        a.require_scope(any_of)?;
        Ok(a)
    }

    async fn read_small(&mut self, limit: usize) -> Result<Vec<u8>, ApiError> {
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
}

async fn drain(mut b: Body) {
    while let Some(Ok(_)) = b.next().await {}
}

fn error_response(e: &ApiError, json: bool) -> Resp {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (body, ct) = if e.code.is_empty() {
        let reason = status.canonical_reason().unwrap_or("Error");
        (
            format!(
                "<html><head><title>{} {}</title></head><body><h1>{} {}</h1></body></html>",
                e.status,
                esc(reason),
                e.status,
                esc(reason)
            ),
            "text/html;charset=utf-8",
        )
    } else if json {
        (
            serde_json::json!({"error": {"summary": e.summary, "detail": e.detail, "code": e.code}}).to_string(),
            "application/json;charset=utf-8",
        )
    } else {
        (
            xml::error_xml(&e.code, &e.summary, &e.detail),
            CONTENT_TYPE_XML,
        )
    };
    let mut r = Response::new(RespBody::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    if let Some(ra) = &e.retry_after {
        if let Ok(v) = HeaderValue::from_str(ra) {
            r.headers_mut().insert("retry-after", v);
        }
    }
    r
}

fn reply_response(r: Reply) -> Resp {
    let mut resp = Response::new(RespBody::new(r.body.map(Bytes::from).unwrap_or_default()));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    if r.status != 204 {
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(r.content_type));
    }
    resp
}

fn body_stream(incoming: Incoming, counter: Arc<AtomicU64>) -> Body {
    Box::pin(
        BodyStream::new(incoming)
            .try_filter_map(|frame| futures_util::future::ready(Ok(frame.into_data().ok())))
            .map_ok(move |b: Bytes| {
                counter.fetch_add(b.len() as u64, Ordering::Relaxed);
                b
            })
            .map_err(std::io::Error::other),
    )
}

/// `body`, handed on no faster than `bytes_per_sec`: the socket is read only as the stream is
/// polled, so the client sees a slow link.
fn paced(body: Body, bytes_per_sec: u64) -> Body {
    let started = tokio::time::Instant::now();
    let mut seen: u64 = 0;
    Box::pin(body.then(move |item| {
        if let Ok(b) = &item {
            seen += b.len() as u64;
        }
        let due = started + Duration::from_secs_f64(seen as f64 / bytes_per_sec.max(1) as f64);
        async move {
            tokio::time::sleep_until(due).await;
            item
        }
    }))
}

async fn handle(
    sh: Arc<Shared>,
    connection: u64,
    req: Request<Incoming>,
) -> Result<Resp, BoxError> {
    let path = req.uri().path().to_owned();
    if path == "/_emulator" || path.starts_with("/_emulator/") {
        return Ok(control(sh, req).await);
    }
    let method = req.method().as_str().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let (parts, incoming) = req.into_parts();
    let counter = Arc::new(AtomicU64::new(0));
    let want_json = parts
        .headers
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("json"));
    let mut ctx = Ctx {
        sh: sh.clone(),
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        headers: parts.headers,
        body: Some(body_stream(incoming, counter.clone())),
        auth_serial: None,
        authed: false,
        applied: false,
        fail_job: None,
        want_json,
    };
    let token = ctx.token();
    let target = if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query}")
    };
    let (seq, fault) = {
        let mut st = sh.lock();
        ctx.auth_serial = token.as_deref().and_then(|t| st.session_serial(t));
        (st.next_seq(), st.match_fault(&method, &target))
    };
    let log = |ctx: &Ctx, status: u16, code: Option<String>, fault: Option<String>| {
        let entry = LoggedRequest {
            seq,
            method: ctx.method.clone(),
            path: ctx.path.clone(),
            query: ctx.query.clone(),
            status,
            code,
            body_bytes: counter.load(Ordering::Relaxed),
            auth_session: ctx.auth_serial,
            fault,
            applied: ctx.applied,
            connection,
        };
        if sh.log_stderr.load(Ordering::Relaxed) {
            eprintln!(
                "{} {} {} {}{}",
                entry.method,
                entry.path,
                entry.status,
                entry.code.as_deref().unwrap_or("-"),
                entry
                    .fault
                    .as_deref()
                    .map(|f| format!(" fault={f}"))
                    .unwrap_or_default()
            );
        }
        sh.lock().push_log(entry);
    };

    let mut fault_name = None;
    let mut reset_after = false;
    let mut truncate = false;
    match fault {
        None => {}
        Some(FaultAction::Reset) => {
            log(&ctx, 0, None, Some("reset".into()));
            return Err("injected fault: reset".into());
        }
        Some(FaultAction::ResetMidBody { after_bytes }) => {
            if let Some(mut b) = ctx.body.take() {
                while counter.load(Ordering::Relaxed) < after_bytes {
                    match b.next().await {
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                }
            }
            log(&ctx, 0, None, Some(format!("reset_mid_body:{after_bytes}")));
            return Err("injected fault: reset mid body".into());
        }
        Some(FaultAction::ResetMidResponse) => {
            truncate = true;
            fault_name = Some("reset_mid_response".into());
        }
        Some(FaultAction::KillSession) => {
            if let Some(t) = &token {
                sh.lock().kill_session(t);
            }
            fault_name = Some("kill_session".into());
        }
        Some(FaultAction::Error {
            status,
            code,
            summary,
            detail,
            retry_after,
        }) => {
            if let Some(b) = ctx.body.take() {
                drain(b).await;
            }
            let e = ApiError {
                status,
                code: code.clone(),
                summary,
                detail,
                retry_after,
            };
            let resp = error_response(&e, ctx.want_json);
            let code = if code.is_empty() { None } else { Some(code) };
            log(
                &ctx,
                resp.status().as_u16(),
                code,
                Some(format!("error:{status}")),
            );
            return Ok(resp);
        }
        Some(FaultAction::Delay { ms }) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            fault_name = Some(format!("delay:{ms}"));
        }
        Some(FaultAction::SlowBody { bytes_per_sec }) => {
            if let Some(body) = ctx.body.take() {
                ctx.body = Some(paced(body, bytes_per_sec));
            }
            fault_name = Some(format!("slow_body:{bytes_per_sec}"));
        }
        Some(FaultAction::ExpireToken) => {
            if let Some(t) = &token {
                sh.lock().expire_session(t);
            }
            fault_name = Some("expire_token".into());
        }
        Some(FaultAction::FailJob { notes }) => {
            ctx.fail_job = Some(notes);
            fault_name = Some("fail_job".into());
        }
        Some(FaultAction::ResetAfterBody) => {
            reset_after = true;
            fault_name = Some("reset_after_body".into());
        }
    }

    let result = route(&mut ctx).await;
    if let Some(b) = ctx.body.take() {
        drain(b).await;
    }
    if result.is_err() {
        ctx.applied = false;
    }
    if ctx.authed {
        sh.lock().count_authenticated_request();
    }
    let (resp, code) = match result {
        Ok(r) => (reply_response(r), None),
        Err(e) => (error_response(&e, ctx.want_json), Some(e.code.clone())),
    };
    let empty = resp.body().is_end_stream();
    if reset_after || (truncate && empty) {
        log(&ctx, 0, code, fault_name);
        return Err("injected fault: reset after body".into());
    }
    log(&ctx, resp.status().as_u16(), code, fault_name);
    if truncate {
        return Ok(truncate_response(resp));
    }
    Ok(resp)
}

fn allow(method: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&method) {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed(method))
    }
}

async fn route(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let path = ctx.path.clone();
    let rest = path.strip_prefix("/api").unwrap_or(&path);
    let unknown = || ApiError::unknown_resource(rest);
    let inner = match path.strip_prefix("/api/") {
        Some(r) => r,
        None => return Err(unknown()),
    };
    let (ver, tail) = inner.split_once('/').unwrap_or((inner, ""));
    let v = parse_version(ver).ok_or_else(unknown)?;
    let max = parse_version(&ctx.sh.cfg.api_version).unwrap_or((3, 25));
    if v > max {
        return Err(unknown());
    }
    let segs: Vec<String> = tail
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = ctx.method.clone();
    let m = m.as_str();
    match segs.as_slice() {
        ["serverinfo"] | ["serverInfo"] => {
            if v < (2, 4) {
                return Err(unknown());
            }
            allow(m, &["GET"])?;
            Ok(server_info(ctx))
        }
        ["auth", "signin"] => {
            allow(m, &["POST"])?;
            sign_in(ctx).await
        }
        ["auth", "signout"] => {
            allow(m, &["POST"])?;
            let token = ctx.token().unwrap_or_default();
            ctx.auth()?;
            ctx.sh.lock().sign_out(&token);
            ctx.applied = true;
            Ok(Reply {
                status: 204,
                body: None,
                content_type: CONTENT_TYPE_XML,
            })
        }
        ["auth", "switchSite"] => {
            allow(m, &["POST"])?;
            switch_site(ctx).await
        }
        ["sessions", "current"] => {
            allow(m, &["GET"])?;
            current_session(ctx)
        }
        ["sites", site, "projects"] => {
            allow(m, &["GET"])?;
            let site = site.to_string();
            list_projects(ctx, &site)
        }
        ["sites", _, "projects", _] => Err(ApiError::method_not_allowed(m)),
        ["sites", site, "fileUploads"] => {
            allow(m, &["POST"])?;
            let site = site.to_string();
            let auth = ctx.scoped_auth(&site, &[SCOPE_FILE_UPLOADS_CREATE])?;
            let id = ctx
                .sh
                .lock()
                .new_upload(&site, auth.serial, &ctx.sh.data_dir);
            ctx.applied = true;
            Ok(Reply::xml(
                201,
                &format!(
                    "<fileUpload{}/>",
                    attrs(&[("uploadSessionId", &id), ("fileSize", "0")])
                ),
            ))
        }
        ["sites", site, "fileUploads", id] => {
            allow(m, &["PUT"])?;
            let (site, id) = (site.to_string(), id.to_string());
            append_upload(ctx, &site, &id).await
        }
        ["sites", site, "datasources"] => {
            allow(m, &["GET", "POST"])?;
            let site = site.to_string();
            if m == "GET" {
                list_datasources(ctx, &site)
            } else {
                publish(ctx, &site).await
            }
        }
        ["sites", site, "datasources", id] => {
            allow(m, &["GET"])?;
            let (site, id) = (site.to_string(), id.to_string());
            get_datasource(ctx, &site, &id)
        }
        ["sites", site, "jobs", id] => {
            allow(m, &["GET"])?;
            let (site, id) = (site.to_string(), id.to_string());
            get_job(ctx, &site, &id)
        }
        _ => Err(unknown()),
    }
}

// ---------------------------------------------------------------- auth

fn server_info(ctx: &Ctx) -> Reply {
    let api = &ctx.sh.cfg.api_version;
    if ctx.want_json {
        return Reply::json(
            200,
            serde_json::json!({"serverInfo": {"productVersion": {"value": PRODUCT_VERSION, "build": PRODUCT_BUILD}, "restApiVersion": api}}),
        );
    }
    Reply::xml(
        200,
        &format!(
            "<serverInfo><productVersion build=\"{PRODUCT_BUILD}\">{PRODUCT_VERSION}</productVersion><restApiVersion>{}</restApiVersion></serverInfo>",
            esc(api)
        ),
    )
}

fn ttl_text(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

fn credentials_reply(
    ctx: &Ctx,
    token: &str,
    site_id: &str,
    content_url: &str,
    user_id: &str,
) -> Reply {
    let ttl = ttl_text(ctx.sh.cfg.token_ttl);
    if ctx.want_json {
        return Reply::json(
            200,
            serde_json::json!({"credentials": {"site": {"id": site_id, "contentUrl": content_url}, "user": {"id": user_id}, "token": token, "estimatedTimeToExpiration": ttl}}),
        );
    }
    Reply::xml(
        200,
        &format!(
            "<credentials{}><site{}/><user{}/></credentials>",
            attrs(&[("token", token), ("estimatedTimeToExpiration", &ttl)]),
            attrs(&[("id", site_id), ("contentUrl", content_url)]),
            attrs(&[("id", user_id)])
        ),
    )
}

async fn sign_in(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let body = ctx.read_small(1024 * 1024).await?;
    let text = String::from_utf8(body).map_err(|_| ApiError::malformed())?;
    let is_json = ctx.content_type().is_some_and(|c| c.contains("json"));
    let creds = if is_json {
        xml::parse_signin_json(&text)
    } else {
        xml::parse_signin_xml(&text)
    }
    .ok_or_else(ApiError::malformed)?;
    let (token, serial, site_id, user_id) = {
        let mut st = ctx.sh.lock();
        st.sign_in(&creds)?
    };
    ctx.auth_serial = Some(serial);
    ctx.applied = true;
    let cu = ctx
        .sh
        .lock()
        .site(&site_id)
        .map(|s| s.content_url.clone())
        .unwrap_or_default();
    Ok(credentials_reply(ctx, &token, &site_id, &cu, &user_id))
}

async fn switch_site(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let auth = ctx.auth()?;
    let token = ctx.token().unwrap_or_default();
    let body = ctx.read_small(1024 * 1024).await?;
    let text = String::from_utf8(body).map_err(|_| ApiError::malformed())?;
    let cu = xml::parse_switch_site(&text).ok_or_else(ApiError::malformed)?;
    let (t, serial, site_id, user_id) = ctx.sh.lock().switch_site(&token, &auth, &cu)?;
    ctx.auth_serial = Some(serial);
    ctx.applied = true;
    let cu = ctx
        .sh
        .lock()
        .site(&site_id)
        .map(|s| s.content_url.clone())
        .unwrap_or_default();
    Ok(credentials_reply(ctx, &t, &site_id, &cu, &user_id))
}

fn current_session(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let auth = ctx.auth()?;
    let st = ctx.sh.lock();
    let site = st
        .site(&auth.site_id)
        .ok_or_else(ApiError::invalid_credentials)?;
    let user = st
        .user(&auth.user_id)
        .ok_or_else(ApiError::invalid_credentials)?;
    Ok(Reply::xml(
        200,
        &format!(
            "<session><site{}/><user{}/></session>",
            attrs(&[
                ("id", &site.id),
                ("name", &site.name),
                ("contentUrl", &site.content_url)
            ]),
            attrs(&[
                ("id", &user.id),
                ("name", &user.name),
                ("siteRole", &user.site_role)
            ])
        ),
    ))
}

// ---------------------------------------------------------------- projects

fn list_projects(ctx: &mut Ctx, site: &str) -> Result<Reply, ApiError> {
    ctx.scoped_auth(site, &[SCOPE_CONTENT_READ])?;
    let q = Query::parse(&ctx.query);
    let conds = filter::parse_filter(q.get("filter"))?;
    filter::check_ops(
        &conds,
        &[
            ("name", Kind::Text),
            ("parentProjectId", Kind::Id),
            ("topLevelProject", Kind::Bool),
            ("createdAt", Kind::Time),
            ("updatedAt", Kind::Time),
        ],
    )?;
    let sort = filter::parse_sort(q.get("sort"), &["name", "createdAt", "updatedAt"])?;
    let (size, number) = filter::page(&q, ctx.sh.cfg.max_page_size)?;
    let st = ctx.sh.lock();
    let mut items: Vec<_> = st
        .projects
        .iter()
        .filter(|p| p.site_id == site)
        .filter(|p| {
            conds.iter().all(|c| match c.field.as_str() {
                "name" => filter::matches(c, &p.name),
                "parentProjectId" => filter::matches(c, p.parent_id.as_deref().unwrap_or("")),
                "topLevelProject" => (c.values[0] == "true") == p.parent_id.is_none(),
                "createdAt" => filter::matches(c, &iso8601(p.created_at)),
                "updatedAt" => filter::matches(c, &iso8601(p.updated_at)),
                _ => false,
            })
        })
        .collect();
    for (f, desc) in sort.iter().rev() {
        items.sort_by(|a, b| {
            let o = match f.as_str() {
                "name" => a.name.cmp(&b.name),
                "createdAt" => a.created_at.cmp(&b.created_at),
                _ => a.updated_at.cmp(&b.updated_at),
            };
            if *desc {
                o.reverse()
            } else {
                o
            }
        });
    }
    let mut out = pagination(number, size, items.len());
    out.push_str("<projects>");
    for p in filter::slice(&items, size, number) {
        let mut a = vec![
            ("id", p.id.as_str()),
            ("name", p.name.as_str()),
            ("description", p.description.as_str()),
            ("contentPermissions", "ManagedByOwner"),
        ];
        if let Some(pp) = &p.parent_id {
            a.push(("parentProjectId", pp));
        }
        let created = iso8601(p.created_at);
        let updated = iso8601(p.updated_at);
        a.push(("createdAt", &created));
        a.push(("updatedAt", &updated));
        out.push_str(&format!(
            "<project{}><owner{}/></project>",
            attrs(&a),
            attrs(&[("id", &p.owner_id)])
        ));
    }
    out.push_str("</projects>");
    Ok(Reply::xml(200, &out))
}

fn pagination(number: u32, size: u32, total: usize) -> String {
    format!(
        "<pagination{}/>",
        attrs(&[
            ("pageNumber", &number.to_string()),
            ("pageSize", &size.to_string()),
            ("totalAvailable", &total.to_string())
        ])
    )
}

// ---------------------------------------------------------------- uploads

fn mp_error(e: MpError, too_large: impl FnOnce() -> ApiError) -> ApiError {
    match e {
        MpError::Malformed(_) => ApiError::malformed(),
        MpError::TooLarge => too_large(),
        MpError::Io(e) => ApiError::new(
            500,
            "500000",
            "Internal Server Error",
            format!("Could not store the upload: {e}"),
        ),
    }
}

async fn append_upload(ctx: &mut Ctx, site: &str, id: &str) -> Result<Reply, ApiError> {
    let auth = ctx.scoped_auth(site, &[SCOPE_FILE_UPLOADS_CREATE])?;
    let sess = ctx
        .sh
        .lock()
        .upload_for(id, &auth, ctx.sh.cfg.bind_upload_sessions_to_auth)?;
    let boundary =
        multipart::boundary(ctx.content_type().as_deref()).ok_or_else(ApiError::malformed)?;
    let mut data = sess.data.lock().await;
    if data.consumed {
        return Err(ApiError::new(
            404,
            "404000",
            "Resource Not Found",
            format!("Upload session '{id}' could not be found."),
        ));
    }
    let sink = if ctx.sh.cfg.discard_data {
        Sink::Discard
    } else {
        Sink::Append(data.path.clone())
    };
    let body = ctx.body.take().ok_or_else(ApiError::malformed)?;
    let max = ctx.sh.cfg.max_chunk_bytes;
    let parsed = multipart::read(
        body,
        boundary,
        "tableau_file",
        sink,
        data.hasher.clone(),
        data.head.clone(),
        max,
    )
    .await
    .map_err(|e| {
        mp_error(e, || {
            ApiError::too_large(format!(
                "The file part is larger than the maximum chunk size of {max} bytes."
            ))
        })
    })?;
    let file = parsed
        .file
        .ok_or_else(|| ApiError::bad_request("The request must contain a 'tableau_file' part."))?;
    data.bytes += file.size;
    data.hasher = file.hasher;
    data.head = file.head;
    ctx.sh.lock().note_append(&sess.id, data.bytes);
    ctx.applied = true;
    let mb = ceil_mb(data.bytes).to_string();
    Ok(Reply::xml(
        200,
        &format!(
            "<fileUpload{}/>",
            attrs(&[("uploadSessionId", &sess.id), ("fileSize", &mb)])
        ),
    ))
}

// ---------------------------------------------------------------- publish

const TYPES: &[&str] = &["hyper", "tds", "tdsx", "tde"];

/// Does the file start like a file of this type?
fn magic_ok(file_type: &str, head: &[u8]) -> bool {
    match file_type {
        "hyper" => head.starts_with(b"Hyper"),
        "tdsx" => head.starts_with(&[0x50, 0x4B, 0x03, 0x04]),
        "tde" => head.starts_with(&[0x20, 0x02, 0x01, 0x62]),
        "tds" => {
            let h = head.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(head);
            let start = h
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(h.len());
            let h = &h[start..];
            h.starts_with(b"<?xml") || h.starts_with(b"<datasource")
        }
        _ => false,
    }
}

fn ds_type_attr(file_type: &str) -> &str {
    match file_type {
        "tde" => "dataengine",
        other => other,
    }
}

fn datasource_xml(st: &State, d: &crate::state::Datasource) -> String {
    let created = iso8601(d.created_at);
    let updated = iso8601(d.updated_at);
    let extract = if matches!(d.file_type.as_str(), "hyper" | "tde") {
        "true"
    } else {
        "false"
    };
    let project_name = st
        .project(&d.site_id, &d.project_id)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    format!(
        "<datasource{}><project{}/><owner{}/><tags/></datasource>",
        attrs(&[
            ("id", &d.id),
            ("name", &d.name),
            ("contentUrl", &d.content_url),
            ("type", ds_type_attr(&d.file_type)),
            ("description", &d.description),
            ("createdAt", &created),
            ("updatedAt", &updated),
            ("encryptExtracts", "false"),
            ("hasExtracts", extract),
            ("useRemoteQueryAgent", "false"),
        ]),
        attrs(&[("id", &d.project_id), ("name", &project_name)]),
        attrs(&[("id", &d.owner_id)])
    )
}

async fn publish(ctx: &mut Ctx, site: &str) -> Result<Reply, ApiError> {
    let auth = ctx.scoped_auth(site, &[SCOPE_DATASOURCES_CREATE])?;
    let q = Query::parse(&ctx.query);
    let (overwrite, append, as_job) = (q.flag("overwrite"), q.flag("append"), q.flag("asJob"));
    if overwrite && append {
        return Err(ApiError::bad_request(
            "The 'overwrite' and 'append' parameters cannot both be 'true'.",
        ));
    }
    let mode = if append {
        Mode::Append
    } else if overwrite {
        Mode::Overwrite
    } else {
        Mode::Create
    };
    let boundary =
        multipart::boundary(ctx.content_type().as_deref()).ok_or_else(ApiError::malformed)?;
    let body = ctx.body.take().ok_or_else(ApiError::malformed)?;
    let session_id = q
        .get("uploadSessionId")
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let cfg = ctx.sh.cfg.clone();

    // Read the body: payload, and the file unless an upload session is committed.
    let (payload, staged, file_type, file_label, session) = if let Some(sid) = &session_id {
        let t = match q.get("datasourceType").map(|t| t.to_ascii_lowercase()) {
            None => {
                drain(body).await;
                return Err(ApiError::bad_request(
                    "The 'datasourceType' parameter is required when committing an upload session (uploadSessionId).",
                ));
            }
            Some(t) if TYPES.contains(&t.as_str()) => t,
            Some(t) => {
                drain(body).await;
                return Err(ApiError::bad_request(format!(
                    "Invalid datasourceType '{t}'. Use hyper, tds, tdsx or tde."
                )));
            }
        };
        let parsed = multipart::read(
            body,
            boundary,
            "tableau_datasource",
            Sink::Discard,
            sha2::Sha256::new(),
            vec![],
            u64::MAX,
        )
        .await
        .map_err(|e| mp_error(e, ApiError::malformed))?;
        if parsed.file.is_some() {
            return Err(ApiError::bad_request(
                "A 'tableau_datasource' file part must not be sent together with uploadSessionId.",
            ));
        }
        let sess = ctx
            .sh
            .lock()
            .upload_for(sid, &auth, cfg.bind_upload_sessions_to_auth)?;
        (parsed.payload, None, t, sid.clone(), Some(sess))
    } else {
        let path = ctx
            .sh
            .data_dir
            .join("incoming")
            .join(format!("{}.part", random_hex32()));
        let sink = if cfg.discard_data {
            Sink::Discard
        } else {
            Sink::New(path.clone())
        };
        let max = cfg.max_single_request_bytes;
        let parsed = multipart::read(body, boundary, "tableau_datasource", sink, sha2::Sha256::new(), vec![], max)
            .await
            .map_err(|e| {
                mp_error(e, || {
                    ApiError::too_large(format!(
                        "The file is larger than the {max}-byte limit for a single-request publish; use a file upload session."
                    ))
                })
            })?;
        let file = match parsed.file {
            Some(f) => f,
            None => return Err(ApiError::bad_request(
                "The request must contain a 'tableau_datasource' file part or an uploadSessionId.",
            )),
        };
        let staged = Staged {
            path: if cfg.discard_data { None } else { Some(path) },
            size: file.size,
            sha256: if cfg.discard_data {
                String::new()
            } else {
                hex(&file.hasher.finalize())
            },
            head: file.head,
        };
        let fname = file.filename.unwrap_or_default();
        let ext = fname
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        if !TYPES.contains(&ext.as_str()) {
            staged.discard();
            return Err(ApiError::publish_problem(&fname));
        }
        (parsed.payload, Some(staged), ext, fname, None)
    };
    let discard = |s: &Option<Staged>| {
        if let Some(s) = s {
            s.discard();
        }
    };

    // The tsRequest.
    let payload = match payload.as_deref().map(xml::parse_publish_payload) {
        Some(Ok(p)) => p,
        Some(Err(xml::PayloadError::MissingName)) => {
            discard(&staged);
            return Err(ApiError::bad_request(
                "The datasource name is missing from the request.",
            ));
        }
        _ => {
            discard(&staged);
            return Err(ApiError::malformed());
        }
    };
    let project_id = {
        let st = ctx.sh.lock();
        match &payload.project_id {
            Some(id) => id.clone(),
            None => match st.default_project(site) {
                Some(p) => p.id.clone(),
                None => {
                    drop(st);
                    discard(&staged);
                    return Err(ApiError::new(
                        404,
                        "404005",
                        "Resource Not Found",
                        "Project 'default' could not be found.",
                    ));
                }
            },
        }
    };

    // Hold the upload session (if any) while validating, so it is consumed only on success.
    let mut guard = match &session {
        Some(s) => {
            let g = s.data.lock().await;
            if g.consumed {
                return Err(ApiError::new(
                    404,
                    "404000",
                    "Resource Not Found",
                    format!("Upload session '{file_label}' could not be found."),
                ));
            }
            Some(g)
        }
        None => None,
    };
    let staged = match (&guard, staged) {
        (Some(g), _) => Staged {
            path: if cfg.discard_data {
                None
            } else {
                Some(g.path.clone())
            },
            size: g.bytes,
            sha256: if cfg.discard_data {
                String::new()
            } else {
                hex(&g.hasher.clone().finalize())
            },
            head: g.head.clone(),
        },
        (None, Some(s)) => s,
        (None, None) => return Err(ApiError::malformed()),
    };
    let fail = |e: ApiError, staged: &Staged, is_session: bool| {
        if !is_session {
            staged.discard();
        }
        Err(e)
    };
    let is_session = guard.is_some();
    let label = if is_session {
        format!("{}.{}", payload.name, file_type)
    } else {
        file_label.clone()
    };
    if !magic_ok(&file_type, &staged.head) {
        return fail(ApiError::publish_problem(&label), &staged, is_session);
    }
    if mode == Mode::Append && !matches!(file_type.as_str(), "hyper" | "tde") {
        return fail(ApiError::publish_problem(&label), &staged, is_session);
    }
    let pending = PendingPublish {
        site_id: site.to_owned(),
        project_id,
        name: payload.name.clone(),
        description: payload.description.clone(),
        mode,
        file_type: file_type.clone(),
        staged: staged.clone(),
        owner_id: auth.user_id.clone(),
    };
    let mut st = ctx.sh.lock();
    if let Err(e) = st.check_publish(&pending) {
        drop(st);
        return fail(e, &staged, is_session);
    }
    if let (Some(g), Some(s)) = (guard.as_mut(), &session) {
        g.consumed = true;
        st.uploads.remove(&s.id);
        st.note_committed(&s.id);
    }
    if as_job {
        let job = st.add_job(site, pending, cfg.job_duration, ctx.fail_job.take());
        ctx.applied = true;
        let created = iso8601(st.jobs[&job].created_at);
        drop(st);
        let status = if (200..=202).contains(&cfg.async_publish_status) {
            cfg.async_publish_status
        } else {
            202
        };
        return Ok(Reply::xml(
            status,
            &format!(
                "<job{}/>",
                attrs(&[
                    ("id", &job),
                    ("mode", "Asynchronous"),
                    ("type", "PublishDatasource"),
                    ("progress", "0"),
                    ("createdAt", &created),
                    ("finishCode", "1"),
                ])
            ),
        ));
    }
    let id = match st.apply_publish(pending, &ctx.sh.data_dir) {
        Ok(id) => id,
        Err(err) => {
            drop(st);
            return fail(err.0, &err.1.staged, false);
        }
    };
    ctx.applied = true;
    let d = st
        .datasources
        .iter()
        .find(|d| d.id == id)
        .expect("just stored");
    Ok(Reply::xml(201, &datasource_xml(&st, d)))
}

// ---------------------------------------------------------------- data sources, jobs

fn list_datasources(ctx: &mut Ctx, site: &str) -> Result<Reply, ApiError> {
    ctx.scoped_auth(site, &[SCOPE_CONTENT_READ])?;
    let q = Query::parse(&ctx.query);
    let conds = filter::parse_filter(q.get("filter"))?;
    filter::check_ops(
        &conds,
        &[
            ("name", Kind::Text),
            ("projectName", Kind::Text),
            ("contentUrl", Kind::Text),
            ("type", Kind::Text),
            ("createdAt", Kind::Time),
            ("updatedAt", Kind::Time),
        ],
    )?;
    let sort = filter::parse_sort(
        q.get("sort"),
        &["name", "createdAt", "updatedAt", "projectName"],
    )?;
    let (size, number) = filter::page(&q, ctx.sh.cfg.max_page_size)?;
    let st = ctx.sh.lock();
    let pname = |d: &crate::state::Datasource| {
        st.project(&d.site_id, &d.project_id)
            .map(|p| p.name.clone())
            .unwrap_or_default()
    };
    let mut items: Vec<_> = st
        .datasources
        .iter()
        .filter(|d| d.site_id == site)
        .filter(|d| {
            conds.iter().all(|c| match c.field.as_str() {
                "name" => filter::matches(c, &d.name),
                "projectName" => filter::matches(c, &pname(d)),
                "contentUrl" => filter::matches(c, &d.content_url),
                "type" => {
                    filter::matches(c, ds_type_attr(&d.file_type))
                        || filter::matches(c, &d.file_type)
                }
                "createdAt" => filter::matches(c, &iso8601(d.created_at)),
                "updatedAt" => filter::matches(c, &iso8601(d.updated_at)),
                _ => false,
            })
        })
        .collect();
    for (f, desc) in sort.iter().rev() {
        items.sort_by(|a, b| {
            let o = match f.as_str() {
                "name" => a.name.cmp(&b.name),
                "projectName" => pname(a).cmp(&pname(b)),
                "createdAt" => a.created_at.cmp(&b.created_at),
                _ => a.updated_at.cmp(&b.updated_at),
            };
            if *desc {
                o.reverse()
            } else {
                o
            }
        });
    }
    let mut out = pagination(number, size, items.len());
    out.push_str("<datasources>");
    for d in filter::slice(&items, size, number) {
        out.push_str(&datasource_xml(&st, d));
    }
    out.push_str("</datasources>");
    Ok(Reply::xml(200, &out))
}

fn get_datasource(ctx: &mut Ctx, site: &str, id: &str) -> Result<Reply, ApiError> {
    ctx.scoped_auth(site, &[SCOPE_CONTENT_READ])?;
    let st = ctx.sh.lock();
    let d = st
        .datasources
        .iter()
        .find(|d| d.site_id == site && d.id == id)
        .ok_or_else(|| {
            ApiError::new(
                404,
                "404000",
                "Resource Not Found",
                format!("Datasource '{id}' could not be found."),
            )
        })?;
    Ok(Reply::xml(200, &datasource_xml(&st, d)))
}

fn get_job(ctx: &mut Ctx, site: &str, id: &str) -> Result<Reply, ApiError> {
    ctx.scoped_auth(site, &[SCOPE_JOBS_READ, SCOPE_CONTENT_READ])?;
    let st = ctx.sh.lock();
    let j = st
        .jobs
        .get(id)
        .filter(|j| j.site_id == site)
        .ok_or_else(|| {
            ApiError::new(
                404,
                "404000",
                "Resource Not Found",
                format!("Job '{id}' could not be found."),
            )
        })?;
    let created = iso8601(j.created_at);
    let inner = match &j.outcome {
        None => {
            let total = j
                .due
                .saturating_duration_since(j.created)
                .as_millis()
                .max(1);
            let done = Instant::now()
                .saturating_duration_since(j.created)
                .as_millis();
            let progress = ((done * 100) / total).min(99).to_string();
            format!(
                "<job{}/>",
                attrs(&[
                    ("id", &j.id),
                    ("mode", "Asynchronous"),
                    ("type", "PublishDatasource"),
                    ("progress", &progress),
                    ("createdAt", &created),
                    ("startedAt", &created),
                    ("finishCode", "1"),
                ])
            )
        }
        Some(o) => {
            let completed = iso8601(o.completed_at);
            let mut child = String::new();
            if let Some((ds_id, name)) = &o.datasource {
                child.push_str(&format!(
                    "<datasource{}/>",
                    attrs(&[("id", ds_id), ("name", name)])
                ));
            }
            if let Some(n) = &o.notes {
                child.push_str(&format!("<notes>{}</notes>", esc(n)));
            }
            format!(
                "<job{}><publishDatasourceJob>{}</publishDatasourceJob></job>",
                attrs(&[
                    ("id", &j.id),
                    ("mode", "Asynchronous"),
                    ("type", "PublishDatasource"),
                    ("progress", "100"),
                    ("createdAt", &created),
                    ("startedAt", &created),
                    ("updatedAt", &completed),
                    ("completedAt", &completed),
                    ("finishCode", &o.finish_code.to_string()),
                ]),
                child
            )
        }
    };
    Ok(Reply::xml(200, &inner))
}

// ---------------------------------------------------------------- control API

fn json_response(status: u16, v: serde_json::Value) -> Resp {
    let mut r = Response::new(RespBody::new(v.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Reject a fault the server could not send as asked.
fn check_fault(f: &crate::Fault) -> Result<(), String> {
    if let FaultAction::Error {
        status,
        retry_after,
        ..
    } = &f.action
    {
        if !(100..=999).contains(status) {
            return Err(format!("invalid HTTP status {status}"));
        }
        if let Some(ra) = retry_after {
            if HeaderValue::from_str(ra).is_err() {
                return Err(format!("invalid Retry-After header value {ra:?}"));
            }
        }
    }
    Ok(())
}

async fn control(sh: Arc<Shared>, req: Request<Incoming>) -> Resp {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let ok = || json_response(200, serde_json::json!({"ok": true}));
    let bad = |msg: String| json_response(400, serde_json::json!({"error": msg}));
    match (method.as_str(), path.as_str()) {
        ("GET", "/_emulator/datasources") => json_response(
            200,
            serde_json::to_value(sh.datasources()).unwrap_or_default(),
        ),
        ("GET", "/_emulator/requests") => {
            json_response(200, serde_json::to_value(sh.requests()).unwrap_or_default())
        }
        ("POST", "/_emulator/expire-tokens") => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Expire {
                #[serde(default)]
                after_requests: Option<u64>,
                #[serde(default)]
                at_unix_ms: Option<u64>,
            }
            let e = if body.iter().all(u8::is_ascii_whitespace) {
                Expire {
                    after_requests: None,
                    at_unix_ms: None,
                }
            } else {
                match serde_json::from_slice::<Expire>(&body) {
                    Ok(e) => e,
                    Err(e) => return bad(e.to_string()),
                }
            };
            match (e.after_requests, e.at_unix_ms) {
                (None, None) => sh.expire_all_tokens(),
                (Some(_), Some(_)) => {
                    return bad("give either after_requests or at_unix_ms, not both".into())
                }
                (Some(n), None) => sh.expire_tokens_after_requests(n),
                (None, Some(ms)) => {
                    sh.expire_tokens_at(std::time::UNIX_EPOCH + Duration::from_millis(ms))
                }
            }
            ok()
        }
        ("POST", "/_emulator/sign-in-elsewhere") => {
            #[derive(serde::Deserialize)]
            struct Elsewhere {
                #[serde(default)]
                site: String,
                pat: String,
            }
            match serde_json::from_slice::<Elsewhere>(&body) {
                Ok(e) => {
                    if sh.sign_in_elsewhere(&e.site, &e.pat) {
                        ok()
                    } else {
                        json_response(
                            404,
                            serde_json::json!({"error": format!("no PAT {:?} on site {:?}", e.pat, e.site)}),
                        )
                    }
                }
                Err(e) => bad(e.to_string()),
            }
        }
        ("POST", "/_emulator/connected-apps") => {
            #[derive(serde::Deserialize)]
            struct AppEnabled {
                #[serde(default)]
                site: String,
                client_id: String,
                enabled: bool,
            }
            match serde_json::from_slice::<AppEnabled>(&body) {
                Ok(a) => {
                    if sh.set_connected_app_enabled(&a.site, &a.client_id, a.enabled) {
                        ok()
                    } else {
                        json_response(
                            404,
                            serde_json::json!({"error": format!("no connected app {:?} on site {:?}", a.client_id, a.site)}),
                        )
                    }
                }
                Err(e) => bad(e.to_string()),
            }
        }
        ("GET", "/_emulator/upload-sessions") => json_response(
            200,
            serde_json::to_value(sh.upload_sessions()).unwrap_or_default(),
        ),
        ("POST", "/_emulator/token-lifetime") => {
            let v: serde_json::Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return bad(e.to_string()),
            };
            match v.get("seconds").and_then(|s| s.as_f64()) {
                Some(s) if s >= 0.0 && s.is_finite() => {
                    sh.set_token_ttl(Duration::from_secs_f64(s));
                    ok()
                }
                _ => bad("expected {\"seconds\": N}".into()),
            }
        }
        ("POST", "/_emulator/faults") => match serde_json::from_slice::<crate::Fault>(&body) {
            Ok(f) => match check_fault(&f) {
                Ok(()) => {
                    sh.inject_fault(f);
                    ok()
                }
                Err(e) => bad(e),
            },
            Err(e) => bad(e.to_string()),
        },
        ("DELETE", "/_emulator/faults") => {
            sh.clear_faults();
            ok()
        }
        ("POST", "/_emulator/projects") => {
            #[derive(serde::Deserialize)]
            struct NewProject {
                #[serde(default)]
                site: String,
                #[serde(default)]
                parent_id: Option<String>,
                name: String,
            }
            match serde_json::from_slice::<NewProject>(&body) {
                Ok(p) => match sh.add_project(&p.site, p.parent_id.as_deref(), &p.name) {
                    Ok(id) => json_response(200, serde_json::json!({"id": id})),
                    Err(e) => json_response(404, serde_json::json!({"error": e})),
                },
                Err(e) => bad(e.to_string()),
            }
        }
        ("GET", "/_emulator/project-id") => {
            let q = Query::parse(&query);
            let site = q.get("site").unwrap_or("").to_owned();
            let p = q.get("path").unwrap_or("").to_owned();
            let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
            json_response(200, serde_json::json!({"id": sh.project_id(&site, &parts)}))
        }
        _ => json_response(
            404,
            serde_json::json!({"error": format!("unknown control endpoint {method} {path}")}),
        ),
    }
}
