//! The JSON manifest beside a kept spool: what the bytes are, where they were going (without
//! secrets), how far the publish got, and how to publish them again.
//!
//! It is written when finalize starts, before the first network call, and rewritten at the
//! steps a crash must not forget (upload session started, digest known, commit about to be
//! sent, job accepted, failure), each time atomically: a temporary file, fsync, rename over
//! the old one, fsync of the directory. So after `kill -9`, an OOM kill or a power cut at any
//! moment the spool has a manifest that says what happened, and `tabpub resume` knows whether
//! a commit may already have applied.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Auth, Config, ProjectTarget};
use crate::error::{Error, ErrorKind, Result};
use crate::extract::options::ExtractOptions;
use crate::filetype::RowFormat;
use crate::spool::manifest_path;

/// Identifies the manifest format.
pub const FORMAT: &str = "tableau-publisher-spool/2";
/// The format before crash safety (written only after a failure); still read.
const FORMAT_1: &str = "tableau-publisher-spool/1";

/// How far the publish got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Finalize started and has not ended: either still running, or its process died.
    Publishing,
    /// Finalize ended in a failure; see `failure`.
    #[default]
    Failed,
}

/// A kept spool's manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`] when written by this version.
    pub format: String,
    /// The spooled bytes, unchanged.
    pub spool: PathBuf,
    /// Their size.
    pub bytes: u64,
    /// Their SHA-256; null until computed (it is, before anything is committed).
    #[serde(default)]
    pub sha256: Option<String>,
    /// How far the publish got.
    #[serde(default)]
    pub state: State,
    /// When finalize started (RFC 3339, UTC).
    #[serde(default)]
    pub started_at: Option<String>,
    /// The process that ran it, to tell a running publish from an interrupted one.
    #[serde(default)]
    pub pid: Option<u32>,
    /// The upload session in use, once initiated.
    #[serde(default)]
    pub upload_session_id: Option<String>,
    /// Set just before the commit is sent: from then on it may have applied.
    #[serde(default)]
    pub commit: Option<CommitRecord>,
    /// Why the publish failed, once it did.
    #[serde(default)]
    pub failure: Option<Failure>,
    /// Set when the bytes are rows (CSV, Arrow, Parquet) built into a `.hyper` before publishing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<RowsRecord>,
    /// Where the data was going. No secrets.
    pub settings: Settings,
    /// The command that publishes the spool again.
    pub resume: String,
}

/// What a later publish needs to tell whether a commit that may have been sent applied.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CommitRecord {
    /// When it was sent (RFC 3339, UTC).
    pub sent_at: String,
    /// The target project's LUID.
    pub project_id: String,
    /// The data source of that name as it was before the commit (null: there was none).
    pub before: Option<Baseline>,
    /// Sent as an asynchronous job.
    pub as_job: bool,
    /// The job's LUID, once the server answered with it.
    pub job_id: Option<String>,
}

/// Rows built into an extract: their format, the options of the build, and the extract once
/// built (a later publish reuses it while its options and bytes are unchanged).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RowsRecord {
    /// `csv`, `arrow_stream` or `parquet`.
    pub format: RowFormat,
    /// The columns, CSV dialect and Hyper file version the build used.
    pub options: ExtractOptions,
    /// The built `.hyper`, once complete.
    #[serde(default)]
    pub extract: Option<ExtractRecord>,
}

/// A built extract beside the spool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExtractRecord {
    /// Where it is.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256.
    pub sha256: String,
    /// Its rows.
    pub rows: u64,
}

/// A data source's identity and last update, to compare with what is there later.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Baseline {
    /// LUID.
    pub id: String,
    /// `updatedAt` as the server reported it.
    pub updated_at: Option<String>,
}

/// A failed publish.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The kind of failure.
    pub kind: ErrorKind,
    /// The message.
    pub error: String,
}

/// The publish settings, without secrets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Server URL.
    pub server_url: String,
    /// Site content URL.
    pub site: String,
    /// `pat`, `password` or `connected_app`.
    pub auth_method: String,
    /// Token name (PAT), user name (password), or user name and app (connected app).
    pub auth_identity: String,
    /// Project path, or null when given by id.
    pub project: Option<Vec<String>>,
    /// Project LUID, when given by id.
    pub project_id: Option<String>,
    /// Data source name.
    pub datasource_name: String,
    /// `create_new`, `overwrite` or `append`.
    pub mode: String,
}

