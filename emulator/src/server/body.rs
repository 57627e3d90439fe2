//! Request bodies: the byte-counting stream handed to handlers, draining, and multipart errors.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http_body_util::BodyStream;
use hyper::body::Incoming;

use crate::multipart::{Body, MpError};
use crate::state::ApiError;

/// The request body as a stream of data frames, adding their sizes to `counter`.
pub(super) fn body_stream(incoming: Incoming, counter: Arc<AtomicU64>) -> Body {
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

/// Read and drop the rest of a body (stops at the first error).
pub(super) async fn drain(mut b: Body) {
    while let Some(Ok(_)) = b.next().await {}
}

/// The Tableau error for a multipart reading failure; `too_large` builds the 413.
pub(super) fn mp_error(e: MpError, too_large: impl FnOnce() -> ApiError) -> ApiError {
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
