//! The finalize state machine: negotiate version → sign in → resolve project → check the target
//! → upload (one request, or chunks) → publish → wait for the job → sign out.

use std::time::Duration;

use quick_xml::escape::escape;
use serde::Serialize;

use crate::client::api::{Filter, PublishParams};
use crate::client::multipart::FilePart;
use crate::client::xml::{Datasource, Published};
use crate::client::{http::Http, Api};
use crate::config::{AsJob, Config, Mode, ProjectTarget};
use crate::error::{Error, ErrorKind, Result};
use crate::filetype::FileType;
use crate::spool::Sealed;

/// Files of this size or more are uploaded in chunks (Tableau's single-request limit is 64 MB;
/// its own client switches at 64 MiB).
pub(crate) const SINGLE_REQUEST_LIMIT: u64 = 64 * 1024 * 1024;
/// Tableau's documented cap on blocks per uploaded file.
const MAX_BLOCKS: u64 = 1000;

/// What a successful publish reports (serialised by `tp_result_json`).
#[derive(Debug, Clone, Serialize)]
pub struct PublishResult {
    /// Data source LUID (null only if an asynchronous publish finished but the server's search
    /// index did not show the data source yet).
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
    /// Append requests sent.
    pub chunks: u64,
    /// The asynchronous job's LUID, if published as a job.
    pub job_id: Option<String>,
    /// REST API version used.
    pub api_version: String,
    /// Sign-ins made.
    pub sign_ins: u64,
    /// Upload sessions initiated.
    pub upload_sessions: u64,
    /// HTTP requests made, sign-out included.
    pub http_requests: u64,
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::CreateNew => "create_new",
        Mode::Overwrite => "overwrite",
        Mode::Append => "append",
    }
}

/// Runs the whole publish. Signs out afterwards whether or not publishing worked.
pub async fn run(config: &Config, sealed: &Sealed, file_type: FileType) -> Result<PublishResult> {
    let http = Http::new(&config.server_url, config.request_timeout)?;
    let mut api = Api::new(http);
    match &config.api_version {
        Some(v) => api.set_version(v),
        None => {
            api.negotiate_version().await?;
        }
    }
    api.sign_in(&config.site, &config.auth).await?;
    let outcome = publish_signed_in(&mut api, config, sealed, file_type).await;
    // Sign-out failing must not turn a publish that worked into a failure.
    let _ = api.sign_out().await;
    let mut result = outcome?;
    let counters = api.counters();
    result.sign_ins = counters.sign_ins;
    result.upload_sessions = counters.upload_sessions;
    result.http_requests = api.http_requests();
    Ok(result)
}

