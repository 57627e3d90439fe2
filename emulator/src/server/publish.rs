//! `POST sites/{site}/datasources`: publish a data source from the body's file or from an
//! upload session, applied at once or (`asJob=true`) as an asynchronous job.
//!
//! The steps, in order: read the query's mode, read the body, parse the `request_payload`,
//! resolve the project, hold the upload session, check the file, then commit (consume the
//! session; apply or queue). A refusal at any step removes the file stored from the body.

use std::sync::Arc;

use sha2::Digest;
use tokio::sync::MutexGuard;

use super::body::{drain, mp_error};
use super::context::{Ctx, SCOPE_DATASOURCES_CREATE};
use super::datasources::datasource_xml;
use super::response::Reply;
use crate::multipart::{self, Body, Sink};
use crate::state::{
    ApiError, Auth, Mode, PendingPublish, Shared, Staged, UploadData, UploadSession,
};
use crate::util::{hex, iso8601, random_hex32, Query};
use crate::xml::{self, attrs, PublishPayload};
use crate::Config;

/// The file types that can be published.
const TYPES: &[&str] = &["hyper", "tds", "tdsx", "tde"];

pub(super) async fn publish(ctx: &mut Ctx, site: &str) -> Result<Reply, ApiError> {
    let auth = ctx.scoped_auth(site, &[SCOPE_DATASOURCES_CREATE])?;
    let q = Query::parse(&ctx.query);
    let mode = publish_mode(&q)?;
    let as_job = q.flag("asJob");
    let boundary =
        multipart::boundary(ctx.content_type().as_deref()).ok_or_else(ApiError::malformed)?;
    let body = ctx.body.take().ok_or_else(ApiError::malformed)?;
    let sh = ctx.sh.clone();
    let read = match q.get("uploadSessionId").filter(|s| !s.is_empty()) {
        Some(sid) => read_for_session(&sh, &auth, &q, body, boundary, sid).await?,
        None => read_with_file(&sh, body, boundary).await?,
    };
    let payload =
        parse_payload(&sh.cfg, read.payload.as_deref()).inspect_err(|_| read.discard())?;
    let project_id = resolve_project(&sh, site, &payload).inspect_err(|_| read.discard())?;

    // Hold the upload session (if any) while validating, so it is consumed only on success.
    let mut guard = hold_session(&read.session, &read.file_label).await?;
    let staged = match (&guard, read.staged) {
        (Some(g), _) => session_file(&sh.cfg, g),
        (None, Some(s)) => s,
        (None, None) => return Err(ApiError::malformed()),
    };
    let is_session = guard.is_some();
    let label = if is_session {
        format!("{}.{}", payload.name, read.file_type)
    } else {
        read.file_label.clone()
    };
    if let Err(e) = check_file(&read.file_type, mode, &staged, &label) {
        if !is_session {
            staged.discard();
        }
        return Err(e);
    }
    let pending = PendingPublish {
        site_id: site.to_owned(),
        project_id,
        name: payload.name.clone(),
        description: payload.description.clone(),
        mode,
        file_type: read.file_type.clone(),
        staged,
        owner_id: auth.user_id.clone(),
    };
    let session = guard.as_deref_mut().zip(read.session.as_deref());
    commit(ctx, site, pending, session, as_job)
}

/// Create, overwrite or append, from the `overwrite` and `append` flags.
fn publish_mode(q: &Query) -> Result<Mode, ApiError> {
    let (overwrite, append) = (q.flag("overwrite"), q.flag("append"));
    if overwrite && append {
        return Err(ApiError::bad_request(
            "The 'overwrite' and 'append' parameters cannot both be 'true'.",
        ));
    }
    Ok(if append {
        Mode::Append
    } else if overwrite {
        Mode::Overwrite
    } else {
        Mode::Create
    })
}

/// What the body of a publish brought.
struct PublishBody {
    /// The `request_payload` part.
    payload: Option<String>,
    /// The file stored from the body; `None` when an upload session is committed.
    staged: Option<Staged>,
    file_type: String,
    /// Named in errors: the file's name, or the upload session's id.
    file_label: String,
    session: Option<Arc<UploadSession>>,
}

impl PublishBody {
    /// Remove the file stored from the body (after a refusal).
    fn discard(&self) {
        if let Some(s) = &self.staged {
            s.discard();
        }
    }
}

