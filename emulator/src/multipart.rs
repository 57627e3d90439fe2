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

    /// Waits for the writer; on success returns the hash and how to undo what was written,
    /// should a later part of the body be refused.
    async fn finish(mut self) -> Result<(Sha256, Rollback), MpError> {
        self.tx = None;
        match self.task.await {
            Ok(Ok(h)) => Ok((h, self.rollback)),
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
/// back. Any other part name, or a repeated part, is `Malformed`. Whenever the result is an
/// error, the sink is as it was before: a file part stored before a later part was refused is
/// rolled back too.
pub(crate) async fn read(
    body: Body,
    boundary: String,
    file_part: &str,
    sink: Sink,
    hasher: Sha256,
    head: Vec<u8>,
    limit: u64,
) -> Result<Parsed, MpError> {
    let mut stored = None;
    let result = read_parts(
        body,
        boundary,
        file_part,
        sink,
        hasher,
        head,
        limit,
        &mut stored,
    )
    .await;
    if result.is_err() {
        if let Some(rollback) = stored {
            rollback.run();
        }
    }
    result
}

/// [`read`], leaving in `stored` how to undo a file part it has completely stored.
#[allow(clippy::too_many_arguments)]
async fn read_parts(
    body: Body,
    boundary: String,
    file_part: &str,
    sink: Sink,
    hasher: Sha256,
    head: Vec<u8>,
    limit: u64,
    stored: &mut Option<Rollback>,
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
            let (h, rollback) = w.finish().await?;
            *stored = Some(rollback);
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

/// The fuzzing entry behind `tableau_emulator::fuzz_multipart`: runs [`read`] synchronously
/// over `data` and panics if an invariant of its contract fails.
///
/// `data` is two control bytes, a `Content-Type` value ending at the first `\n`, then the body.
/// The first control byte picks the sink (bits 0-1: discard, new file, append to a file that
/// already holds 8 bytes), how the body is cut into stream chunks (bits 2-4) and the file part's
/// size limit (bits 5-7); bit 0 of the second ends the stream with an I/O error instead of EOF.
pub(crate) fn fuzz(data: &[u8]) {
    use futures_util::stream;

    const CHUNKS: [usize; 8] = [usize::MAX, 1, 2, 3, 7, 64, 511, 4096];
    const LIMITS: [u64; 8] = [u64::MAX, 0, 1, 16, 100, 512, 4096, 1 << 20];
    const PREVIOUS: &[u8] = b"previous";

    let (Some(&c0), Some(&c1)) = (data.first(), data.get(1)) else {
        return;
    };
    let rest = &data[2..];
    let (ct, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Some(boundary) = boundary(std::str::from_utf8(ct).ok()) else {
        return;
    };
    let chunk = CHUNKS[usize::from((c0 >> 2) & 7)];
    let limit = LIMITS[usize::from(c0 >> 5)];
    let mut pieces: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(chunk.min(body.len().max(1)))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    if c1 & 1 == 1 {
        pieces.push(Err(std::io::Error::other("the client went away")));
    }
    let stream: Body = Box::pin(stream::iter(pieces));

    FUZZ.with(|(rt, dir)| {
        let path = dir.path().join("upload.part");
        let _ = std::fs::remove_file(&path);
        let (sink, file_part, before, mut hasher) = match c0 & 3 {
            0 => (Sink::Discard, "tableau_datasource", None, Sha256::new()),
            1 => (
                Sink::New(path.clone()),
                "tableau_datasource",
                None,
                Sha256::new(),
            ),
            _ => {
                std::fs::write(&path, PREVIOUS).expect("write the fuzzing file");
                let mut h = Sha256::new();
                h.update(PREVIOUS);
                (
                    Sink::Append(path.clone()),
                    "tableau_file",
                    Some(PREVIOUS),
                    h,
                )
            }
        };
        let discard = matches!(sink, Sink::Discard);
        let head0 = before.unwrap_or_default().to_vec();
        if discard {
            hasher.update(b"seed");
        }
        let seeded = hasher.clone().finalize();
        let result = rt.block_on(read(
            stream,
            boundary,
            file_part,
            sink,
            hasher,
            head0.clone(),
            limit,
        ));
        let on_disk = std::fs::read(&path).ok();
        match (&result, discard) {
            (Ok(parsed), _) => {
                if let Some(p) = &parsed.payload {
                    assert!(p.len() <= MAX_PAYLOAD, "payload over its limit");
                }
                match (&parsed.file, discard) {
                    (Some(f), true) => {
                        assert!(f.size <= limit, "file part over the limit accepted");
                        assert_eq!(f.hasher.clone().finalize(), seeded, "discard hashed");
                        let want = (head0.len() as u64 + f.size).min(HEAD_LEN as u64);
                        assert_eq!(f.head.len() as u64, want, "head has the wrong length");
                        assert!(on_disk.is_none(), "discard wrote a file");
                    }
                    (Some(f), false) => {
                        assert!(f.size <= limit, "file part over the limit accepted");
                        let all = on_disk.expect("the file part was not stored");
                        let start = before.map_or(0, <[u8]>::len);
                        assert_eq!(all.len() - start, f.size as usize, "size differs from disk");
                        assert_eq!(
                            &all[..start],
                            before.unwrap_or_default(),
                            "old data changed"
                        );
                        assert_eq!(f.hasher.clone().finalize(), Sha256::digest(&all), "hash");
                        assert_eq!(f.head, &all[..all.len().min(HEAD_LEN)], "head differs");
                    }
                    (None, _) => {
                        assert_eq!(
                            on_disk.as_deref(),
                            before,
                            "no file part, yet the file changed"
                        )
                    }
                }
            }
            (Err(_), true) => assert!(on_disk.is_none(), "discard wrote a file"),
            (Err(e), false) => assert_eq!(
                on_disk.as_deref(),
                before,
                "the body was refused ({e:?}) but what it stored was not rolled back"
            ),
        }
    });
}

thread_local! {
    /// One runtime (for `spawn_blocking`) and one scratch directory per fuzzing thread.
    static FUZZ: (tokio::runtime::Runtime, tempfile::TempDir) = (
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime"),
        tempfile::tempdir().expect("a scratch directory"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(parts: &[(&str, &str)], closed: bool) -> Body {
        let mut text = String::new();
        for (name, data) in parts {
            text.push_str(&format!(
                "--B\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"f\"\r\n\r\n{data}\r\n"
            ));
        }
        if closed {
            text.push_str("--B--\r\n");
        }
        Box::pin(futures_util::stream::iter([Ok(Bytes::from(text))]))
    }

    fn read_sync(body: Body, part: &str, sink: Sink, limit: u64) -> Result<Parsed, MpError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(read(
            body,
            "B".into(),
            part,
            sink,
            Sha256::new(),
            Vec::new(),
            limit,
        ))
    }

    /// Found by the multipart fuzz target: an append whose file part was stored and whose
    /// next part was refused kept the appended bytes, so the upload on disk no longer matched
    /// the size and hash the session recorded.
    #[test]
    fn a_refused_body_leaves_an_append_target_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload");
        for (parts, closed) in [
            (&[("tableau_file", "chunk"), ("extra", "x")][..], true),
            (
                &[("tableau_file", "chunk"), ("tableau_file", "again")][..],
                true,
            ),
            (
                &[("tableau_file", "chunk"), ("request_payload", "p")][..],
                false,
            ),
        ] {
            std::fs::write(&path, b"previous").unwrap();
            let r = read_sync(
                body_of(parts, closed),
                "tableau_file",
                Sink::Append(path.clone()),
                u64::MAX,
            );
            assert!(matches!(r, Err(MpError::Malformed(_))), "{parts:?}");
            assert_eq!(std::fs::read(&path).unwrap(), b"previous", "{parts:?}");
        }
        // An accepted body still appends.
        let r = read_sync(
            body_of(&[("request_payload", "p"), ("tableau_file", "chunk")], true),
            "tableau_file",
            Sink::Append(path.clone()),
            u64::MAX,
        )
        .unwrap();
        assert_eq!(r.file.unwrap().size, 5);
        assert_eq!(std::fs::read(&path).unwrap(), b"previouschunk");
    }

    #[test]
    fn a_refused_body_leaves_no_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("incoming.part");
        let r = read_sync(
            body_of(&[("tableau_datasource", "data"), ("extra", "x")], true),
            "tableau_datasource",
            Sink::New(path.clone()),
            u64::MAX,
        );
        assert!(matches!(r, Err(MpError::Malformed(_))));
        assert!(!path.exists());
        let r = read_sync(
            body_of(&[("tableau_datasource", "data")], true),
            "tableau_datasource",
            Sink::New(path.clone()),
            3,
        );
        assert!(matches!(r, Err(MpError::TooLarge)));
        assert!(!path.exists());
    }

    #[test]
    fn the_fuzz_entry_accepts_its_seed_layout() {
        // Controls: append sink, whole-body chunks, no limit; the Content-Type line; the body.
        let mut data = vec![0b10, 0];
        data.extend_from_slice(b"multipart/mixed; boundary=B\n");
        data.extend_from_slice(
            b"--B\r\nContent-Disposition: form-data; name=\"tableau_file\"\r\n\r\nx\r\n--B--\r\n",
        );
        fuzz(&data);
        // The stray-part body that found the rollback bug.
        let mut data = vec![0b10, 0];
        data.extend_from_slice(b"multipart/mixed; boundary=B\n");
        data.extend_from_slice(b"--B\r\nContent-Disposition: form-data; name=\"tableau_file\"\r\n\r\nx\r\n--B\r\nContent-Disposition: form-data; name=\"extra\"\r\n\r\ny\r\n--B--\r\n");
        fuzz(&data);
    }

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
