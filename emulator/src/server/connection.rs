//! Connections: TLS set-up and handshake, serving one connection, and the per-request driver
//! (context, fault, routing, answer) with its request logging.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};

use super::body::{body_stream, drain};
use super::context::Ctx;
use super::response::{error_response, reply_response, Resp};
use super::{control, faults, routing, BoxError};
use crate::state::Shared;
use crate::LoggedRequest;

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

/// Serve an accepted TCP connection (after the TLS handshake, with `tls`) on a task of its own.
pub(super) fn spawn(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
    number: u64,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    match tls {
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

/// Writes one request's log entry (and the stderr line, when enabled).
struct RequestLogger {
    sh: Arc<Shared>,
    seq: u64,
    connection: u64,
    /// Body bytes read so far.
    counter: Arc<AtomicU64>,
}

impl RequestLogger {
    fn log(&self, ctx: &Ctx, status: u16, code: Option<String>, fault: Option<String>) {
        let entry = LoggedRequest {
            seq: self.seq,
            method: ctx.method.clone(),
            path: ctx.path.clone(),
            query: ctx.query.clone(),
            status,
            code,
            body_bytes: self.counter.load(Ordering::Relaxed),
            auth_session: ctx.auth_serial,
            fault,
            applied: ctx.applied,
            connection: self.connection,
        };
        if self.sh.log_stderr.load(Ordering::Relaxed) {
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
        self.sh.lock().push_log(entry);
    }
}

/// The context of a REST request; its body adds to `counter` as it is read.
fn context(
    sh: Arc<Shared>,
    req: Request<Incoming>,
    counter: Arc<AtomicU64>,
    connection: u64,
) -> Ctx {
    let path = req.uri().path().to_owned();
    let method = req.method().as_str().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let (parts, incoming) = req.into_parts();
    let want_json = parts
        .headers
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("json"));
    Ctx {
        sh,
        method,
        path,
        query,
        headers: parts.headers,
        body: Some(body_stream(incoming, counter)),
        auth_serial: None,
        authed: false,
        applied: false,
        fail_job: None,
        want_json,
        connection,
    }
}

/// One request: control requests go to the control API; REST requests get their fault (if
/// any), are routed, answered and logged.
async fn handle(
    sh: Arc<Shared>,
    connection: u64,
    req: Request<Incoming>,
) -> Result<Resp, BoxError> {
    let path = req.uri().path();
    if path == "/_emulator" || path.starts_with("/_emulator/") {
        return Ok(control::handle(sh, req).await);
    }
    let counter = Arc::new(AtomicU64::new(0));
    let mut ctx = context(sh.clone(), req, counter.clone(), connection);
    let token = ctx.token();
    let target = if ctx.query.is_empty() {
        ctx.path.clone()
    } else {
        format!("{}?{}", ctx.path, ctx.query)
    };
    let (seq, fault) = {
        let mut st = sh.lock();
        ctx.auth_serial = token.as_deref().and_then(|t| st.session_serial(t));
        (st.next_seq(), st.match_fault(&ctx.method, &target))
    };
    let logger = RequestLogger {
        sh: sh.clone(),
        seq,
        connection,
        counter: counter.clone(),
    };

    let plan = match faults::before(&mut ctx, fault, token.as_deref(), &counter).await {
        Ok(plan) => plan,
        Err(stopped) => {
            logger.log(&ctx, stopped.status, stopped.code, Some(stopped.fault));
            return stopped.result;
        }
    };

    let result = routing::route(&mut ctx).await;
    plan.before_answer().await;
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
    logger.log(&ctx, plan.logged_status(&resp), code, plan.name.clone());
    plan.send(resp)
}
