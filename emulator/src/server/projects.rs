//! `GET sites/{site}/projects`.

use std::cmp::Ordering;

use super::context::Ctx;
use super::listing::{self, Listed};
use super::response::Reply;
use crate::filter::{self, Cond, Kind};
use crate::state::{ApiError, Project, State};
use crate::util::iso8601;
use crate::xml::attrs;

pub(super) fn list(ctx: &mut Ctx, site: &str) -> Result<Reply, ApiError> {
    listing::list::<Project>(ctx, site)
}

impl Listed for Project {
    const TAG: &'static str = "projects";
    const FILTERS: &'static [(&'static str, Kind)] = &[
        ("name", Kind::Text),
        ("parentProjectId", Kind::Id),
        ("topLevelProject", Kind::Bool),
        ("createdAt", Kind::Time),
        ("updatedAt", Kind::Time),
    ];
    const SORTS: &'static [&'static str] = &["name", "createdAt", "updatedAt"];

    fn all(st: &State) -> &[Project] {
        &st.projects
    }

    fn site_id(&self) -> &str {
        &self.site_id
    }

    fn matches(&self, _: &State, c: &Cond) -> bool {
        match c.field.as_str() {
            "name" => filter::matches(c, &self.name),
            "parentProjectId" => filter::matches(c, self.parent_id.as_deref().unwrap_or("")),
            "topLevelProject" => (c.values[0] == "true") == self.parent_id.is_none(),
            "createdAt" => filter::matches(c, &iso8601(self.created_at)),
            "updatedAt" => filter::matches(c, &iso8601(self.updated_at)),
            _ => false,
        }
    }

    fn compare(&self, other: &Project, _: &State, field: &str) -> Ordering {
        match field {
            "name" => self.name.cmp(&other.name),
            "createdAt" => self.created_at.cmp(&other.created_at),
            _ => self.updated_at.cmp(&other.updated_at),
        }
    }

    fn xml(&self, _: &State) -> String {
        let p = self;
        let mut a = vec![
            ("id", p.id.as_str()),
            ("name", p.name.as_str()),
            ("description", p.description.as_str()),
            ("contentPermissions", "ManagedByOwner"),
        ];
        if let Some(pp) = &p.parent_id {
            a.push(("parentProjectId", pp));
        }
        let created = iso8601(p.created_at);
        let updated = iso8601(p.updated_at);
        a.push(("createdAt", &created));
        a.push(("updatedAt", &updated));
        format!(
            "<project{}><owner{}/></project>",
            attrs(&a),
            attrs(&[("id", &p.owner_id)])
        )
    }
}