impl Settings {
    fn of(config: &Config) -> Settings {
        let (auth_method, auth_identity) = match &config.auth {
            Auth::Pat { token_name, .. } => ("pat", token_name.clone()),
            Auth::Password { username, .. } => ("password", username.clone()),
            Auth::ConnectedApp {
                username,
                client_id,
                ..
            } => ("connected_app", format!("{username} via {client_id}")),
        };
        let (project, project_id) = match &config.project {
            ProjectTarget::Path(p) => (Some(p.clone()), None),
            ProjectTarget::Id(id) => (None, Some(id.clone())),
        };
        Settings {
            server_url: config.server_url.clone(),
            site: config.site.clone(),
            auth_method: auth_method.into(),
            auth_identity,
            project,
            project_id,
            datasource_name: config.datasource_name.clone(),
            mode: config.mode.name().into(),
        }
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

impl Manifest {
    /// The manifest of a publish starting now on the spool at `spool`. A commit record of an
    /// earlier attempt on the same bytes is carried over: it may still have applied.
    pub fn starting(
        config: &Config,
        spool: &Path,
        bytes: u64,
        sha256: Option<String>,
        earlier: Option<&Manifest>,
    ) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            spool: spool.to_path_buf(),
            bytes,
            sha256: sha256.or_else(|| earlier.and_then(|m| m.sha256.clone())),
            state: State::Publishing,
            started_at: Some(now()),
            pid: Some(std::process::id()),
            upload_session_id: None,
            commit: earlier.and_then(|m| m.commit.clone()),
            failure: None,
            rows: None,
            settings: Settings::of(config),
            resume: resume_command(&manifest_path(spool)),
        }
    }

    /// Where this manifest lives: beside its spool.
    pub fn path(&self) -> PathBuf {
        manifest_path(&self.spool)
    }

    /// Writes the manifest beside the spool: atomically, durably, private to the user.
    pub fn write(&self) -> Result<PathBuf> {
        let path = self.path();
        let dir = path.parent().unwrap_or(Path::new("."));
        let fail = |e: &std::io::Error| Error::io("cannot write the spool manifest", e);
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::new(ErrorKind::Internal, format!("manifest: {e}")))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".manifest-")
            .tempfile_in(dir)
            .map_err(|e| fail(&e))?;
        std::io::Write::write_all(&mut tmp, &json).map_err(|e| fail(&e))?;
        tmp.as_file().sync_all().map_err(|e| fail(&e))?;
        tmp.persist(&path).map_err(|e| fail(&e.error))?;
        // The rename itself survives a power cut only once the directory is on disk.
        #[cfg(unix)]
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| fail(&e))?;
        Ok(path)
    }

    /// Reads a manifest written by [`Manifest::write`] (or by the previous format).
    pub fn read(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(&format!("cannot read the manifest {}", path.display()), &e))?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("{} is not a spool manifest: {e}", path.display()),
            )
        })?;
        if m.format != FORMAT && m.format != FORMAT_1 {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "{} has format \"{}\", this version reads \"{FORMAT}\" and \"{FORMAT_1}\"",
                    path.display(),
                    m.format
                ),
            ));
        }
        Ok(m)
    }

    /// Whether a commit may have been sent for these bytes.
    pub fn commit_may_have_applied(&self) -> bool {
        self.commit.is_some()
    }
}

/// The manifest of the publish under way, rewritten as it passes the steps that matter. A
/// write that fails does not stop the publish (publishing is the best outcome for the data);
/// the first such failure is remembered and reported if the publish fails.
pub struct Journal {
    manifest: RefCell<Option<Manifest>>,
    write_error: RefCell<Option<Error>>,
}

impl Journal {
    /// A journal that records nothing (the host's own file, published in place).
    pub fn none() -> Journal {
        Journal {
            manifest: RefCell::new(None),
            write_error: RefCell::new(None),
        }
    }

    /// Starts journaling `manifest`: writes it now.
    pub fn start(manifest: Manifest) -> Journal {
        let journal = Journal {
            manifest: RefCell::new(Some(manifest)),
            write_error: RefCell::new(None),
        };
        journal.update(|_| {});
        journal
    }

    fn update(&self, change: impl FnOnce(&mut Manifest)) {
        let mut slot = self.manifest.borrow_mut();
        let Some(m) = slot.as_mut() else { return };
        change(m);
        if let Err(e) = m.write() {
            self.write_error.borrow_mut().get_or_insert(e);
        }
    }

    /// An upload session was initiated.
    pub fn upload_session(&self, id: &str) {
        self.update(|m| m.upload_session_id = Some(id.to_owned()));
    }

