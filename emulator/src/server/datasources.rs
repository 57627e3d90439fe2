//! Data sources: `GET sites/{site}/datasources` (list), `GET .../datasources/{id}`, and the XML
//! both (and a synchronous publish) answer with. Publishing itself is in `publish.rs`.

use std::cmp::Ordering;

use super::context::{Ctx, SCOPE_CONTENT_READ};
use super::listing::{self, Listed};
use super::response::Reply;
use crate::filter::{self, Cond, Kind};
use crate::state::{ApiError, Datasource, State};
use crate::util::iso8601;
use crate::xml::attrs;

pub(super) fn list(ctx: &mut Ctx, site: &str) -> Result<Reply, ApiError> {
    listing::list::<Datasource>(ctx, site)
}

pub(super) fn get(ctx: &mut Ctx, site: &str, id: &str) -> Result<Reply, ApiError> {
    ctx.scoped_auth(site, &[SCOPE_CONTENT_READ])?;
    let st = ctx.sh.lock();
    let d = st
        .datasources
        .iter()
        .find(|d| d.site_id == site && d.id == id)
        .ok_or_else(|| {
            ApiError::new(
                404,
                "404000",
                "Resource Not Found",
                format!("Datasource '{id}' could not be found."),
            )
        })?;
    Ok(Reply::xml(200, &datasource_xml(&st, d)))
}

/// The `type` attribute Tableau gives a file type.
fn ds_type_attr(file_type: &str) -> &str {
    match file_type {
        "tde" => "dataengine",
        other => other,
    }
}

fn project_name(st: &State, d: &Datasource) -> String {
    st.project(&d.site_id, &d.project_id)
        .map(|p| p.name.clone())
        .unwrap_or_default()
}

/// A `<datasource>` element with its project and owner.
pub(super) fn datasource_xml(st: &State, d: &Datasource) -> String {
    let created = iso8601(d.created_at);
    let updated = iso8601(d.updated_at);
    let extract = if matches!(d.file_type.as_str(), "hyper" | "tde") {
        "true"
    } else {
        "false"
    };
    let project_name = project_name(st, d);
    format!(
        "<datasource{}><project{}/><owner{}/><tags/></datasource>",
        attrs(&[
            ("id", &d.id),
            ("name", &d.name),
            ("contentUrl", &d.content_url),
            ("type", ds_type_attr(&d.file_type)),
            ("description", &d.description),
            ("createdAt", &created),
            ("updatedAt", &updated),
            ("encryptExtracts", "false"),
            ("hasExtracts", extract),
            ("useRemoteQueryAgent", "false"),
        ]),
        attrs(&[("id", &d.project_id), ("name", &project_name)]),
        attrs(&[("id", &d.owner_id)])
    )
}

impl Listed for Datasource {
    const TAG: &'static str = "datasources";
    const FILTERS: &'static [(&'static str, Kind)] = &[
        ("name", Kind::Text),
        ("projectName", Kind::Text),
        ("contentUrl", Kind::Text),
        ("type", Kind::Text),
        ("createdAt", Kind::Time),
        ("updatedAt", Kind::Time),
    ];
    const SORTS: &'static [&'static str] = &["name", "createdAt", "updatedAt", "projectName"];

    fn all(st: &State) -> &[Datasource] {
        &st.datasources
    }

    fn site_id(&self) -> &str {
        &self.site_id
    }

    fn matches(&self, st: &State, c: &Cond) -> bool {
        let d = self;
        match c.field.as_str() {
            "name" => filter::matches(c, &d.name),
            "projectName" => filter::matches(c, &project_name(st, d)),
            "contentUrl" => filter::matches(c, &d.content_url),
            "type" => {
                filter::matches(c, ds_type_attr(&d.file_type)) || filter::matches(c, &d.file_type)
            }
            "createdAt" => filter::matches(c, &iso8601(d.created_at)),
            "updatedAt" => filter::matches(c, &iso8601(d.updated_at)),
            _ => false,
        }
    }

    fn compare(&self, other: &Datasource, st: &State, field: &str) -> Ordering {
        match field {
            "name" => self.name.cmp(&other.name),
            "projectName" => project_name(st, self).cmp(&project_name(st, other)),
            "createdAt" => self.created_at.cmp(&other.created_at),
            _ => self.updated_at.cmp(&other.updated_at),
        }
    }

    fn xml(&self, st: &State) -> String {
        datasource_xml(st, self)
    }
}
