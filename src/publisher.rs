//! [`Publisher`]: the Rust API behind the C ABI. Holds the configuration, the spool and the
//! result; owns a runtime only while publishing.

use std::path::Path;

use crate::cancel::Canceller;
use crate::config::{Config, Mode};
use crate::error::{Error, ErrorKind, Result};
use crate::extract::Built;
use crate::filetype::{FileType, Input, RowFormat};
use crate::log::{LogFn, LogLevel};
use crate::manifest::{resume_command, CommitRecord, ExtractRecord, Journal, Manifest, RowsRecord};
use crate::progress::{ProgressFn, Reporter};
use crate::publish::{self, PreflightResult, PublishResult};
use crate::spool::{DigestSource, Sealed, Spool};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Accepting data.
    Open,
    /// A publish failed; the spool is kept and finalize may be called again.
    Failed,
    /// Published; the spool is gone.
    Published,
}

/// One publish: configure, feed bytes, then finalize.
pub struct Publisher {
    config: Config,
    spool: Spool,
    state: State,
    result: Option<PublishResult>,
    hooks: Hooks,
    /// The manifest of the last attempt on this spool (a failed finalize, or the one resumed).
    earlier: Option<Manifest>,
}

/// What the host gave to hear about (and stop) the blocking calls.
#[derive(Default)]
struct Hooks {
    progress: Option<ProgressFn>,
    log: Option<LogFn>,
    cancel: Canceller,
}

impl Hooks {
    fn log(&mut self, level: LogLevel, message: &str) {
        if let Some(f) = self.log.as_mut() {
            f(level, message);
        }
    }
}

impl Publisher {
    /// Validates the JSON configuration. No network, no threads, no files.
    pub fn new(config_json: &str) -> Result<Publisher> {
        let config = Config::from_json(config_json)?;
        Ok(Publisher {
            spool: Spool::new(&config.spool_dir),
            config,
            state: State::Open,
            result: None,
            hooks: Hooks::default(),
            earlier: None,
        })
    }

    /// A publisher for a spool kept by an earlier failed publish, described by `manifest`.
    /// The spool is checked against the manifest's size and SHA-256 first; settings come from
    /// `config_json` (which supplies the secrets).
    pub fn resume(config_json: &str, manifest: &Path) -> Result<Publisher> {
        let config = Config::from_json(config_json)?;
        let m = Manifest::read(manifest)?;
        let spool = Spool::adopt(&m.spool, m.bytes, m.sha256.as_deref())?;
        Ok(Publisher {
            spool,
            config,
            state: State::Failed,
            result: None,
            hooks: Hooks::default(),
            earlier: Some(m),
        })
    }

    /// Sets (or with `None` clears) the function told about progress during
    /// [`finalize_and_publish`](Self::finalize_and_publish); it returns `false` to cancel.
    pub fn set_progress(&mut self, progress: Option<ProgressFn>) {
        self.hooks.progress = progress;
    }

    /// Sets (or with `None` clears) the function told, during
    /// [`finalize_and_publish`](Self::finalize_and_publish) and [`preflight`](Self::preflight)
    /// and on their thread, what a user should see: re-authentications, retries and waits with
    /// their reasons, upload restarts, the sign-in and the publish, and the final error. See
    /// [`crate::log`]. No line holds a secret.
    pub fn set_log(&mut self, log: Option<LogFn>) {
        self.hooks.log = log;
    }

    /// A handle that cancels this publisher's blocking call from any thread; see [`Canceller`].
    pub fn canceller(&self) -> Canceller {
        self.hooks.cancel.clone()
    }

    /// Appends bytes to the spool.
    pub fn feed(&mut self, data: &[u8]) -> Result<()> {
        if self.state != State::Open {
            return Err(Error::new(
                ErrorKind::State,
                "cannot feed data after publishing was started on this handle; create a new handle for a new publish",
            ));
        }
        self.spool.write(data)
    }

