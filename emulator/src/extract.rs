//! Reading a published `.hyper` with Tableau's own engine, hyperd, so that tests can check the
//! rows a publisher sent, not only its bytes: the tables, their columns and row counts.
//!
//! hyperd (Apache-2.0, in the `tableauhyperapi` wheel) is started once per emulator, the first
//! time a published extract is asked about, on a thread of its own; it is killed when the
//! emulator is dropped, and ends by itself if the emulator dies (its callback connection
//! closes). Each file is read from a copy (hyperd may write to a file it attaches) and the
//! answer is kept per file and SHA-256. Without hyperd the emulator works as before: the data
//! source says why its extract was not read.

use std::collections::HashMap;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What a published `.hyper` holds, as hyperd reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractContents {
    /// Every user table (schemas `pg_catalog` and `information_schema` left out).
    pub tables: Vec<ExtractTable>,
}

/// One table of an extract.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractTable {
    pub schema: String,
    pub name: String,
    pub rows: u64,
    pub columns: Vec<ExtractColumn>,
}

/// One column: its name, SQL type as hyperd prints it (`bigint`, `text`, `numeric(12,2)`, …)
/// and whether it may hold NULL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractColumn {
    pub name: String,
    pub sql_type: String,
    pub nullable: bool,
}

impl ExtractContents {
    /// The table `schema.name`, if there is one.
    pub fn table(&self, schema: &str, name: &str) -> Option<&ExtractTable> {
        self.tables
            .iter()
            .find(|t| t.schema == schema && t.name == name)
    }
}

/// The user hyperd is started with (no password; it listens on loopback only).
const USER: &str = "tableau_internal_user";
/// How long hyperd may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the reader, from the emulator's config.
#[derive(Clone, Debug)]
pub(crate) struct ReaderSettings {
    pub enabled: bool,
    pub hyperd_path: Option<PathBuf>,
    pub max_bytes: u64,
    /// Where hyperd's log and the copies of the files go.
    pub work_dir: PathBuf,
}

type Answer = Result<ExtractContents, String>;
type Job = (PathBuf, mpsc::Sender<Answer>);

/// Reads extracts on a thread that owns hyperd; started on first use.
pub(crate) struct ExtractReader {
    settings: ReaderSettings,
    worker: Mutex<Option<mpsc::Sender<Job>>>,
    cache: Mutex<HashMap<(PathBuf, String), Answer>>,
}

