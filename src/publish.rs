//! The finalize state machine: negotiate version → sign in → resolve project → check the target
//! → upload (one request, or chunks) → commit → wait for the job → sign out.
//!
//! Recovery lives here, where the meaning of each step is known: an append whose outcome is
//! unknown restarts the upload in a fresh upload session from the spool (never re-sending into
//! the old one), and a commit whose answer was lost is checked against the server before it is
//! sent again, so nothing is published twice and `create_new` never reports a false clash.

use std::cell::OnceCell;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::api::{Filter, PublishParams};
use crate::client::multipart::FilePart;
use crate::client::retry::{self, RetryPolicy};
use crate::client::xml::{Datasource, Published};
use crate::client::xml_attr;
use crate::client::{http::Http, Api};
use crate::config::{AsJob, Config, Mode, ProjectTarget, MAX_CHUNK_BYTES};
use crate::error::{Error, ErrorKind, Result};
use crate::filetype::FileType;
use crate::log::LogLevel;
use crate::manifest::{Baseline, CommitRecord, Journal};
use crate::progress::{Phase, Reporter};
use crate::spool::Sealed;

/// Tableau's documented cap on blocks per uploaded file.
const MAX_BLOCKS: u64 = 1000;
/// Longest wait for the sign-out after the host cancelled: the call returns within about a
/// second of the cancel; a session not signed out then ends when it expires.
const SIGN_OUT_AFTER_CANCEL: Duration = Duration::from_millis(600);

/// What a successful publish reports (serialised as the result JSON).
#[derive(Debug, Clone, Serialize)]
pub struct PublishResult {
    /// Data source LUID (null only if the server's search index did not show it yet).
    pub datasource_id: Option<String>,
    /// Data source name.
    pub datasource_name: String,
    /// Content URL.
    pub content_url: Option<String>,
    /// Project LUID.
    pub project_id: String,
    /// Site LUID.
    pub site_id: String,
    /// Bytes published (exactly the bytes fed).
    pub bytes: u64,
    /// SHA-256 of the bytes published.
    pub sha256: String,
    /// `hyper`, `tdsx`, `tds` or `tde`.
    pub file_type: FileType,
    /// `create_new`, `overwrite` or `append`.
    pub mode: &'static str,
    /// Whether the bytes went through an upload session (chunked).
    pub chunked: bool,
    /// Append requests that succeeded, over all upload sessions.
    pub chunks: u64,
    /// The asynchronous job's LUID, if published as a job and its answer arrived.
    pub job_id: Option<String>,
    /// REST API version used.
    pub api_version: String,
    /// Sign-ins made (more than 1 when a session ended mid-way).
    pub sign_ins: u64,
    /// Upload sessions initiated (more than 1 when an upload was restarted).
    pub upload_sessions: u64,
    /// Transient failures retried.
    pub retries: u64,
    /// HTTP requests made, sign-out included.
    pub http_requests: u64,
    /// When rows were fed: what was built (format, input bytes, rows, columns, seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extract: Option<crate::extract::Built>,
}

/// A client for the configured server, not signed in yet.
fn client(config: &Config, reporter: &Reporter) -> Result<Api> {
    reporter.phase(Phase::SigningIn);
    let http = Http::new(&config.server_url, config.request_timeout, config.route()?)?;
    Ok(Api::new(
        http,
        &config.server_url,
        &config.site,
        &config.auth,
        RetryPolicy::from(&config.retry),
        config.retry.max_reauthentications,
    )?
    .with_session_wait(config.session_wait)
    .with_reporter(reporter.clone()))
}

/// Negotiates the version (unless configured) and signs in.
async fn connect(api: &mut Api, config: &Config) -> Result<()> {
    match config.api_version {
        Some(v) => api.set_version(v),
        None => {
            api.negotiate_version().await?;
        }
    }
    api.sign_in().await
}

/// A signed-in client, or the error; a cancel during the sign-in still signs out whatever
/// session it may have got.
async fn signed_in(config: &Config, reporter: &Reporter) -> Result<Api> {
    let mut api = client(config, reporter)?;
    match reporter.until_cancelled(connect(&mut api, config)).await {
        Ok(()) => Ok(api),
        Err(e) => {
            if e.kind() == ErrorKind::Cancelled {
                sign_out(&api, reporter).await;
            }
            Err(e)
        }
    }
}