async fn publish_signed_in(
    api: &mut Api,
    config: &Config,
    sealed: &Sealed,
    file_type: FileType,
) -> Result<PublishResult> {
    let (project_id, project_name) = resolve_project(api, &config.project).await?;
    let chunked = sealed.len >= SINGLE_REQUEST_LIMIT;
    let as_job = match config.as_job {
        AsJob::Auto => chunked,
        AsJob::Always => true,
        AsJob::Never => false,
    };
    let name = &config.datasource_name;

    // Check the target before spending hours uploading: append needs the data source, and
    // create_new must not find one. (Small single requests let the server decide for create_new.)
    if config.mode == Mode::Append || (config.mode == Mode::CreateNew && chunked) {
        let existing = find_datasource(api, name, &project_id, project_name.as_deref()).await?;
        match (config.mode, existing) {
            (Mode::Append, None) => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "cannot append: there is no data source \"{name}\" in project \"{}\"; publish it first with mode \"create_new\", or check datasource_name and project",
                        config.project.display()
                    ),
                ))
            }
            (Mode::CreateNew, Some(d)) => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "data source \"{name}\" already exists in project \"{}\" (id {}); use mode \"overwrite\" to replace it, \"append\" to add rows, or another datasource_name",
                        config.project.display(),
                        d.id
                    ),
                ))
            }
            _ => {}
        }
    }

    let mut payload = format!("<tsRequest><datasource name=\"{}\"", escape(name.as_str()));
    if let Some(d) = &config.description {
        payload.push_str(&format!(" description=\"{}\"", escape(d.as_str())));
    }
    payload.push_str(&format!(
        "><project id=\"{}\"/></datasource></tsRequest>",
        escape(project_id.as_str())
    ));
    let mut params = PublishParams {
        overwrite: config.mode == Mode::Overwrite,
        append: config.mode == Mode::Append,
        as_job,
        upload_session_id: None,
        datasource_type: file_type.as_str(),
    };

    let mut chunks = 0;
    let published = if chunked {
        let session = api.initiate_upload().await?;
        let chunk = config
            .chunk_size_bytes
            .max(sealed.len.div_ceil(MAX_BLOCKS))
            .min(crate::config::MAX_CHUNK_BYTES);
        let mut offset = 0;
        while offset < sealed.len {
            let len = chunk.min(sealed.len - offset);
            api.append(&session, &sealed.path, offset, len).await?;
            offset += len;
            chunks += 1;
        }
        params.upload_session_id = Some(&session);
        api.publish_datasource(&params, &payload, None).await?
    } else {
        let filename = format!("{}.{}", ascii_file_stem(name), file_type.as_str());
        let file = FilePart {
            name: "tableau_datasource",
            filename: &filename,
            path: &sealed.path,
            offset: 0,
            len: sealed.len,
        };
        api.publish_datasource(&params, &payload, Some(file)).await?
    };

    let (datasource, job_id) = match published {
        Published::Datasource(d) => (Some(d), None),
        Published::Job(job) => {
            let done = api
                .wait_for_job(
                    &job.id,
                    Duration::from_millis(500),
                    Duration::from_secs(30),
                    config.job_timeout,
                )
                .await?;
            match done.finish_code {
                Some(0) | Some(3) => {}
                Some(2) => {
                    return Err(Error::new(
                        ErrorKind::Cancelled,
                        format!("publish job {} was cancelled on the server", job.id),
                    ))
                }
                code => {
                    let notes = if done.notes.is_empty() {
                        "no notes".to_owned()
                    } else {
                        done.notes.join("; ")
                    };
                    return Err(Error::new(
                        ErrorKind::Server,
                        format!(
                            "publish job {} failed on the server (finishCode {}): {notes}; check that the file is a valid {} and, for append, that its schema matches",
                            job.id,
                            code.map_or("missing".to_owned(), |c| c.to_string()),
                            file_type.as_str()
                        ),
                    ))
                }
            }
            let d = find_datasource(api, name, &project_id, project_name.as_deref()).await?;
            (d, Some(job.id))
        }
    };

    Ok(PublishResult {
        datasource_id: datasource.as_ref().map(|d| d.id.clone()),
        datasource_name: datasource
            .as_ref()
            .map_or_else(|| name.clone(), |d| d.name.clone()),
        content_url: datasource.and_then(|d| d.content_url),
        project_id,
        site_id: api.site_id().unwrap_or_default().to_owned(),
        bytes: sealed.len,
        sha256: sealed.sha256.clone(),
        file_type,
        mode: mode_name(config.mode),
        chunked,
        chunks,
        job_id,
        api_version: api.version().to_owned(),
        sign_ins: 0,
        upload_sessions: 0,
        http_requests: 0,
    })
}

/// A filename Tableau will accept: the name's ASCII letters, digits, `-` and `_`.
fn ascii_file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    if stem.trim_matches('_').is_empty() {
        "datasource".to_owned()
    } else {
        stem
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
            terms.push(Filter { field: "name", value: name });
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
        terms.push(Filter { field: "name", value: name });
    }
    if let Some(p) = project_name.filter(|p| Filter::is_expressible(p)) {
        terms.push(Filter {
            field: "projectName",
            value: p,
        });
    }
    Ok(api.datasources(&terms).await?.into_iter().find(|d| {
        d.name == name && d.project_id.as_deref().is_none_or(|p| p == project_id)
    }))
}
