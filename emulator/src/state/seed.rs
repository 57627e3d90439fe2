//! Building the starting `State` from the configured seed.

use std::time::SystemTime;

use super::{jobs, log, sessions, signin, uploads, Project, Site, State, User};
use crate::jwt::ConnectedApp;
use crate::util::new_luid;
use crate::{Config, SeedProject, SeedSite};

impl State {
    /// An empty state, then the sites, users, connected apps and projects of `cfg.seed`.
    pub(super) fn seeded(cfg: &Config) -> State {
        let mut st = State {
            sites: vec![],
            users: vec![],
            projects: vec![],
            connected_apps: vec![],
            jwt_seen: signin::JwtReplays::default(),
            sessions: sessions::Sessions::new(cfg.token_ttl),
            uploads: uploads::Uploads::new(),
            datasources: vec![],
            jobs: jobs::Jobs::default(),
            faults: vec![],
            log: log::RequestLog::new(),
        };
        let now = SystemTime::now();
        for s in &cfg.seed.sites {
            st.seed_site(s, now);
        }
        st
    }

    fn seed_site(&mut self, s: &SeedSite, now: SystemTime) {
        let site_id = new_luid();
        self.sites.push(Site {
            id: site_id.clone(),
            content_url: s.content_url.clone(),
            name: s.name.clone().unwrap_or_else(|| {
                if s.content_url.is_empty() {
                    "Default".to_owned()
                } else {
                    s.content_url.clone()
                }
            }),
        });
        let mut owner = None;
        for u in &s.users {
            let id = new_luid();
            owner.get_or_insert_with(|| id.clone());
            self.users.push(User {
                id,
                site_id: site_id.clone(),
                name: u.name.clone(),
                password: u.password.clone(),
                site_role: u.site_role.clone(),
                pats: u
                    .pats
                    .iter()
                    .map(|p| super::sites::Pat {
                        name: p.name.clone(),
                        secret: p.secret.clone(),
                    })
                    .collect(),
            });
        }
        for a in &s.connected_apps {
            match self
                .connected_apps
                .iter_mut()
                .find(|x| x.site_id == site_id && x.client_id == a.client_id)
            {
                Some(x) => {
                    x.enabled &= a.enabled;
                    x.secrets
                        .push((a.secret_id.clone(), a.secret_value.clone()));
                }
                None => self.connected_apps.push(ConnectedApp {
                    site_id: site_id.clone(),
                    client_id: a.client_id.clone(),
                    enabled: a.enabled,
                    secrets: vec![(a.secret_id.clone(), a.secret_value.clone())],
                }),
            }
        }
        let owner = owner.unwrap_or_else(new_luid);
        for p in &s.projects {
            self.seed_project(&site_id, &owner, None, p, now);
        }
    }

    /// Add a seed project and (depth first) its children.
    fn seed_project(
        &mut self,
        site: &str,
        owner: &str,
        parent: Option<&str>,
        p: &SeedProject,
        now: SystemTime,
    ) {
        let id = new_luid();
        self.projects.push(Project {
            id: id.clone(),
            site_id: site.to_owned(),
            name: p.name.clone(),
            description: p.description.clone().unwrap_or_default(),
            parent_id: parent.map(str::to_owned),
            owner_id: owner.to_owned(),
            created_at: now,
            updated_at: now,
        });
        for c in &p.children {
            self.seed_project(site, owner, Some(&id), c, now);
        }
    }
}