/// Signs out; failing to must not turn a publish that worked into a failure. After a cancel it
/// is given [`SIGN_OUT_AFTER_CANCEL`] at most.
async fn sign_out(api: &Api, reporter: &Reporter) {
    reporter.phase(Phase::SigningOut);
    if reporter.is_cancelled() {
        if tokio::time::timeout(SIGN_OUT_AFTER_CANCEL, api.sign_out())
            .await
            .is_err()
        {
            reporter.log(
                LogLevel::Warn,
                &format!(
                    "signing out took longer than {} ms after the cancel and was abandoned; the session ends when it expires",
                    SIGN_OUT_AFTER_CANCEL.as_millis()
                ),
            );
        }
    } else {
        let _ = api.sign_out().await;
    }
}

/// Runs the whole publish, recording its steps in `journal`. `prior` is the commit of an
/// earlier attempt on the same bytes that may have applied: checked before publishing again.
/// Signs out afterwards whether or not publishing worked.
pub async fn run(
    config: &Config,
    sealed: &Sealed,
    file_type: FileType,
    reporter: &Reporter,
    journal: &Journal,
    prior: Option<&CommitRecord>,
) -> Result<PublishResult> {
    let api = signed_in(config, reporter).await?;
    let publish = Publish {
        api: &api,
        config,
        sealed,
        file_type,
        reporter,
        journal,
        prior,
        sha256: OnceCell::new(),
    };
    let outcome = reporter.until_cancelled(publish.run()).await;
    sign_out(&api, reporter).await;
    let mut result = outcome?;
    let counters = api.counters();
    result.sign_ins = counters.sign_ins;
    result.upload_sessions = counters.upload_sessions;
    result.retries = counters.retries;
    result.http_requests = api.http_requests();
    Ok(result)
}

/// What a preflight found (serialised by `tabpub check`).
#[derive(Debug, Clone, Serialize)]
pub struct PreflightResult {
    /// REST API version that would be used.
    pub api_version: String,
    /// Site LUID.
    pub site_id: String,
    /// Target project LUID.
    pub project_id: String,
    /// The existing data source of that name in the project, if any.
    pub existing_datasource_id: Option<String>,
    /// HTTP requests made.
    pub http_requests: u64,
}

/// Checks everything a publish needs except the data: server, credentials, site, project, and
/// the mode against what exists. Signs in and out again at once, so no session is held while
/// the upstream runs.
pub async fn preflight(config: &Config, reporter: &Reporter) -> Result<PreflightResult> {
    let api = signed_in(config, reporter).await?;
    reporter.phase(Phase::Resolving);
    let outcome = reporter
        .until_cancelled(async {
            let target = find_target(&api, config).await?;
            check_mode(config, &target).map(|()| target)
        })
        .await;
    sign_out(&api, reporter).await;
    let target = outcome?;
    Ok(PreflightResult {
        api_version: api.version().to_string(),
        site_id: api.site_id().unwrap_or_default(),
        project_id: target.project_id,
        existing_datasource_id: target.before.map(|d| d.id),
        http_requests: api.http_requests(),
    })
}

/// The data source as it was before committing, to tell afterwards whether a commit applied.
struct Target {
    project_id: String,
    project_name: Option<String>,
    before: Option<Datasource>,
}

/// What a commit attempt ended in.
enum Commit {
    Done(Published),
    /// The upload session is gone (e.g. bound to a session that ended): upload again.
    SessionGone(Error),
}

struct Publish<'a> {
    api: &'a Api,
    config: &'a Config,
    sealed: &'a Sealed,
    file_type: FileType,
    reporter: &'a Reporter,
    journal: &'a Journal,
    prior: Option<&'a CommitRecord>,
    /// The spool's SHA-256, once waited for.
    sha256: OnceCell<String>,
}