/// A body with only the payload, committing upload session `sid` of type `datasourceType`.
async fn read_for_session(
    sh: &Shared,
    auth: &Auth,
    q: &Query,
    body: Body,
    boundary: String,
    sid: &str,
) -> Result<PublishBody, ApiError> {
    let file_type = match q.get("datasourceType").map(|t| t.to_ascii_lowercase()) {
        None => {
            drain(body).await;
            return Err(ApiError::bad_request(
                "The 'datasourceType' parameter is required when committing an upload session (uploadSessionId).",
            ));
        }
        Some(t) if TYPES.contains(&t.as_str()) => t,
        Some(t) => {
            drain(body).await;
            return Err(ApiError::bad_request(format!(
                "Invalid datasourceType '{t}'. Use hyper, tds, tdsx or tde."
            )));
        }
    };
    let parsed = multipart::read(
        body,
        boundary,
        "tableau_datasource",
        Sink::Discard,
        sha2::Sha256::new(),
        vec![],
        u64::MAX,
    )
    .await
    .map_err(|e| mp_error(e, ApiError::malformed))?;
    if parsed.file.is_some() {
        return Err(ApiError::bad_request(
            "A 'tableau_datasource' file part must not be sent together with uploadSessionId.",
        ));
    }
    let session = sh
        .lock()
        .upload_for(sid, auth, sh.cfg.bind_upload_sessions_to_auth)?;
    Ok(PublishBody {
        payload: parsed.payload,
        staged: None,
        file_type,
        file_label: sid.to_owned(),
        session: Some(session),
    })
}

/// A single-request publish: the payload and the file, stored under `incoming/`. The file
/// type comes from the file name's extension.
async fn read_with_file(
    sh: &Shared,
    body: Body,
    boundary: String,
) -> Result<PublishBody, ApiError> {
    let cfg = &sh.cfg;
    let path = sh
        .data_dir
        .join("incoming")
        .join(format!("{}.part", random_hex32()));
    let sink = if cfg.discard_data {
        Sink::Discard
    } else {
        Sink::New(path.clone())
    };
    let max = cfg.max_single_request_bytes;
    let parsed = multipart::read(body, boundary, "tableau_datasource", sink, sha2::Sha256::new(), vec![], max)
        .await
        .map_err(|e| {
            mp_error(e, || {
                ApiError::too_large(format!(
                    "The file is larger than the {max}-byte limit for a single-request publish; use a file upload session."
                ))
            })
        })?;
    let file =
        match parsed.file {
            Some(f) => f,
            None => return Err(ApiError::bad_request(
                "The request must contain a 'tableau_datasource' file part or an uploadSessionId.",
            )),
        };
    let staged = Staged {
        path: if cfg.discard_data { None } else { Some(path) },
        size: file.size,
        sha256: if cfg.discard_data {
            String::new()
        } else {
            hex(&file.hasher.finalize())
        },
        head: file.head,
    };
    let fname = file.filename.unwrap_or_default();
    let ext = fname
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if !TYPES.contains(&ext.as_str()) {
        staged.discard();
        return Err(ApiError::publish_problem(&fname));
    }
    Ok(PublishBody {
        payload: parsed.payload,
        staged: Some(staged),
        file_type: ext,
        file_label: fname,
        session: None,
    })
}

/// The `request_payload` part's `<datasource>`.
fn parse_payload(cfg: &Config, payload: Option<&str>) -> Result<PublishPayload, ApiError> {
    if !cfg.accept_apos_entity && payload.is_some_and(xml::has_apos_entity) {
        return Err(ApiError::bad_request(xml::APOS_ENTITY_DETAIL));
    }
    match payload.map(xml::parse_publish_payload) {
        Some(Ok(p)) => Ok(p),
        Some(Err(xml::PayloadError::MissingName)) => Err(ApiError::bad_request(
            "The datasource name is missing from the request.",
        )),
        _ => Err(ApiError::malformed()),
    }
}

/// The payload's project, or the site's `default` project. (That the project exists is one of
/// the publish checks.)
fn resolve_project(sh: &Shared, site: &str, payload: &PublishPayload) -> Result<String, ApiError> {
    let st = sh.lock();
    match &payload.project_id {
        Some(id) => Ok(id.clone()),
        None => match st.default_project(site) {
            Some(p) => Ok(p.id.clone()),
            None => Err(ApiError::new(
                404,
                "404005",
                "Resource Not Found",
                "Project 'default' could not be found.",
            )),
        },
    }
}

