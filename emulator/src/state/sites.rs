//! Sites, their users (with personal access tokens) and their connected apps.

use super::{Shared, State};

/// A site; `content_url` "" is the Default site.
pub(crate) struct Site {
    pub id: String,
    pub content_url: String,
    pub name: String,
}

/// A user of one site.
pub(crate) struct User {
    pub id: String,
    pub site_id: String,
    pub name: String,
    pub password: Option<String>,
    pub site_role: String,
    pub pats: Vec<Pat>,
}

/// A personal access token: its name and secret. It is also the key of the PAT's one live
/// session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Pat {
    pub name: String,
    pub secret: String,
}

impl State {
    pub(crate) fn site_by_content_url(&self, cu: &str) -> Option<&Site> {
        self.sites
            .iter()
            .find(|s| s.content_url.eq_ignore_ascii_case(cu))
    }

    pub(crate) fn site(&self, id: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.id == id)
    }

    pub(crate) fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }
}

impl Shared {
    pub(crate) fn set_connected_app_enabled(
        &self,
        site: &str,
        client_id: &str,
        enabled: bool,
    ) -> bool {
        let mut st = self.lock();
        let Some(site_id) = st.site_by_content_url(site).map(|s| s.id.clone()) else {
            return false;
        };
        match st
            .connected_apps
            .iter_mut()
            .find(|a| a.site_id == site_id && a.client_id == client_id)
        {
            Some(a) => {
                a.enabled = enabled;
                true
            }
            None => false,
        }
    }
}
