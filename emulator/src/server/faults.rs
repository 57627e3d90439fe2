//! Fault injection on the HTTP side: applying the `FaultAction` a request matched (before it is
//! handled, and when its answer is sent), and checking the faults the control API is given.
//! Matching and counting live in `state::faults`, under the state lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use hyper::body::Body as _;
use hyper::header::HeaderValue;

use super::body::drain;
use super::context::Ctx;
use super::response::{error_response, truncate_response, Resp};
use super::BoxError;
use crate::multipart::Body;
use crate::state::ApiError;
use crate::{Fault, FaultAction};

/// How the rest of a request goes once its fault (if any) has been applied.
#[derive(Default)]
pub(super) struct Plan {
    /// The fault's name in the log.
    pub name: Option<String>,
    /// Close the connection instead of answering (`ResetAfterBody`).
    reset_after: bool,
    /// Send only half the answer (`ResetMidResponse`).
    truncate: bool,
    /// Wait this long before answering (`DelayAnswer`).
    answer_delay: Option<Duration>,
}

/// A fault that answered or dropped the request instead of letting it be handled.
pub(super) struct Stopped {
    /// Status to log (0: no response).
    pub status: u16,
    pub code: Option<String>,
    /// The fault's name in the log.
    pub fault: String,
    /// What to hand hyper.
    pub result: Result<Resp, BoxError>,
}

impl Stopped {
    fn reset(fault: String, why: &str) -> Stopped {
        Stopped {
            status: 0,
            code: None,
            fault,
            result: Err(why.into()),
        }
    }
}

/// Apply `fault` before the request is routed. `counter` counts the body bytes read so far.
pub(super) async fn before(
    ctx: &mut Ctx,
    fault: Option<FaultAction>,
    token: Option<&str>,
    counter: &AtomicU64,
) -> Result<Plan, Stopped> {
    let mut plan = Plan::default();
    let Some(fault) = fault else {
        return Ok(plan);
    };
    let name = match fault {
        FaultAction::Reset => {
            return Err(Stopped::reset("reset".into(), "injected fault: reset"));
        }
        FaultAction::ResetMidBody { after_bytes } => {
            if let Some(mut b) = ctx.body.take() {
                while counter.load(Ordering::Relaxed) < after_bytes {
                    match b.next().await {
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                }
            }
            return Err(Stopped::reset(
                format!("reset_mid_body:{after_bytes}"),
                "injected fault: reset mid body",
            ));
        }
        FaultAction::ResetMidResponse => {
            plan.truncate = true;
            "reset_mid_response".into()
        }
        FaultAction::KillSession => {
            if let Some(t) = token {
                ctx.sh.lock().kill_session(t);
            }
            "kill_session".into()
        }
        FaultAction::Error {
            status,
            code,
            summary,
            detail,
            retry_after,
        } => return Err(answer_error(ctx, status, code, summary, detail, retry_after).await),
        FaultAction::Delay { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            format!("delay:{ms}")
        }
        FaultAction::SlowBody { bytes_per_sec } => {
            if let Some(body) = ctx.body.take() {
                ctx.body = Some(paced(body, bytes_per_sec));
            }
            format!("slow_body:{bytes_per_sec}")
        }
        FaultAction::ExpireToken => {
            if let Some(t) = token {
                ctx.sh.lock().expire_session(t);
            }
            "expire_token".into()
        }
        FaultAction::FailJob { notes } => {
            ctx.fail_job = Some(notes);
            "fail_job".into()
        }
        FaultAction::ResetAfterBody => {
            plan.reset_after = true;
            "reset_after_body".into()
        }
        FaultAction::DelayAnswer { ms } => {
            plan.answer_delay = Some(Duration::from_millis(ms));
            format!("delay_answer:{ms}")
        }
    };
    plan.name = Some(name);
    Ok(plan)
}

/// An `Error` fault: drain the body and answer with the error.
async fn answer_error(
    ctx: &mut Ctx,
    status: u16,
    code: String,
    summary: String,
    detail: String,
    retry_after: Option<String>,
) -> Stopped {
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
    Stopped {
        status: resp.status().as_u16(),
        code: if code.is_empty() { None } else { Some(code) },
        fault: format!("error:{status}"),
        result: Ok(resp),
    }
}

impl Plan {
    /// Wait out a `DelayAnswer` (the request has been handled).
    pub(super) async fn before_answer(&self) {
        if let Some(wait) = self.answer_delay {
            tokio::time::sleep(wait).await;
        }
    }

    /// Whether the connection is closed instead of sending `resp`. A truncated empty body
    /// cannot be sent half-way, so it is a reset too.
    fn resets(&self, resp: &Resp) -> bool {
        self.reset_after || (self.truncate && resp.body().is_end_stream())
    }

    /// The status to log for `resp`: 0 when the connection is closed instead.
    pub(super) fn logged_status(&self, resp: &Resp) -> u16 {
        if self.resets(resp) {
            0
        } else {
            resp.status().as_u16()
        }
    }

    /// What to hand hyper: `resp`, its first half, or an error that closes the connection.
    pub(super) fn send(&self, resp: Resp) -> Result<Resp, BoxError> {
        if self.resets(&resp) {
            return Err("injected fault: reset after body".into());
        }
        if self.truncate {
            return Ok(truncate_response(resp));
        }
        Ok(resp)
    }
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

/// Reject a fault the server could not send as asked.
pub(super) fn check_fault(f: &Fault) -> Result<(), String> {
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
