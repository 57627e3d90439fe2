//! `multipart/mixed` bodies as Tableau expects them, streamed from disk: the framing is built in
//! memory; the file bytes are read a cache-sized piece at a time, as the connection asks for
//! them, on the thread that writes them to the socket, with the kernel reading ahead from disk.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};

use super::activity::Activity;
use crate::error::{Error, Result};
use crate::progress::Reporter;

/// Bytes read from disk per piece of a streamed body. Small enough to stay in the CPU cache
/// between the read and the socket write: measured on loopback, 128 KiB pieces send a third
/// faster than 2 MiB pieces, whose bytes go out to memory and back.
const PIECE: usize = 128 * 1024;
/// Piece buffers kept for reuse (more are allocated if the connection holds more at once).
const POOLED: usize = 8;

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

/// 128 random bits: a boundary that cannot plausibly occur in the file.
fn boundary() -> String {
    format!("tp-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// `posix_fadvise(WILLNEED)`: the kernel reads the range into the page cache in the background.
fn advise_will_need(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor; fadvise only hints the page cache.
        unsafe {
            libc::posix_fadvise(
                file.as_raw_fd(),
                offset as libc::off_t,
                len as libc::off_t,
                libc::POSIX_FADV_WILLNEED,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Piece buffers come back here when the socket is done with them, so a multi-GB upload
/// reuses a handful of buffers instead of faulting in fresh memory for every piece.
#[derive(Clone, Default)]
struct BufferPool(Arc<Mutex<Vec<Vec<u8>>>>);

impl BufferPool {
    fn take(&self) -> Vec<u8> {
        let mut v = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(PIECE));
        v.clear();
        v
    }
}

/// A piece's bytes; returns its buffer to the pool when dropped.
struct Pooled {
    buf: Vec<u8>,
    pool: BufferPool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut pool = self.pool.0.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOLED {
            pool.push(std::mem::take(&mut self.buf));
        }
    }
}

/// The file's bytes from `offset`, `len` of them, a piece per poll, each reported as it is
/// handed to the connection; fails the body if the host cancels or the file is short.
///
/// Reading on the socket's thread keeps each piece in the CPU cache between the two copies.
/// The disk is kept busy by the kernel's read-ahead, asked up front for this range and the
/// next one of the same length (the next chunk of an upload), so the next chunk comes off the
/// disk while this one is on the wire.
fn file_pieces(
    file: File,
    path: PathBuf,
    offset: u64,
    len: u64,
    reporter: Reporter,
    activity: Activity,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    advise_will_need(&file, offset, len.saturating_mul(2));
    let reading = Reading {
        file,
        path,
        at: offset,
        end: offset + len,
        pool: BufferPool::default(),
        reporter,
        activity,
    };
    stream::unfold(Some(reading), |reading| async move {
        let mut r = reading?;
        if r.at == r.end {
            return None;
        }
        match r.next_piece() {
            Ok(piece) => Some((Ok(piece), Some(r))),
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// Where a streamed file part is.
struct Reading {
    file: File,
    path: PathBuf,
    at: u64,
    end: u64,
    pool: BufferPool,
    reporter: Reporter,
    /// Touched for every piece: the request is making progress.
    activity: Activity,
}

impl Reading {
    fn next_piece(&mut self) -> std::io::Result<Bytes> {
        if self.reporter.is_cancelled() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "cancelled by the host",
            ));
        }
        let n = (self.end - self.at).min(PIECE as u64) as usize;
        // read_to_end fills spare capacity without zeroing it first.
        let mut buf = self.pool.take();
        (&mut self.file).take(n as u64).read_to_end(&mut buf)?;
        if buf.len() != n {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "{} is shorter than expected: did it change during the publish?",
                    self.path.display()
                ),
            ));
        }
        self.at += n as u64;
        self.reporter.sent_up_to(self.at);
        self.activity.touch();
        Ok(Bytes::from_owner(Pooled {
            buf,
            pool: self.pool.clone(),
        }))
    }
}

/// Builds the two-part body: `request_payload` (text/xml) and, optionally, the file part.
/// Called again for every attempt: a streamed body cannot be replayed.
pub fn body(
    payload_xml: &str,
    file: Option<FilePart<'_>>,
    reporter: &Reporter,
    activity: &Activity,
) -> Result<Body> {
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
    // Fail here, with a clear message, rather than inside the stream.
    let cannot = |e: std::io::Error| {
        Error::io(
            &format!("cannot open the spool file {}", file.path.display()),
            &e,
        )
    };
    let mut opened = File::open(file.path).map_err(cannot)?;
    opened.seek(SeekFrom::Start(file.offset)).map_err(cannot)?;
    let pieces = file_pieces(
        opened,
        file.path.to_path_buf(),
        file.offset,
        file.len,
        reporter.clone(),
        activity.clone(),
    );
    let stream = stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(head)) })
        .chain(pieces)
        .chain(stream::once(async move { Ok(Bytes::from(tail)) }));
    Ok(Body {
        content_type,
        content_length,
        body: reqwest::Body::wrap_stream(stream),
    })
}
