//! `GET sites/{site}/jobs/{id}`: an asynchronous publish's progress or outcome.

use std::time::Instant;

use super::context::{Ctx, SCOPE_CONTENT_READ, SCOPE_JOBS_READ};
use super::response::Reply;
use crate::state::{ApiError, Job};
use crate::util::{esc, iso8601};
use crate::xml::attrs;

pub(super) fn get(ctx: &mut Ctx, site: &str, id: &str) -> Result<Reply, ApiError> {
    ctx.scoped_auth(site, &[SCOPE_JOBS_READ, SCOPE_CONTENT_READ])?;
    let st = ctx.sh.lock();
    let j = st.job(id).filter(|j| j.site_id == site).ok_or_else(|| {
        ApiError::new(
            404,
            "404000",
            "Resource Not Found",
            format!("Job '{id}' could not be found."),
        )
    })?;
    Ok(Reply::xml(200, &job_xml(j)))
}

fn job_xml(j: &Job) -> String {
    let created = iso8601(j.created_at);
    match &j.outcome {
        None => {
            let total = j
                .due
                .saturating_duration_since(j.created)
                .as_millis()
                .max(1);
            let done = Instant::now()
                .saturating_duration_since(j.created)
                .as_millis();
            let progress = ((done * 100) / total).min(99).to_string();
            format!(
                "<job{}/>",
                attrs(&[
                    ("id", &j.id),
                    ("mode", "Asynchronous"),
                    ("type", "PublishDatasource"),
                    ("progress", &progress),
                    ("createdAt", &created),
                    ("startedAt", &created),
                    ("finishCode", "1"),
                ])
            )
        }
        Some(o) => {
            let completed = iso8601(o.completed_at);
            let mut child = String::new();
            if let Some(ds) = &o.datasource {
                child.push_str(&format!(
                    "<datasource{}/>",
                    attrs(&[("id", &ds.id), ("name", &ds.name)])
                ));
            }
            if let Some(n) = &o.notes {
                child.push_str(&format!("<notes>{}</notes>", esc(n)));
            }
            format!(
                "<job{}><publishDatasourceJob>{}</publishDatasourceJob></job>",
                attrs(&[
                    ("id", &j.id),
                    ("mode", "Asynchronous"),
                    ("type", "PublishDatasource"),
                    ("progress", "100"),
                    ("createdAt", &created),
                    ("startedAt", &created),
                    ("updatedAt", &completed),
                    ("completedAt", &completed),
                    ("finishCode", &o.finish_code.to_string()),
                ]),
                child
            )
        }
    }
}
