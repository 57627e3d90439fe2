//! Projects: lookups, and adding or finding them through the control API.

use std::time::SystemTime;

use super::{Shared, State};
use crate::util::new_luid;

/// A project of one site; `parent_id` is `None` at the top level.
#[derive(Clone)]
pub(crate) struct Project {
    pub id: String,
    pub site_id: String,
    pub name: String,
    pub description: String,
    pub parent_id: Option<String>,
    pub owner_id: String,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

impl State {
    pub(crate) fn project(&self, site_id: &str, id: &str) -> Option<&Project> {
        self.projects
            .iter()
            .find(|p| p.site_id == site_id && p.id == id)
    }

    pub(crate) fn default_project(&self, site_id: &str) -> Option<&Project> {
        self.projects
            .iter()
            .find(|p| p.site_id == site_id && p.parent_id.is_none() && p.name == "default")
    }
}

impl Shared {
    pub(crate) fn add_project(
        &self,
        site: &str,
        parent: Option<&str>,
        name: &str,
    ) -> Result<String, String> {
        let mut st = self.lock();
        let site_id = st
            .site_by_content_url(site)
            .map(|s| s.id.clone())
            .ok_or_else(|| format!("unknown site {site:?}"))?;
        if let Some(p) = parent {
            if !st
                .projects
                .iter()
                .any(|x| x.id == p && x.site_id == site_id)
            {
                return Err(format!("unknown parent project {p:?} on site {site:?}"));
            }
        }
        let owner = st
            .users
            .iter()
            .find(|u| u.site_id == site_id)
            .map(|u| u.id.clone())
            .unwrap_or_else(new_luid);
        let id = new_luid();
        let now = SystemTime::now();
        st.projects.push(Project {
            id: id.clone(),
            site_id,
            name: name.to_owned(),
            description: String::new(),
            parent_id: parent.map(str::to_owned),
            owner_id: owner,
            created_at: now,
            updated_at: now,
        });
        Ok(id)
    }

    pub(crate) fn project_id(&self, site: &str, path: &[&str]) -> Option<String> {
        let st = self.lock();
        let site_id = st.site_by_content_url(site)?.id.clone();
        let mut parent: Option<String> = None;
        for name in path {
            let p = st
                .projects
                .iter()
                .find(|p| p.site_id == site_id && p.parent_id == parent && p.name == *name)?;
            parent = Some(p.id.clone());
        }
        parent
    }
}