    /// The spool's SHA-256 is known.
    pub fn digest(&self, sha256: &str) {
        if self
            .manifest
            .borrow()
            .as_ref()
            .is_some_and(|m| m.sha256.as_deref() == Some(sha256))
        {
            return;
        }
        self.update(|m| m.sha256 = Some(sha256.to_owned()));
    }

    /// The extract was built from the rows.
    pub fn extract_built(&self, record: ExtractRecord) {
        self.update(|m| {
            if let Some(rows) = m.rows.as_mut() {
                rows.extract = Some(record);
            }
        });
    }

    /// The commit is about to be sent.
    pub fn commit_sending(&self, record: CommitRecord) {
        self.update(|m| m.commit = Some(record));
    }

    /// The server accepted the commit as job `id`.
    pub fn job(&self, id: &str) {
        self.update(|m| {
            if let Some(c) = m.commit.as_mut() {
                c.job_id = Some(id.to_owned());
            }
        });
    }

    /// The publish failed with `error`; returns the manifest's path if it is on disk.
    pub fn fail(&self, error: &Error) -> Result<PathBuf> {
        self.update(|m| {
            m.state = State::Failed;
            m.failure = Some(Failure {
                at: now(),
                kind: error.kind(),
                error: error.message().to_owned(),
            });
        });
        if let Some(e) = self.write_error.borrow_mut().take() {
            return Err(e);
        }
        self.manifest
            .borrow()
            .as_ref()
            .map(Manifest::path)
            .ok_or_else(|| Error::new(ErrorKind::Internal, "no manifest is kept for this input"))
    }

    /// The manifest as last written.
    pub fn snapshot(&self) -> Option<Manifest> {
        self.manifest.borrow().clone()
    }
}

/// The one-line command that publishes a kept spool again.
pub fn resume_command(manifest: &Path) -> String {
    format!(
        "tabpub resume {} --config CONFIG.json",
        crate::shell_word::shell_word(manifest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        Config::from_json(
            &serde_json::json!({
                "server_url": "http://127.0.0.1:9",
                "site": "",
                "auth": {"method": "pat", "token_name": "ci", "token_secret": "ci-secret"},
                "project": "Finance",
                "datasource_name": "Sales",
                "mode": "create_new",
                "spool_dir": dir,
            })
            .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn journal_records_each_step_on_disk_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("x.spool");
        std::fs::write(&spool, b"data").unwrap();
        let journal = Journal::start(Manifest::starting(
            &config(dir.path()),
            &spool,
            4,
            None,
            None,
        ));
        let read = || Manifest::read(&manifest_path(&spool)).unwrap();
        assert_eq!(read().state, State::Publishing);
        assert_eq!(read().sha256, None);
        assert_eq!(read().pid, Some(std::process::id()));
        journal.upload_session("s:1");
        journal.digest("abc");
        assert_eq!(read().upload_session_id.as_deref(), Some("s:1"));
        assert_eq!(read().sha256.as_deref(), Some("abc"));
        assert!(!read().commit_may_have_applied());
        journal.commit_sending(CommitRecord {
            sent_at: now(),
            project_id: "p".into(),
            before: None,
            as_job: true,
            job_id: None,
        });
        journal.job("j-1");
        assert_eq!(read().commit.unwrap().job_id.as_deref(), Some("j-1"));
        let path = journal
            .fail(&Error::new(ErrorKind::Server, "it broke"))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("ci-secret"));
        let m = read();
        assert_eq!(m.state, State::Failed);
        assert_eq!(m.failure.unwrap().kind, ErrorKind::Server);
        // A later attempt on the same bytes keeps the record: that commit may still apply.
        let again = Manifest::starting(&config(dir.path()), &spool, 4, None, Some(&read()));
        assert!(again.commit_may_have_applied());
        assert_eq!(again.sha256.as_deref(), Some("abc"));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".manifest-"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[test]
    fn reads_the_previous_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.spool.json");
        std::fs::write(
            &path,
            r#"{"format":"tableau-publisher-spool/1","spool":"/tmp/old.spool","bytes":3,"sha256":"abc",
                "failed_at":"2026-01-01T00:00:00Z","status":10,"error":"x",
                "settings":{"server_url":"u","site":"","auth_method":"pat","auth_identity":"ci",
                "project":["A"],"project_id":null,"datasource_name":"S","mode":"overwrite"},
                "resume":"tabpub resume /tmp/old.spool.json --config CONFIG.json"}"#,
        )
        .unwrap();
        let m = Manifest::read(&path).unwrap();
        assert_eq!(m.state, State::Failed);
        assert_eq!(m.sha256.as_deref(), Some("abc"));
        assert!(!m.commit_may_have_applied());
    }
}
