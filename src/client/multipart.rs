//! `multipart/mixed` bodies as Tableau expects them, streamed from the spool: the framing is
//! built in memory, the file bytes are read from disk piece by piece while the request is sent.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::SeekFrom;
use std::path::Path;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use std::io::Seek;

use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};

/// Bytes read from disk per piece of a streamed body.
const PIECE: usize = 1024 * 1024;

/// A slice of a file to send as the file part.
#[derive(Clone, Copy)]
pub struct FilePart<'a> {
    /// Part name: `tableau_file` (append) or `tableau_datasource` (single-request publish).
    pub name: &'a str,
    /// The `filename` parameter; its extension tells Tableau the type on a single-request publish.
    pub filename: &'a str,
    /// The file.
    pub path: &'a Path,
    /// Where the slice starts.
    pub offset: u64,
    /// How many bytes.
    pub len: u64,
}

/// A ready-to-send body.
pub struct Body {
    /// Value of the Content-Type header.
    pub content_type: String,
    /// Exact length, sent as Content-Length (no chunked transfer encoding).
    pub content_length: u64,
    /// The streamed body.
    pub body: reqwest::Body,
}

fn boundary() -> String {
    let a = RandomState::new().build_hasher().finish();
    let mut h = RandomState::new().build_hasher();
    h.write_u64(a);
    format!("tp-{a:016x}{:016x}", h.finish())
}

/// Builds the two-part body: `request_payload` (text/xml) and, optionally, the file part.
/// Called again for every attempt: a streamed body cannot be replayed.
pub fn body(payload_xml: &str, file: Option<FilePart<'_>>) -> Result<Body> {
    let boundary = boundary();
    let mut head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"request_payload\"\r\nContent-Type: text/xml\r\n\r\n{payload_xml}\r\n"
    );
    let tail = format!("--{boundary}--\r\n");
    let content_type = format!("multipart/mixed; boundary={boundary}");
    let Some(file) = file else {
        head.push_str(&tail);
        return Ok(Body {
            content_type,
            content_length: head.len() as u64,
            body: reqwest::Body::from(head),
        });
    };
    let filename = file.filename.replace(['"', '\r', '\n'], "_");
    head.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
        file.name
    ));
    let tail = format!("\r\n{tail}");
    let content_length = head.len() as u64 + file.len + tail.len() as u64;

    let mut f = std::fs::File::open(file.path).map_err(|e| {
        Error::io(
            &format!("cannot open the spool file {}", file.path.display()),
            &e,
        )
    })?;
    f.seek(SeekFrom::Start(file.offset))
        .map_err(|e| Error::io("cannot seek in the spool file", &e))?;
    let f = tokio::fs::File::from_std(f);
    let pieces = stream::try_unfold((f, file.len), |(mut f, left)| async move {
        if left == 0 {
            return Ok::<_, std::io::Error>(None);
        }
        let n = left.min(PIECE as u64) as usize;
        let mut buf = vec![0u8; n];
        f.read_exact(&mut buf).await?;
        Ok(Some((Bytes::from(buf), (f, left - n as u64))))
    });
    let stream = stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(head)) })
        .chain(pieces.into_stream())
        .chain(stream::once(async move { Ok(Bytes::from(tail)) }));
    Ok(Body {
        content_type,
        content_length,
        body: reqwest::Body::wrap_stream(stream),
    })
}