    /// Publishes the existing file at `path` in place, without copying it into the spool. Only
    /// before any data was fed; afterwards nothing else can be fed. Its SHA-256 is computed on
    /// a background thread from now on, in parallel with the upload; it must not change until
    /// the publish ends, and is never modified or deleted.
    pub fn feed_file(&mut self, path: &Path) -> Result<()> {
        if self.state != State::Open {
            return Err(Error::new(
                ErrorKind::State,
                "cannot feed a file after publishing was started on this handle; create a new handle for a new publish",
            ));
        }
        if !self.spool.is_empty() || self.spool.is_external() {
            return Err(Error::new(
                ErrorKind::State,
                "an existing file can only be the whole input of a handle; this one already has data",
            ));
        }
        let path = crate::native_path::native(path.to_path_buf());
        if !path.is_file() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("{} is not a regular file", path.display()),
            ));
        }
        self.spool = Spool::external(&path)?;
        Ok(())
    }

    /// Signs in, uploads, publishes and signs out. After a failure the spool is kept and this
    /// may be called again; after success, calls fail with [`ErrorKind::State`].
    pub fn finalize_and_publish(&mut self) -> Result<&PublishResult> {
        match self.publish_once() {
            Ok(()) => {
                let r = self
                    .result
                    .as_ref()
                    .expect("a publish that worked has its result");
                let line = format!(
                    "published data source \"{}\" ({}) in project {}: {} bytes, sha256 {}, {}; {} sign-in(s), {} retries, {} HTTP requests",
                    r.datasource_name,
                    r.datasource_id.as_deref().unwrap_or("id not listed yet"),
                    r.project_id,
                    r.bytes,
                    r.sha256,
                    if r.chunked {
                        format!("{} chunk(s) in {} upload session(s)", r.chunks, r.upload_sessions)
                    } else {
                        "in one request".to_owned()
                    },
                    r.sign_ins,
                    r.retries,
                    r.http_requests
                );
                self.hooks.log(LogLevel::Info, &line);
                Ok(self
                    .result
                    .as_ref()
                    .expect("a publish that worked has its result"))
            }
            Err(e) => {
                self.hooks.log(LogLevel::Error, e.message());
                Err(e)
            }
        }
    }

    fn publish_once(&mut self) -> Result<()> {
        if self.state == State::Published {
            return Err(Error::new(
                ErrorKind::State,
                "this handle has already published; create a new handle for a new publish",
            ));
        }
        refuse_inside_tokio()?;
        let sealed = self.spool.seal()?;
        // Unrecognised data fails like any other publish: kept, with its manifest.
        let input = self.input_of(&sealed);
        let journal = if self.spool.is_external() {
            Journal::none()
        } else {
            // On disk and durable before the manifest says so, before any network call.
            let kept = self.spool.keep().unwrap_or(sealed.path.clone());
            let mut manifest = Manifest::starting(
                &self.config,
                &kept,
                sealed.len,
                sealed.known_digest(),
                self.earlier.as_ref(),
            );
            if let Ok(Input::Rows(format)) = input {
                manifest.rows = Some(RowsRecord {
                    format,
                    options: self.config.extract.clone(),
                    extract: self.reusable_extract(format),
                });
            }
            Journal::start(manifest)
        };
        let prior = journal.snapshot().and_then(|m| m.commit);
        let outcome = match input {
            Ok(Input::Tableau(file_type)) => {
                self.publish_sealed(&sealed, file_type, &journal, prior.as_ref())
            }
            Ok(Input::Rows(format)) => self.publish_rows(&sealed, format, &journal, prior.as_ref()),
            Err(e) => Err(e),
        };
        let extract = journal
            .snapshot()
            .and_then(|m| m.rows)
            .and_then(|r| r.extract)
            .map(|e| e.path);
        match outcome {
            Ok(result) => {
                // The data is on the server; failing to delete the local copy is not a failure.
                // The manifest goes first: a spool without one is listed, never deleted.
                self.spool.remove();
                if let Some(path) = extract {
                    let _ = std::fs::remove_file(path);
                }
                self.earlier = None;
                self.state = State::Published;
                self.result = Some(result);
                Ok(())
            }
            Err(e) if self.spool.is_external() => {
                self.state = State::Failed;
                let stop = if e.message().ends_with('.') { "" } else { "." };
                Err(e.with_suffix(&format!(
                    "{stop} The input file {} was not modified; publish it again with: tabpub publish --config CONFIG.json --input {}",
                    sealed.path.display(),
                    sealed.path.display()
                )))
            }
            Err(e) => {
                self.state = State::Failed;
                let kept = self.spool.keep().unwrap_or(sealed.path.clone());
                let stop = if e.message().ends_with('.') { "" } else { "." };
                let sha256 = match sealed.digest() {
                    Ok(d) => d,
                    Err(d) => {
                        let _ = journal.fail(&e);
                        self.earlier = journal.snapshot();
                        return Err(e.with_suffix(&format!(
                            "{stop} The data fed is kept at {} but could not be read back ({d}).",
                            kept.display()
                        )));
                    }
                };
                journal.digest(&sha256);
                let written = journal.fail(&e);
                self.earlier = journal.snapshot();
                let suffix = match written {
                    Ok(path) => format!(
                        "{stop} The data fed ({} bytes, sha256 {}) is kept at {}; publish it again with: {}",
                        sealed.len,
                        sha256,
                        kept.display(),
                        resume_command(&path)
                    ),
                    Err(m) => format!(
                        "{stop} The data fed ({} bytes, sha256 {}) is kept at {} (its manifest could not be written: {m}); publish it again with: tabpub publish --config CONFIG.json --input {}",
                        sealed.len,
                        sha256,
                        kept.display(),
                        crate::shell_word::shell_word(&kept)
                    ),
                };
                Err(e.with_suffix(&suffix))
            }
        }
    }

    /// What the bytes are: the configured `file_type`, else the format an earlier attempt on
    /// this spool recorded, else recognised from the first bytes.
    fn input_of(&self, sealed: &Sealed) -> Result<Input> {
        let input = match self.config.file_type {
            Some(t) => t,
            None => match self.earlier.as_ref().and_then(|m| m.rows.as_ref()) {
                Some(rows) => Input::Rows(rows.format),
                None => Input::detect(&sealed.head).ok_or_else(|| {
                    Error::config(format!(
                        "the data fed is not a Tableau data source file nor Parquet or an Arrow stream ({}): expected a .hyper extract, a .tdsx (zip), a .tds (XML), a .tde, Parquet or an Arrow IPC stream; for CSV set \"file_type\": \"csv\"",
                        FileType::describe_head(&sealed.head)
                    ))
                })?,
            },
        };
        if self.config.mode == Mode::Append && !input.can_append() {
            return Err(Error::config(format!(
                "mode \"append\" needs an extract (.hyper or .tde), but the data is a .{}",
                input.as_str()
            )));
        }
        Ok(input)
    }

    /// The extract an earlier attempt built from these bytes with the same options, if it is
    /// still there unchanged.
    fn reusable_extract(&self, format: RowFormat) -> Option<ExtractRecord> {
        let rows = self.earlier.as_ref()?.rows.as_ref()?;
        let extract = rows.extract.as_ref()?;
        if rows.format != format || rows.options != self.config.extract {
            return None;
        }
        let (len, sha256, _) = crate::spool::digest_file(&extract.path).ok()?;
        (len == extract.bytes && sha256 == extract.sha256).then(|| extract.clone())
    }

    fn publish_sealed(
        &mut self,
        sealed: &Sealed,
        file_type: FileType,
        journal: &Journal,
        prior: Option<&CommitRecord>,
    ) -> Result<PublishResult> {
        let config = &self.config;
        block_on(&mut self.hooks, |reporter| async move {
            publish::run(config, sealed, file_type, &reporter, journal, prior).await
        })
    }

    /// Builds the rows into a `.hyper` (or reuses the one an earlier attempt built), then
    /// publishes it; sign-in happens only after the build.
    fn publish_rows(
        &mut self,
        sealed: &Sealed,
        format: RowFormat,
        journal: &Journal,
        prior: Option<&CommitRecord>,
    ) -> Result<PublishResult> {
        let config = &self.config;
        let exe = crate::extract::locate::find(config.extract.hyperd_path.as_deref())?;
        let reused = journal
            .snapshot()
            .and_then(|m| m.rows)
            .and_then(|r| r.extract);
        let work_dir = crate::spool::private_dir(&config.spool_dir)?;
        // Beside the spool, so that it is kept with it; a temporary one for the host's own file.
        let out = match self.spool.is_external() {
            false => {
                let mut name = sealed.path.as_os_str().to_owned();
                name.push(".hyper");
                std::path::PathBuf::from(name)
            }
            true => tempfile::Builder::new()
                .prefix("tableau-publisher-extract-")
                .suffix(".hyper")
                .tempfile_in(&work_dir)
                .map_err(|e| Error::io("cannot create the extract file", &e))?
                .into_temp_path()
                .keep()
                .map_err(|e| Error::io("cannot create the extract file", &e.error))?,
        };
        let external = self.spool.is_external();
        if external {
            // The host's own file is neither kept nor uploaded: only the extract's digest is
            // needed, and hashing the input would take a core from hyperd's COPY.
            sealed.abandon_digest();
        }
        let (out_path, work_dir) = (&out, &work_dir);
        let outcome = block_on(&mut self.hooks, |reporter| async move {
            let (out, work_dir) = (out_path, work_dir);
            let (record, built) = match reused {
                Some(record) => {
                    reporter.log(
                        LogLevel::Info,
                        &format!(
                            "reusing the extract built by the earlier attempt ({}, {} rows, sha256 {})",
                            record.path.display(),
                            record.rows,
                            record.sha256
                        ),
                    );
                    (record, None)
                }
                None => {
                    let built =
                        build_extract(config, &exe, sealed, format, out, work_dir, &reporter)
                            .await?;
                    let (bytes, sha256, _) = crate::spool::digest_file(out)?;
                    let record = ExtractRecord {
                        path: out.to_path_buf(),
                        bytes,
                        sha256,
                        rows: built.rows,
                    };
                    journal.extract_built(record.clone());
                    (record, Some(built))
                }
            };
            let hyper = Sealed {
                path: record.path.clone(),
                len: record.bytes,
                digest: DigestSource::Known(record.sha256.clone()),
                head: b"Hyper\x08".to_vec(),
            };
            let mut result =
                publish::run(config, &hyper, FileType::Hyper, &reporter, journal, prior).await?;
            result.extract = Some(built.unwrap_or_else(|| Built {
                format,
                input_bytes: sealed.len,
                rows: record.rows,
                columns: Vec::new(),
                seconds: 0.0,
            }));
            Ok(result)
        });
        if external {
            let _ = std::fs::remove_file(&out);
        }
        outcome
    }

    /// Checks the server, credentials, site, project and mode now, without any data and
    /// without keeping a session: for hosts that want to fail fast when a workflow starts.
    /// Allowed before publishing; does not change the handle's state.
    pub fn preflight(&mut self) -> Result<PreflightResult> {
        let outcome = self.preflight_once();
        match &outcome {
            Ok(r) => {
                let existing = match &r.existing_datasource_id {
                    Some(id) => format!(
                        "data source \"{}\" exists ({id})",
                        self.config.datasource_name
                    ),
                    None => format!("no data source \"{}\" yet", self.config.datasource_name),
                };
                let line = format!(
                    "preflight passed: signed in, project {} found, {existing}; mode \"{}\" can publish (signed out again)",
                    r.project_id,
                    self.config.mode.name()
                );
                self.hooks.log(LogLevel::Info, &line);
            }
            Err(e) => self.hooks.log(LogLevel::Error, e.message()),
        }
        outcome
    }

    fn preflight_once(&mut self) -> Result<PreflightResult> {
        if self.state == State::Published {
            return Err(Error::new(
                ErrorKind::State,
                "this handle has already published",
            ));
        }
        refuse_inside_tokio()?;
        let config = &self.config;
        block_on(&mut self.hooks, |reporter| async move {
            publish::preflight(config, &reporter).await
        })
    }
}

