//! Writing responses: the response body type, successful replies, Tableau error bodies (XML,
//! JSON or a gateway's HTML) and the control API's JSON.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::BoxError;
use crate::state::ApiError;
use crate::util::esc;
use crate::xml::{self, envelope, CONTENT_TYPE_XML};

pub(super) type Resp = Response<RespBody>;

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
pub(super) fn truncate_response(resp: Resp) -> Resp {
    let (mut parts, body) = resp.into_parts();
    let full = body.data.unwrap_or_default();
    let half = full.slice(..full.len() / 2);
    parts.headers.insert(
        hyper::header::CONTENT_LENGTH,
        HeaderValue::from(full.len() as u64),
    );
    Response::from_parts(parts, RespBody::truncated(half))
}

/// A successful reply.
pub(super) struct Reply {
    pub status: u16,
    pub body: Option<String>,
    pub content_type: &'static str,
}

impl Reply {
    /// `inner` in a `<tsResponse>`.
    pub(super) fn xml(status: u16, inner: &str) -> Reply {
        Reply {
            status,
            body: Some(envelope(inner)),
            content_type: CONTENT_TYPE_XML,
        }
    }

    pub(super) fn json(status: u16, v: serde_json::Value) -> Reply {
        Reply {
            status,
            body: Some(v.to_string()),
            content_type: "application/json;charset=utf-8",
        }
    }

    /// 204 No Content.
    pub(super) fn no_content() -> Reply {
        Reply {
            status: 204,
            body: None,
            content_type: CONTENT_TYPE_XML,
        }
    }
}

/// The error as Tableau sends it: XML (or JSON when asked for), or an HTML page when `code` is
/// empty (as a gateway would answer).
pub(super) fn error_response(e: &ApiError, json: bool) -> Resp {
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

pub(super) fn reply_response(r: Reply) -> Resp {
    let mut resp = Response::new(RespBody::new(r.body.map(Bytes::from).unwrap_or_default()));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    if r.status != 204 {
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(r.content_type));
    }
    resp
}

/// A control API answer.
pub(super) fn json_response(status: u16, v: serde_json::Value) -> Resp {
    let mut r = Response::new(RespBody::new(v.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