/// Lock the upload session being committed, if any; one already consumed is not found.
async fn hold_session<'a>(
    session: &'a Option<Arc<UploadSession>>,
    label: &str,
) -> Result<Option<MutexGuard<'a, UploadData>>, ApiError> {
    let Some(s) = session else {
        return Ok(None);
    };
    let g = s.data.lock().await;
    if g.consumed {
        return Err(ApiError::new(
            404,
            "404000",
            "Resource Not Found",
            format!("Upload session '{label}' could not be found."),
        ));
    }
    Ok(Some(g))
}

/// The file an upload session has gathered.
fn session_file(cfg: &Config, g: &UploadData) -> Staged {
    Staged {
        path: if cfg.discard_data {
            None
        } else {
            Some(g.path.clone())
        },
        size: g.bytes,
        sha256: if cfg.discard_data {
            String::new()
        } else {
            hex(&g.hasher.clone().finalize())
        },
        head: g.head.clone(),
    }
}

/// The file must start like its type, and only extracts (hyper, tde) can be appended to.
fn check_file(file_type: &str, mode: Mode, staged: &Staged, label: &str) -> Result<(), ApiError> {
    if !magic_ok(file_type, &staged.head) {
        return Err(ApiError::publish_problem(label));
    }
    if mode == Mode::Append && !matches!(file_type, "hyper" | "tde") {
        return Err(ApiError::publish_problem(label));
    }
    Ok(())
}

/// Does the file start like a file of this type?
fn magic_ok(file_type: &str, head: &[u8]) -> bool {
    match file_type {
        "hyper" => head.starts_with(b"Hyper"),
        "tdsx" => head.starts_with(&[0x50, 0x4B, 0x03, 0x04]),
        "tde" => head.starts_with(&[0x20, 0x02, 0x01, 0x62]),
        "tds" => {
            let h = head.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(head);
            let start = h
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(h.len());
            let h = &h[start..];
            h.starts_with(b"<?xml") || h.starts_with(b"<datasource")
        }
        _ => false,
    }
}

/// Run the publish checks, consume the upload session (`session`, held), then apply the
/// publish or queue it as a job.
fn commit(
    ctx: &mut Ctx,
    site: &str,
    pending: PendingPublish,
    session: Option<(&mut UploadData, &UploadSession)>,
    as_job: bool,
) -> Result<Reply, ApiError> {
    let sh = ctx.sh.clone();
    let mut st = sh.lock();
    if let Err(e) = st.check_publish(&pending) {
        drop(st);
        if session.is_none() {
            pending.staged.discard();
        }
        return Err(e);
    }
    if let Some((data, s)) = session {
        data.consumed = true;
        st.commit_upload(&s.id);
    }
    if as_job {
        let job = st.add_job(site, pending, sh.cfg.job_duration, ctx.fail_job.take());
        ctx.applied = true;
        let created = iso8601(st.job(&job).expect("just queued").created_at);
        drop(st);
        return Ok(job_accepted(&sh.cfg, &job, &created));
    }
    let id = match st.apply_publish(pending, &sh.data_dir) {
        Ok(id) => id,
        Err(rejected) => {
            drop(st);
            rejected.pending.staged.discard();
            return Err(rejected.error);
        }
    };
    ctx.applied = true;
    let d = st
        .datasources
        .iter()
        .find(|d| d.id == id)
        .expect("just stored");
    Ok(Reply::xml(201, &datasource_xml(&st, d)))
}

/// The answer to an `asJob=true` publish: the new job.
fn job_accepted(cfg: &Config, job: &str, created: &str) -> Reply {
    let status = if (200..=202).contains(&cfg.async_publish_status) {
        cfg.async_publish_status
    } else {
        202
    };
    Reply::xml(
        status,
        &format!(
            "<job{}/>",
            attrs(&[
                ("id", job),
                ("mode", "Asynchronous"),
                ("type", "PublishDatasource"),
                ("progress", "0"),
                ("createdAt", created),
                ("finishCode", "1"),
            ])
        ),
    )
}