impl Publish<'_> {
    async fn run(&self) -> Result<PublishResult> {
        let (api, config, sealed) = (self.api, self.config, self.sealed);
        let name = &config.datasource_name;
        self.reporter.phase(Phase::Resolving);
        let target = find_target(api, config).await?;
        if let Some(prior) = self.prior {
            if let Some((datasource, job_id)) = self.earlier_commit(prior, &target).await? {
                let chunked = self.sealed.len >= config.single_request_max_bytes;
                return self.result(target, datasource, job_id, chunked, 0).await;
            }
        }
        check_mode(config, &target)?;
        let chunked = sealed.len >= config.single_request_max_bytes;
        let as_job = match config.as_job {
            AsJob::Auto => chunked,
            AsJob::Always => true,
            AsJob::Never => false,
        };

        let mut payload = format!(
            "<tsRequest><datasource name=\"{}\"",
            xml_attr::escape("\"datasource_name\"", name)?
        );
        if let Some(d) = &config.description {
            payload.push_str(&format!(
                " description=\"{}\"",
                xml_attr::escape("\"description\"", d)?
            ));
        }
        payload.push_str(&format!(
            "><project id=\"{}\"/></datasource></tsRequest>",
            xml_attr::escape("the project id", &target.project_id)?
        ));
        let params = PublishParams {
            overwrite: config.mode == Mode::Overwrite,
            append: config.mode == Mode::Append,
            as_job,
            upload_session_id: None,
            datasource_type: self.file_type.as_str(),
        };

        self.refresh_old_session().await?;
        let (published, chunks) = if chunked {
            self.upload_and_commit(&target, params, &payload).await?
        } else {
            self.reporter.start_upload(sealed.len);
            let filename = format!("{}.{}", ascii_file_stem(name), self.file_type.as_str());
            let file = FilePart {
                name: "tableau_datasource",
                filename: &filename,
                path: &sealed.path,
                offset: 0,
                len: sealed.len,
            };
            match self.commit(&target, &params, &payload, Some(file)).await? {
                Commit::Done(p) => (p, 0),
                Commit::SessionGone(e) => return Err(e),
            }
        };
        let (datasource, job_id) = match published {
            Published::Datasource(d) => (Some(d), None),
            Published::Job(job) => {
                self.journal.job(&job.id);
                self.reporter.log(
                    LogLevel::Info,
                    &format!(
                        "publish job {} accepted; waiting for it to finish (at most {}, \"job_timeout_secs\")",
                        job.id,
                        crate::log::delay(self.config.job_timeout)
                    ),
                );
                self.reporter.phase(Phase::WaitingForJob);
                self.refresh_old_session().await?;
                self.wait_for_job(&job.id, &target).await?;
                let d = find_datasource(
                    api,
                    name,
                    &target.project_id,
                    target.project_name.as_deref(),
                )
                .await?;
                (d, Some(job.id))
            }
        };
        self.result(target, datasource, job_id, chunked, chunks)
            .await
    }

    /// What the publish reports.
    async fn result(
        &self,
        target: Target,
        datasource: Option<Datasource>,
        job_id: Option<String>,
        chunked: bool,
        chunks: u64,
    ) -> Result<PublishResult> {
        let (api, config, sealed) = (self.api, self.config, self.sealed);
        let name = &config.datasource_name;
        // Known since before the commit.
        let sha256 = self.spool_digest().await?;
        Ok(PublishResult {
            datasource_id: datasource.as_ref().map(|d| d.id.clone()),
            datasource_name: datasource
                .as_ref()
                .map_or_else(|| name.clone(), |d| d.name.clone()),
            content_url: datasource.and_then(|d| d.content_url),
            project_id: target.project_id,
            site_id: api.site_id().unwrap_or_default(),
            bytes: sealed.len,
            sha256,
            file_type: self.file_type,
            mode: config.mode.name(),
            chunked,
            chunks,
            job_id,
            api_version: api.version().to_string(),
            sign_ins: 0,
            upload_sessions: 0,
            retries: 0,
            http_requests: 0,
            extract: None,
        })
    }

    /// An earlier attempt on these bytes sent its commit and never learnt the outcome (its
    /// process died, or it failed while the job's outcome was unknown): finds out whether that
    /// commit applied, as the lost-answer path does, so that publishing again neither
    /// duplicates it nor reports a false `create_new` clash. `Some` when it applied.
    async fn earlier_commit(
        &self,
        prior: &CommitRecord,
        target: &Target,
    ) -> Result<Option<(Option<Datasource>, Option<String>)>> {
        if prior.project_id != target.project_id {
            return Ok(None); // published elsewhere then: this target was not touched
        }
        let name = &self.config.datasource_name;
        if let Some(id) = &prior.job_id {
            self.reporter.phase(Phase::WaitingForJob);
            let polled = self.poll_job(id).await;
            match polled {
                Ok(job) if matches!(job.finish_code, Some(0) | Some(3)) => {
                    let d = find_datasource(
                        self.api,
                        name,
                        &target.project_id,
                        target.project_name.as_deref(),
                    )
                    .await?;
                    return Ok(Some((d, Some(id.clone()))));
                }
                Ok(_) => return Ok(None), // failed or cancelled: nothing applied
                Err(e) if e.kind() == ErrorKind::NotFound => {} // the data source tells
                Err(e) => return Err(e),
            }
        }
        let then = Target {
            project_id: prior.project_id.clone(),
            project_name: target.project_name.clone(),
            before: prior.before.as_ref().map(|b| Datasource {
                id: b.id.clone(),
                name: name.clone(),
                content_url: None,
                project_id: Some(prior.project_id.clone()),
                project_name: None,
                updated_at: b.updated_at.clone(),
            }),
        };
        // A job whose id never arrived may still be running.
        let window = if prior.as_job && prior.job_id.is_none() {
            Duration::from_secs(self.config.retry.commit_verify_secs)
        } else {
            Duration::ZERO
        };
        Ok(self
            .applied_since(&then, window)
            .await?
            .map(|d| (Some(d), prior.job_id.clone())))
    }

    /// The spool's SHA-256 (computed in the background while the upload ran), waited for off
    /// the I/O thread. Asked for before the first commit, so that a spool that cannot be read
    /// back fails before anything is committed.
    async fn spool_digest(&self) -> Result<String> {
        if let Some(d) = self.sha256.get() {
            return Ok(d.clone());
        }
        let sealed = self.sealed.clone();
        let digest = tokio::task::spawn_blocking(move || sealed.digest())
            .await
            .map_err(|e| {
                Error::new(ErrorKind::Internal, format!("the hashing task failed: {e}"))
            })??;
        self.journal.digest(&digest);
        Ok(self.sha256.get_or_init(|| digest).clone())
    }

    /// Signs in afresh when the session is older than `session_max_age_secs`.
    async fn refresh_old_session(&self) -> Result<()> {
        match self.config.session_max_age {
            Some(max) => self.api.renew_if_older(max).await,
            None => Ok(()),
        }
    }

    /// Uploads the spool in chunks and commits; restarts in a fresh upload session when an
    /// append's outcome is unknown or the session disappeared.
    async fn upload_and_commit(
        &self,
        target: &Target,
        params: PublishParams<'_>,
        payload: &str,
    ) -> Result<(Published, u64)> {
        let (api, sealed) = (self.api, self.sealed);
        let chunk = self
            .config
            .chunk_size_bytes
            .max(sealed.len.div_ceil(MAX_BLOCKS))
            .min(MAX_CHUNK_BYTES);
        let mut chunks = 0;
        let mut restarts = 0;
        loop {
            let session = api.initiate_upload().await?;
            self.journal.upload_session(&session);
            self.reporter.start_upload(sealed.len);
            let mut offset = 0;
            let mut failure = None;
            while offset < sealed.len {
                let len = chunk.min(sealed.len - offset);
                match api.append(&session, &sealed.path, offset, len).await {
                    Ok(_) => {
                        offset += len;
                        chunks += 1;
                    }
                    // Unknown outcome, or the session is gone: never re-send into it.
                    Err(e) if retry::is_ambiguous(&e) || e.http_status() == Some(404) => {
                        failure = Some(e);
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            let failure = match failure {
                Some(e) => e,
                None => {
                    self.reporter.phase(Phase::Committing);
                    let commit = PublishParams {
                        upload_session_id: Some(&session),
                        ..params
                    };
                    match self.commit(target, &commit, payload, None).await? {
                        Commit::Done(p) => return Ok((p, chunks)),
                        Commit::SessionGone(e) => e,
                    }
                }
            };
            if restarts >= self.config.retry.max_upload_restarts {
                return Err(failure.with_suffix(&format!(
                    " The upload was restarted {restarts} times in fresh upload sessions and still failed (\"retry.max_upload_restarts\")."
                )));
            }
            restarts += 1;
            let why = if failure.http_status() == Some(404) {
                "the upload session is gone"
            } else {
                "it is unknown what the server kept of the last request"
            };
            self.reporter.log(
                LogLevel::Warn,
                &format!(
                    "{}; {why}, so the upload starts again from the first byte in a new upload session (restart {restarts} of at most {}, \"retry.max_upload_restarts\")",
                    failure.message(),
                    self.config.retry.max_upload_restarts
                ),
            );
        }
    }

    /// Commits once; if the answer is lost, finds out whether it applied before sending it
    /// again (once).
    async fn commit(
        &self,
        target: &Target,
        params: &PublishParams<'_>,
        payload: &str,
        file: Option<FilePart<'_>>,
    ) -> Result<Commit> {
        let api = self.api;
        self.spool_digest().await?;
        self.wait_for_distinct_timestamp(target).await;
        self.journal.commit_sending(CommitRecord {
            sent_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            project_id: target.project_id.clone(),
            before: target.before.as_ref().map(|b| Baseline {
                id: b.id.clone(),
                updated_at: b.updated_at.clone(),
            }),
            as_job: params.as_job,
            job_id: None,
        });
        let sign_ins_before = api.counters().sign_ins;
        let first = match api.publish_datasource(params, payload, file).await {
            Ok(p) => return Ok(Commit::Done(p)),
            Err(e) => e,
        };
        let uploaded = params.upload_session_id.is_some();
        if !retry::is_ambiguous(&first) {
            // An upload session bound to a session that ended answers 404 after re-sign-in.
            if uploaded
                && first.http_status() == Some(404)
                && api.counters().sign_ins > sign_ins_before
            {
                return Ok(Commit::SessionGone(first));
            }
            return Err(first);
        }
        self.reporter.log(
            LogLevel::Warn,
            &format!(
                "{}; the commit may have applied: checking the data source before sending it again",
                first.message()
            ),
        );
        // A Tableau error body on a synchronous commit means the server finished with it: one
        // look suffices. A lost answer, a gateway's 502/504, or a job may still be applying.
        let finished = first.tableau_code().is_some() && !params.as_job;
        let window = if finished {
            Duration::ZERO
        } else {
            Duration::from_secs(self.config.retry.commit_verify_secs)
        };
        if let Some(d) = self.applied_since(target, window).await? {
            return Ok(Commit::Done(Published::Datasource(d)));
        }
        match api.publish_datasource(params, payload, file).await {
            Ok(p) => Ok(Commit::Done(p)),
            Err(e) if uploaded && e.http_status() == Some(404) => Ok(Commit::SessionGone(e)),
            Err(e) => match self.applied_since(target, Duration::ZERO).await? {
                // The first commit applied late; the second was refused because of it.
                Some(d) => Ok(Commit::Done(Published::Datasource(d))),
                None => Err(e.with_suffix(&format!(
                    " (The first commit's answer was lost: {})",
                    first.message()
                ))),
            },
        }
    }

    /// The data source, if it changed since `target.before` was read; looks for up to `window`.
    async fn applied_since(&self, target: &Target, window: Duration) -> Result<Option<Datasource>> {
        let deadline = Instant::now() + window;
        let mut wait = Duration::from_millis(250);
        loop {
            let now = find_datasource(
                self.api,
                &self.config.datasource_name,
                &target.project_id,
                target.project_name.as_deref(),
            )
            .await?;
            if let Some(d) = now {
                let changed = match &target.before {
                    None => true,
                    Some(b) => b.id != d.id || b.updated_at != d.updated_at,
                };
                if changed {
                    return Ok(Some(d));
                }
            }
            if Instant::now() + wait > deadline {
                return Ok(None);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(10));
        }
    }

    /// Timestamps have one-second resolution: if the existing data source was updated in the
    /// server's current second, wait for the next so a new update is distinguishable.
    async fn wait_for_distinct_timestamp(&self, target: &Target) {
        let updated = target
            .before
            .as_ref()
            .and_then(|b| b.updated_at.as_deref())
            .and_then(|t| humantime::parse_rfc3339(t).ok());
        if let (Some(updated), Some(now)) = (updated, self.api.server_time()) {
            let age = now.duration_since(updated).unwrap_or(Duration::ZERO);
            if age < Duration::from_secs(1) {
                tokio::time::sleep(Duration::from_millis(1100) - age).await;
            }
        }
    }

    /// Polls job `id` until it completes (looks 200 ms apart, growing to 30 s), for at most
    /// `job_timeout_secs`.
    async fn poll_job(&self, id: &str) -> Result<crate::client::xml::Job> {
        let (first, max) = (Duration::from_millis(200), Duration::from_secs(30));
        self.api
            .wait_for_job(id, first, max, self.config.job_timeout)
            .await
    }

    /// Waits for the publish job. If its status cannot be read (throttled, network), the data
    /// source itself tells whether the publish applied.
    async fn wait_for_job(&self, id: &str, target: &Target) -> Result<()> {
        let polled = self.poll_job(id).await;
        let done = match polled {
            Ok(done) => done,
            Err(e) if e.kind() != ErrorKind::Auth => {
                let window = Duration::from_secs(self.config.retry.commit_verify_secs);
                return match self.applied_since(target, window).await {
                    Ok(Some(_)) => Ok(()),
                    _ => Err(e.with_suffix(&format!(
                        " Publish job {id} was accepted but its outcome is unknown; check it in Tableau before publishing again."
                    ))),
                };
            }
            Err(e) => return Err(e),
        };
        match done.finish_code {
            Some(0) | Some(3) => Ok(()),
            Some(2) => Err(Error::new(
                ErrorKind::Cancelled,
                format!("publish job {id} was cancelled on the server"),
            )),
            code => {
                let notes = if done.notes.is_empty() {
                    "no notes".to_owned()
                } else {
                    done.notes.join("; ")
                };
                Err(Error::new(
                    ErrorKind::Server,
                    format!(
                        "publish job {id} failed on the server (finishCode {}): {notes}; check that the file is a valid {} and, for append, that its schema matches",
                        code.map_or("missing".to_owned(), |c| c.to_string()),
                        self.file_type.as_str()
                    ),
                ))
            }
        }
    }
}

/// A filename Tableau will accept: the name's ASCII letters, digits, `-` and `_`.
fn ascii_file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.trim_matches('_').is_empty() {
        "datasource".to_owned()
    } else {
        stem
    }
}

/// Resolves the project and reads what is there now: the baseline for telling whether a
/// commit whose answer was lost did apply.
async fn find_target(api: &Api, config: &Config) -> Result<Target> {
    let (project_id, project_name) = resolve_project(api, &config.project).await?;
    let before = find_datasource(
        api,
        &config.datasource_name,
        &project_id,
        project_name.as_deref(),
    )
    .await?;
    Ok(Target {
        project_id,
        project_name,
        before,
    })
}

/// Fails fast (before hours of upload) when `append` has nothing to append to or
/// `create_new` would clash.
fn check_mode(config: &Config, target: &Target) -> Result<()> {
    let name = &config.datasource_name;
    match (config.mode, &target.before) {
        (Mode::Append, None) => Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "cannot append: there is no data source \"{name}\" in project \"{}\"; publish it first with mode \"create_new\", or check datasource_name and project",
                config.project.display()
            ),
        )),
        (Mode::CreateNew, Some(d)) => Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "data source \"{name}\" already exists in project \"{}\" (id {}); use mode \"overwrite\" to replace it, \"append\" to add rows, or another datasource_name",
                config.project.display(),
                d.id
            ),
        )),
        _ => Ok(()),
    }
}