impl ExtractReader {
    pub(crate) fn new(settings: ReaderSettings) -> ExtractReader {
        ExtractReader {
            settings,
            worker: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// What the `.hyper` at `path` (whose SHA-256 is `sha256`) holds, or why it could not be
    /// read; `None` when reading is turned off. Blocks while hyperd reads it.
    pub(crate) fn read(&self, path: &Path, sha256: &str) -> Option<Answer> {
        if !self.settings.enabled {
            return None;
        }
        let key = (path.to_path_buf(), sha256.to_owned());
        if let Some(hit) = lock(&self.cache).get(&key) {
            return Some(hit.clone());
        }
        let answer = self.read_now(path);
        lock(&self.cache).insert(key, answer.clone());
        Some(answer)
    }

    fn read_now(&self, path: &Path) -> Answer {
        let size = std::fs::metadata(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .len();
        if size > self.settings.max_bytes {
            return Err(format!(
                "not read: {size} bytes is more than extract_read_max_bytes ({})",
                self.settings.max_bytes
            ));
        }
        let mut head = [0u8; 5];
        let is_hyper = std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok()
            && &head == b"Hyper";
        if !is_hyper {
            return Err("not a Hyper file (it does not start with \"Hyper\")".to_owned());
        }
        let (tx, rx) = mpsc::channel();
        let mut worker = lock(&self.worker);
        if worker.is_none() {
            *worker = Some(spawn_worker(self.settings.clone())?);
        }
        let sent = worker
            .as_ref()
            .map(|w| w.send((path.to_path_buf(), tx)).is_ok());
        drop(worker);
        if sent != Some(true) {
            return Err("the extract reader has stopped".to_owned());
        }
        rx.recv()
            .unwrap_or_else(|_| Err("the extract reader stopped while reading".to_owned()))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// hyperd, then a thread answering jobs until the reader is dropped.
fn spawn_worker(settings: ReaderSettings) -> Result<mpsc::Sender<Job>, String> {
    let (tx, rx) = mpsc::channel::<Job>();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    std::thread::Builder::new()
        .name("emulator-extracts".into())
        .spawn(move || {
            let mut hyperd = match Hyperd::start(&settings) {
                Ok(h) => {
                    let _ = ready_tx.send(Ok(()));
                    h
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let mut n = 0u64;
            while let Ok((path, reply)) = rx.recv() {
                n += 1;
                let _ = reply.send(hyperd.read(&path, n, &settings.work_dir));
            }
            hyperd.stop();
        })
        .map_err(|e| format!("cannot start the extract reader thread: {e}"))?;
    ready_rx
        .recv()
        .unwrap_or_else(|_| Err("the extract reader did not start".to_owned()))?;
    Ok(tx)
}

/// Where hyperd is: the configured path, `HYPERD_PATH`, or python3's `tableauhyperapi`.
fn find_hyperd(configured: Option<&Path>) -> Result<PathBuf, String> {
    let candidate = |p: PathBuf| -> Option<PathBuf> {
        if p.is_file() {
            return Some(p);
        }
        [p.join("hyperd"), p.join("hyper").join("hyperd")]
            .into_iter()
            .find(|c| c.is_file())
    };
    if let Some(p) = configured {
        return candidate(p.to_path_buf())
            .ok_or_else(|| format!("hyperd not found at {} (--hyperd-path)", p.display()));
    }
    if let Some(p) = std::env::var_os("HYPERD_PATH").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return candidate(p.clone())
            .ok_or_else(|| format!("hyperd not found at {} (HYPERD_PATH)", p.display()));
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, tableauhyperapi; print(os.path.dirname(tableauhyperapi.__file__))",
        ])
        .stderr(Stdio::null())
        .output();
    if let Ok(out) = out {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !dir.is_empty() {
            if let Some(found) = candidate(Path::new(&dir).join("bin").join("hyper")) {
                return Ok(found);
            }
        }
    }
    Err("hyperd not found: pip install tableauhyperapi, or give --hyperd-path (HYPERD_PATH)".into())
}

/// A running hyperd and a connection to it.
struct Hyperd {
    child: Child,
    _callback: TcpStream,
    _log: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Hyperd {
    fn start(settings: &ReaderSettings) -> Result<Hyperd, String> {
        let exe = find_hyperd(settings.hyperd_path.as_deref())?;
        let log = tempfile::Builder::new()
            .prefix("hyperd-")
            .tempdir_in(&settings.work_dir)
            .map_err(|e| format!("cannot make hyperd's log directory: {e}"))?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("cannot listen for hyperd's callback: {e}"))?;
        let callback_port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let mut child = Command::new(&exe)
            .arg("run")
            .arg(format!("--init-user={USER}"))
            .arg("--no-password=true")
            .arg("--skip-license=true")
            .arg(format!("--log-dir={}", log.path().display()))
            .arg("--listen-connection")
            .arg("tab.tcp://127.0.0.1:auto")
            .arg("--callback-connection")
            .arg(format!("tab.tcp://127.0.0.1:{callback_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start hyperd ({}): {e}", exe.display()))?;
        let started = (|| {
            let (callback, port) = accept_callback(&listener, &mut child)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a runtime for hyperd: {e}"))?;
            let client = runtime.block_on(async {
                let mut config = tokio_postgres::Config::new();
                config
                    .user(USER)
                    .host("127.0.0.1")
                    .port(port)
                    .connect_timeout(Duration::from_secs(10));
                let (client, connection) = config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| format!("cannot connect to hyperd: {e}"))?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok::<_, String>(client)
            })?;
            Ok::<_, String>((callback, runtime, client))
        })();
        match started {
            Ok((callback, runtime, client)) => Ok(Hyperd {
                child,
                _callback: callback,
                _log: log,
                runtime,
                client,
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// Reads a copy of `path` attached as database `x<n>`.
    fn read(&mut self, path: &Path, n: u64, work_dir: &Path) -> Answer {
        let copy = tempfile::Builder::new()
            .prefix("read-")
            .suffix(".hyper")
            .tempfile_in(work_dir)
            .map_err(|e| format!("cannot copy the extract to read it: {e}"))?
            .into_temp_path();
        std::fs::copy(path, &copy)
            .map_err(|e| format!("cannot copy the extract to read it: {e}"))?;
        let alias = format!("x{n}");
        let client = &self.client;
        self.runtime.block_on(async {
            client
                .batch_execute(&format!(
                    "ATTACH DATABASE {} AS {}",
                    ident(&copy.to_string_lossy()),
                    ident(&alias)
                ))
                .await
                .map_err(|e| format!("hyperd cannot open it: {}", pg_error(&e)))?;
            let read = contents(client, &alias).await;
            let _ = client
                .batch_execute(&format!("DETACH DATABASE {}", ident(&alias)))
                .await;
            read
        })
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Hyperd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The tables, columns and row counts of attached database `db`.
async fn contents(client: &tokio_postgres::Client, db: &str) -> Answer {
    let db = ident(db);
    let columns = format!(
        "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), \
         CASE WHEN a.attnotnull THEN 'f' ELSE 't' END \
         FROM {db}.pg_catalog.pg_class c \
         JOIN {db}.pg_catalog.pg_namespace n ON c.relnamespace = n.oid \
         JOIN {db}.pg_catalog.pg_attribute a ON a.attrelid = c.oid \
         WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND a.attnum > 0 ORDER BY n.nspname, c.relname, a.attnum"
    );
    let mut tables: Vec<ExtractTable> = Vec::new();
    for row in text_rows(client, &columns).await? {
        let [schema, name, column, sql_type, nullable] = &row[..] else {
            return Err(format!("unexpected catalog row {row:?}"));
        };
        if !tables
            .last()
            .is_some_and(|t| &t.schema == schema && &t.name == name)
        {
            tables.push(ExtractTable {
                schema: schema.clone(),
                name: name.clone(),
                rows: 0,
                columns: Vec::new(),
            });
        }
        if let Some(t) = tables.last_mut() {
            t.columns.push(ExtractColumn {
                name: column.clone(),
                sql_type: sql_type.clone(),
                nullable: nullable == "t",
            });
        }
    }
    for t in &mut tables {
        let count = format!(
            "SELECT COUNT(*) FROM {db}.{}.{}",
            ident(&t.schema),
            ident(&t.name)
        );
        let rows = text_rows(client, &count).await?;
        t.rows = rows
            .first()
            .and_then(|r| r.first())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no row count for {}.{}", t.schema, t.name))?;
    }
    Ok(ExtractContents { tables })
}

/// The rows of `sql` as text (NULL as "").
async fn text_rows(client: &tokio_postgres::Client, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let messages = client
        .simple_query(sql)
        .await
        .map_err(|e| format!("hyperd cannot read it: {}", pg_error(&e)))?;
    Ok(messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("").to_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

/// A SQL identifier, double-quoted.
fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => e.to_string(),
    }
}

/// Waits for hyperd to call back with its endpoint; the port it listens on.
fn accept_callback(listener: &TcpListener, child: &mut Child) -> Result<(TcpStream, u16), String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + START_TIMEOUT;
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("hyperd ended as it started ({status})"));
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "hyperd did not start within {} s",
                        START_TIMEOUT.as_secs()
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("hyperd did not call back: {e}")),
        }
    };
    stream
        .set_nonblocking(false)
        .and_then(|_| stream.set_read_timeout(Some(START_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let mut len = [0u8; 1];
    stream
        .read_exact(&mut len)
        .map_err(|e| format!("hyperd's callback: {e}"))?;
    let mut descriptor = vec![0u8; len[0] as usize];
    stream
        .read_exact(&mut descriptor)
        .map_err(|e| format!("hyperd's callback: {e}"))?;
    let descriptor = String::from_utf8_lossy(&descriptor)
        .trim_end_matches('\0')
        .to_owned();
    let port = descriptor
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("hyperd called back with {descriptor:?}, not a TCP endpoint"))?;
    Ok((stream, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("Extract"), "\"Extract\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }
}