/// Builds the extract under the host's eye: the phase at the start, a heartbeat about every
/// half second while hyperd loads (so a progress function can cancel), a log line at the end;
/// a cancel stops it at once (hyperd is killed, the partial file removed).
async fn build_extract(
    config: &Config,
    exe: &Path,
    sealed: &Sealed,
    format: RowFormat,
    out: &Path,
    work_dir: &Path,
    reporter: &crate::progress::Reporter,
) -> Result<Built> {
    let total = sealed.len;
    reporter.building(0, total);
    reporter.log(
        LogLevel::Info,
        &format!(
            "building the extract from {} bytes of {} with hyperd ({}), before signing in",
            total,
            format.as_str(),
            exe.display()
        ),
    );
    let build = crate::extract::build(exe, &sealed.path, format, &config.extract, out, work_dir);
    let heartbeat = async {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
        tick.tick().await;
        loop {
            tick.tick().await;
            reporter.building(0, total);
        }
    };
    let built = reporter
        .until_cancelled(async {
            tokio::select! {
                built = build => built,
                _ = heartbeat => unreachable!("the heartbeat never ends"),
            }
        })
        .await?;
    reporter.building(total, total);
    reporter.log(
        LogLevel::Info,
        &format!(
            "built the extract: {} rows, {} columns ({}) in {:.1} s",
            built.rows,
            built.columns.len(),
            built
                .columns
                .iter()
                .map(|c| format!("{} {}", c.name, c.column_type.name()))
                .collect::<Vec<_>>()
                .join(", "),
            built.seconds
        ),
    );
    Ok(built)
}