/// Resolves the target project to `(id, name)`, walking a path level by level.
async fn resolve_project(api: &Api, target: &ProjectTarget) -> Result<(String, Option<String>)> {
    let names = match target {
        ProjectTarget::Id(id) => return Ok((id.clone(), None)),
        ProjectTarget::Path(names) => names,
    };
    let mut parent: Option<String> = None;
    for (depth, name) in names.iter().enumerate() {
        let mut terms = Vec::with_capacity(2);
        match &parent {
            None => terms.push(Filter {
                field: "topLevelProject",
                value: "true",
            }),
            Some(id) => terms.push(Filter {
                field: "parentProjectId",
                value: id,
            }),
        }
        // Names with ',' or '&' cannot be expressed in a filter: list the level and match here.
        if Filter::is_expressible(name) {
            terms.push(Filter {
                field: "name",
                value: name,
            });
        }
        let found = api
            .projects(&terms)
            .await?
            .into_iter()
            .find(|p| &p.name == name && p.parent_id == parent);
        match found {
            Some(p) => parent = Some(p.id),
            None => {
                let place = if depth == 0 {
                    "at the top level".to_owned()
                } else {
                    format!("inside \"{}\"", names[..depth].join("/"))
                };
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "project \"{}\" not found: there is no project named \"{name}\" {place} on this site; check the spelling (names are case-sensitive) and that the user can see it",
                        names.join("/")
                    ),
                ));
            }
        }
    }
    Ok((parent.expect("paths are non-empty"), names.last().cloned()))
}

/// Finds a data source by exact name within a project.
async fn find_datasource(
    api: &Api,
    name: &str,
    project_id: &str,
    project_name: Option<&str>,
) -> Result<Option<Datasource>> {
    let mut terms = Vec::with_capacity(2);
    if Filter::is_expressible(name) {
        terms.push(Filter {
            field: "name",
            value: name,
        });
    }
    if let Some(p) = project_name.filter(|p| Filter::is_expressible(p)) {
        terms.push(Filter {
            field: "projectName",
            value: p,
        });
    }
    Ok(api
        .datasources(&terms)
        .await?
        .into_iter()
        .find(|d| d.name == name && d.project_id.as_deref().is_none_or(|p| p == project_id)))
}
