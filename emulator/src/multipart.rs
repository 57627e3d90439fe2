//! Streaming reader for Tableau's two-part publish/append bodies (`multipart/mixed` or
//! `multipart/form-data`), built on `multer`. The file part is never held in memory: it is
//! gathered into 4 MiB buffers that a blocking task hashes and writes to disk while the next
//! buffer is being received.

use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

pub(crate) type Body = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

const WRITE_BUF: usize = 4 * 1024 * 1024;
const HEAD_LEN: usize = 512;
const MAX_PAYLOAD: usize = 1024 * 1024;

/// The boundary of a `multipart/*` Content-Type, or None.
pub(crate) fn boundary(content_type: Option<&str>) -> Option<String> {
    let ct = content_type?;
    let mut parts = ct.split(';');
    let mime = parts.next()?.trim();
    if !mime.to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    for p in parts {
        let (k, v) = match p.split_once('=') {
            Some(kv) => kv,
            None => continue,
        };
        if k.trim().eq_ignore_ascii_case("boundary") {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(v);
            if v.is_empty() {
                return None;
            }
            return Some(v.to_owned());
        }
    }
    None
}

/// Where the file part goes.
pub(crate) enum Sink {
    /// Create (truncate) this file.
    New(PathBuf),
    /// Append to this file (created if missing); rolled back on failure.
    Append(PathBuf),
    /// Count only: no copy, no hash (benchmarks).
    Discard,
}

pub(crate) struct FilePart {
    pub filename: Option<String>,
    pub size: u64,
    pub hasher: Sha256,
    /// First bytes of the whole stream (`head` passed in, extended).
    pub head: Vec<u8>,
}

pub(crate) struct Parsed {
    pub payload: Option<String>,
    pub file: Option<FilePart>,
}

#[derive(Debug)]
pub(crate) enum MpError {
    Malformed(#[allow(dead_code)] String),
    TooLarge,
    Io(std::io::Error),
}

struct Writer {
    tx: Option<mpsc::Sender<Bytes>>,
    task: tokio::task::JoinHandle<std::io::Result<Sha256>>,
    rollback: Rollback,
}

enum Rollback {
    Remove(PathBuf),
    Truncate(PathBuf, u64),
    Nothing,
}

impl Rollback {
    fn run(&self) {
        match self {
            Rollback::Remove(p) => {
                let _ = std::fs::remove_file(p);
            }
            Rollback::Truncate(p, len) => {
                if let Ok(f) = std::fs::OpenOptions::new().write(true).open(p) {
                    let _ = f.set_len(*len);
                }
            }
            Rollback::Nothing => {}
        }
    }
}

fn start_writer(sink: &Sink, mut hasher: Sha256) -> std::io::Result<Writer> {
    let (file, rollback) = match sink {
        Sink::New(p) => (Some(std::fs::File::create(p)?), Rollback::Remove(p.clone())),
        Sink::Append(p) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?;
            let len = f.metadata()?.len();
            (Some(f), Rollback::Truncate(p.clone(), len))
        }
        Sink::Discard => (None, Rollback::Nothing),
    };
    let (tx, mut rx) = mpsc::channel::<Bytes>(2);
    let task = tokio::task::spawn_blocking(move || {
        let mut file = file;
        while let Some(buf) = rx.blocking_recv() {
            hasher.update(&buf);
            if let Some(f) = file.as_mut() {
                f.write_all(&buf)?;
            }
        }
        if let Some(f) = file.as_mut() {
            f.flush()?;
        }
        Ok(hasher)
    });
    Ok(Writer {
        tx: Some(tx),
        task,
        rollback,
    })
}

impl Writer {
    async fn send(&mut self, buf: Bytes) -> Result<(), MpError> {
        let ok = match &self.tx {
            Some(tx) => tx.send(buf).await.is_ok(),
            None => false,
        };
        if ok {
            return Ok(());
        }
        // The writer stopped early: surface its error.
        self.tx = None;
        match (&mut self.task).await {
            Ok(Err(e)) => Err(MpError::Io(e)),
            _ => Err(MpError::Io(std::io::Error::other("writer stopped"))),
        }
    }

    async fn finish(mut self) -> Result<Sha256, MpError> {
        self.tx = None;
        match self.task.await {
            Ok(Ok(h)) => Ok(h),
            Ok(Err(e)) => {
                self.rollback.run();
                Err(MpError::Io(e))
            }
            Err(e) => {
                self.rollback.run();
                Err(MpError::Io(std::io::Error::other(e.to_string())))
            }
        }
    }

    async fn abort(mut self) {
        self.tx = None;
        let _ = self.task.await;
        self.rollback.run();
    }
}

/// Counts a discarded file part (no copy, no hash), keeping its first bytes in `head`;
/// stops at `limit` and reports whether the part was larger.
async fn count(
    field: &mut multer::Field<'static>,
    head: &mut Vec<u8>,
    limit: u64,
) -> Result<(u64, bool), multer::Error> {
    let mut size: u64 = 0;
    while let Some(chunk) = field.chunk().await? {
        size += chunk.len() as u64;
        if size > limit {
            return Ok((size, true));
        }
        keep_head(head, &chunk);
    }
    Ok((size, false))
}

