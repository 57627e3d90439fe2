//! Running Tableau's `hyperd` for one extract build and connecting to it.
//!
//! hyperd is started with a callback connection: it connects back to a loopback listener of
//! ours, sends its listen endpoint (one length byte, then e.g. `tab.domain:///dir/domain/.s.PGSQL.7483`),
//! and shuts itself down when that connection closes, so it never outlives this process, even
//! after `kill -9`. It listens on a Unix socket in a private directory (a TCP loopback port on
//! Windows) and speaks PostgreSQL's wire protocol, which `tokio-postgres` talks.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

use crate::error::{Error, ErrorKind, Result};

/// hyperd's role for the databases it creates (as the Hyper API uses).
const USER: &str = "tableau_internal_user";
/// Longest wait for hyperd to start and call back.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for hyperd to shut down after the callback connection closes.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running hyperd, killed if dropped before [`Hyperd::stop`].
pub struct Hyperd {
    child: Child,
    callback: Option<TcpStream>,
    /// The private directory holding its socket and log.
    dir: tempfile::TempDir,
    endpoint: Endpoint,
}

enum Endpoint {
    #[cfg_attr(windows, allow(dead_code))]
    Socket {
        dir: PathBuf,
        port: u16,
    },
    Tcp {
        host: String,
        port: u16,
    },
}

impl Hyperd {
    /// Starts hyperd from `exe`, writing new files in `database_version`, with its socket and
    /// log in a new private directory under `work_dir`.
    pub async fn start(exe: &Path, work_dir: &Path, database_version: u32) -> Result<Hyperd> {
        let dir = socket_dir(work_dir)?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::io("cannot listen for hyperd's callback", &e))?;
        let callback_port = listener
            .local_addr()
            .map_err(|e| Error::io("cannot listen for hyperd's callback", &e))?
            .port();
        let listen = if cfg!(windows) {
            "tab.tcp://127.0.0.1:auto".to_owned()
        } else {
            format!("tab.domain://{}/domain/auto", dir.path().display())
        };
        let mut cmd = Command::new(exe);
        cmd.arg("run")
            .arg(format!("--init-user={USER}"))
            .arg("--no-password=true")
            .arg("--skip-license=true")
            .arg("--date-style=MDY")
            .arg("--date-style-lenient=false")
            .arg("--language=en_US")
            .arg(format!("--log-dir={}", dir.path().display()))
            .arg(format!("--default-database-version={database_version}"))
            .arg("--listen-connection")
            .arg(listen)
            .arg("--callback-connection")
            .arg(format!("tab.tcp://127.0.0.1:{callback_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "cannot start hyperd ({}): {e}; check \"hyperd_path\", or install it with: {}",
                    exe.display(),
                    super::locate::INSTALL_HINT
                ),
            )
        })?;
        let called_back = async {
            let (mut stream, _) = listener.accept().await?;
            let len = stream.read_u8().await? as usize;
            let mut descriptor = vec![0u8; len];
            stream.read_exact(&mut descriptor).await?;
            Ok::<_, std::io::Error>((
                stream,
                String::from_utf8_lossy(&descriptor)
                    .trim_end_matches('\0')
                    .to_owned(),
            ))
        };
        let (callback, descriptor) = tokio::select! {
            r = tokio::time::timeout(START_TIMEOUT, called_back) => match r {
                Ok(Ok(done)) => done,
                Ok(Err(e)) => return Err(Error::io("hyperd did not call back", &e)),
                Err(_) => return Err(Error::new(ErrorKind::Timeout, format!(
                    "hyperd ({}) did not start within {} s", exe.display(), START_TIMEOUT.as_secs()))),
            },
            status = child.wait() => {
                return Err(Error::new(ErrorKind::Internal, format!(
                    "hyperd ({}) ended as it started ({}); its log is in {}",
                    exe.display(),
                    status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                    dir.keep().display()
                )));
            }
        };
        let endpoint = parse_endpoint(&descriptor).ok_or_else(|| {
            Error::new(
                ErrorKind::Internal,
                format!("hyperd called back with an endpoint this library does not read: {descriptor:?}"),
            )
        })?;
        Ok(Hyperd {
            child,
            callback: Some(callback),
            dir,
            endpoint,
        })
    }

    /// A connection to it; its I/O runs on a task of the current runtime.
    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        let mut config = tokio_postgres::Config::new();
        config.user(USER).connect_timeout(Duration::from_secs(30));
        match &self.endpoint {
            #[cfg(unix)]
            Endpoint::Socket { dir, port } => {
                config.host_path(dir).port(*port);
            }
            #[cfg(not(unix))]
            Endpoint::Socket { .. } => unreachable!("sockets are used on Unix only"),
            Endpoint::Tcp { host, port } => {
                config.host(host).port(*port);
            }
        }
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot connect to hyperd: {e}"),
            )
        })?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Shuts hyperd down (closing the callback connection asks it to) and waits until it
    /// has ended, so every file it wrote is complete.
    pub async fn stop(mut self) -> Result<()> {
        drop(self.callback.take());
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(_) => Ok(()),
            Err(_) => {
                let _ = self.child.kill().await;
                Err(Error::new(
                    ErrorKind::Internal,
                    format!(
                        "hyperd did not shut down within {} s and was killed; its log is in {}",
                        STOP_TIMEOUT.as_secs(),
                        self.dir.keep().display()
                    ),
                ))
            }
        }
    }
}