/// The blocking calls run their own runtime; inside someone else's they would panic.
fn refuse_inside_tokio() -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::new(
            ErrorKind::State,
            "this call blocks, and was made from inside a tokio runtime; call it from a plain thread (e.g. tokio::task::spawn_blocking)",
        ));
    }
    Ok(())
}

/// Runs `work` on a single-threaded runtime of its own, lending it the host's progress and log
/// functions and its cancel requests. A cancel request is used up by the call it stops.
fn block_on<T, F>(hooks: &mut Hooks, work: impl FnOnce(Reporter) -> F) -> Result<T>
where
    F: std::future::Future<Output = Result<T>>,
{
    // Every socket write of this call happens on this thread, under the guard.
    let _sigpipe = crate::sigpipe::Guard::block();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the I/O runtime", &e))?;
    let reporter = Reporter::new(
        hooks.progress.take(),
        hooks.log.take(),
        hooks.cancel.clone(),
    );
    let result = runtime.block_on(work(reporter.clone()));
    hooks.progress = reporter.take_callback();
    hooks.log = reporter.take_log();
    if matches!(&result, Err(e) if e.kind() == ErrorKind::Cancelled) {
        hooks.cancel.clear();
    }
    // The file is read on this thread; the runtime's blocking threads (name resolution, the
    // wait for the spool's hash) idle a while after their task: never let one hold the host.
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    result
}