/// Adds the start of `chunk` to `head` until it holds the first `HEAD_LEN` bytes.
fn keep_head(head: &mut Vec<u8>, chunk: &[u8]) {
    if head.len() < HEAD_LEN {
        let n = (HEAD_LEN - head.len()).min(chunk.len());
        head.extend_from_slice(&chunk[..n]);
    }
}

async fn drain(mp: &mut multer::Multipart<'static>) {
    loop {
        match mp.next_field().await {
            Ok(Some(mut f)) => while let Ok(Some(_)) = f.chunk().await {},
            _ => return,
        }
    }
}

/// Read a two-part body: `request_payload` (kept as text) and `file_part` (streamed into `sink`,
/// continuing `hasher`; `head` holds the first bytes already stored). A file part larger than
/// `limit` gives `TooLarge`, after the rest of the body has been read and the partial data rolled
/// back. Any other part name, or a repeated part, is `Malformed`.
pub(crate) async fn read(
    body: Body,
    boundary: String,
    file_part: &str,
    sink: Sink,
    hasher: Sha256,
    head: Vec<u8>,
    limit: u64,
) -> Result<Parsed, MpError> {
    let mut mp = multer::Multipart::new(body, boundary);
    let mut payload: Option<String> = None;
    let mut file: Option<FilePart> = None;
    let mut hasher = Some(hasher);
    let mut head = Some(head);
    loop {
        let mut field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(MpError::Malformed(e.to_string())),
        };
        let name = field.name().unwrap_or("").to_owned();
        if name == "request_payload" {
            if payload.is_some() {
                drop(field);
                drain(&mut mp).await;
                return Err(MpError::Malformed(
                    "the request_payload part appears twice".into(),
                ));
            }
            let mut buf = Vec::new();
            loop {
                match field.chunk().await {
                    Ok(Some(c)) => {
                        if buf.len() + c.len() > MAX_PAYLOAD {
                            drop(field);
                            drain(&mut mp).await;
                            return Err(MpError::Malformed("request_payload is too large".into()));
                        }
                        buf.extend_from_slice(&c);
                    }
                    Ok(None) => break,
                    Err(e) => return Err(MpError::Malformed(e.to_string())),
                }
            }
            payload = Some(
                String::from_utf8(buf)
                    .map_err(|_| MpError::Malformed("request_payload is not UTF-8".into()))?,
            );
        } else if name == file_part {
            let (Some(h), Some(mut hd)) = (hasher.take(), head.take()) else {
                drop(field);
                drain(&mut mp).await;
                return Err(MpError::Malformed(format!(
                    "the {file_part} part appears twice"
                )));
            };
            let filename = field.file_name().map(str::to_owned);
            if let Sink::Discard = sink {
                let (size, too_large) = match count(&mut field, &mut hd, limit).await {
                    Ok(counted) => counted,
                    Err(e) => return Err(MpError::Malformed(e.to_string())),
                };
                if too_large {
                    drop(field);
                    drain(&mut mp).await;
                    return Err(MpError::TooLarge);
                }
                file = Some(FilePart {
                    filename,
                    size,
                    hasher: h,
                    head: hd,
                });
                continue;
            }
            let mut w = start_writer(&sink, h).map_err(MpError::Io)?;
            let mut acc = BytesMut::with_capacity(WRITE_BUF);
            let mut size: u64 = 0;
            let mut too_large = false;
            loop {
                let chunk = match field.chunk().await {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(e) => {
                        w.abort().await;
                        return Err(MpError::Malformed(e.to_string()));
                    }
                };
                size += chunk.len() as u64;
                if size > limit {
                    too_large = true;
                    break;
                }
                keep_head(&mut hd, &chunk);
                if acc.is_empty() && chunk.len() >= WRITE_BUF {
                    if let Err(e) = w.send(chunk).await {
                        w.abort().await;
                        return Err(e);
                    }
                    continue;
                }
                acc.extend_from_slice(&chunk);
                if acc.len() >= WRITE_BUF {
                    let full = std::mem::replace(&mut acc, BytesMut::with_capacity(WRITE_BUF));
                    if let Err(e) = w.send(full.freeze()).await {
                        w.abort().await;
                        return Err(e);
                    }
                }
            }
            if too_large {
                w.abort().await;
                drop(field);
                drain(&mut mp).await;
                return Err(MpError::TooLarge);
            }
            if !acc.is_empty() {
                if let Err(e) = w.send(acc.freeze()).await {
                    w.abort().await;
                    return Err(e);
                }
            }
            let h = w.finish().await?;
            file = Some(FilePart {
                filename,
                size,
                hasher: h,
                head: hd,
            });
        } else {
            drop(field);
            drain(&mut mp).await;
            return Err(MpError::Malformed(format!("unexpected part '{name}'")));
        }
    }
    Ok(Parsed { payload, file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        assert_eq!(
            boundary(Some("multipart/mixed; boundary=abc")).as_deref(),
            Some("abc")
        );
        assert_eq!(
            boundary(Some("multipart/form-data; boundary=\"a b\"")).as_deref(),
            Some("a b")
        );
        assert_eq!(
            boundary(Some("Multipart/Mixed;charset=x;BOUNDARY=z")).as_deref(),
            Some("z")
        );
        assert_eq!(boundary(Some("text/xml")), None);
        assert_eq!(boundary(None), None);
    }
}