/// A new private directory for hyperd's socket and log: under `work_dir` when the socket's
/// path fits (Unix socket paths are limited to about 100 bytes), else under the temp dir.
fn socket_dir(work_dir: &Path) -> Result<tempfile::TempDir> {
    const LONGEST: usize = 80;
    let make = |base: &Path| tempfile::Builder::new().prefix("hyperd-").tempdir_in(base);
    let fits = |base: &Path| base.as_os_str().len() + 30 < LONGEST;
    let candidates = [
        work_dir.to_path_buf(),
        std::env::temp_dir(),
        PathBuf::from("/tmp"),
    ];
    let mut last = None;
    for base in candidates.iter().filter(|b| cfg!(windows) || fits(b)) {
        match make(base) {
            Ok(dir) => return Ok(dir),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => Error::io("cannot create a private directory for hyperd", &e),
        None => Error::new(
            ErrorKind::Config,
            format!(
                "no directory with a short enough path for hyperd's socket ({} is too long); set \"spool_dir\" to a shorter path",
                work_dir.display()
            ),
        ),
    })
}

/// Reads `tab.domain://<host>/<dir>/domain/.s.PGSQL.<port>` or `tab.tcp://<host>:<port>`.
fn parse_endpoint(descriptor: &str) -> Option<Endpoint> {
    if let Some(rest) = descriptor.strip_prefix("tab.domain://") {
        let path = rest.find('/').map(|i| &rest[i..])?;
        let (dir, name) = path.rsplit_once("/domain/")?;
        let port = name.strip_prefix(".s.PGSQL.")?.parse().ok()?;
        return Some(Endpoint::Socket {
            dir: PathBuf::from(dir),
            port,
        });
    }
    let rest = descriptor.strip_prefix("tab.tcp://")?;
    let (host, port) = rest.rsplit_once(':')?;
    Some(Endpoint::Tcp {
        host: host.trim_matches(['[', ']']).to_owned(),
        port: port.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_endpoint_forms() {
        match parse_endpoint("tab.domain:///tmp/x y/domain/.s.PGSQL.2866") {
            Some(Endpoint::Socket { dir, port }) => {
                assert_eq!(dir, PathBuf::from("/tmp/x y"));
                assert_eq!(port, 2866);
            }
            _ => panic!("socket endpoint not read"),
        }
        match parse_endpoint("tab.tcp://localhost:54321") {
            Some(Endpoint::Tcp { host, port }) => {
                assert_eq!((host.as_str(), port), ("localhost", 54321));
            }
            _ => panic!("tcp endpoint not read"),
        }
        assert!(parse_endpoint("tab.pipe://./pipe/x").is_none());
    }
}
