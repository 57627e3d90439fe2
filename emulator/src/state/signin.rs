//! Checking credentials: password, PAT and connected-app (JWT) sign-in, switching site, and a
//! sign-in "elsewhere" for tests.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use super::sites::Pat;
use super::{ApiError, Auth, Shared, SignedIn, State, User};
use crate::jwt::ConnectedApp;

/// An accepted JWT, by issuer and `jti`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct JwtId {
    client_id: String,
    jti: String,
}

/// Accepted JWTs → their `exp`, to refuse replays until they expire.
#[derive(Default)]
pub(super) struct JwtReplays(HashMap<JwtId, f64>);

impl State {
    /// Sign in with the credentials of a sign-in request.
    pub(crate) fn sign_in(&mut self, s: &crate::xml::SignIn) -> Result<SignedIn, ApiError> {
        let site_id = self
            .site_by_content_url(&s.site)
            .map(|x| x.id.clone())
            .ok_or_else(ApiError::signin_error)?;
        if s.is_uat {
            // Unified access tokens (Tableau Cloud) are not emulated.
            return Err(ApiError::signin_error());
        }
        if let Some(jwt) = &s.jwt {
            let impersonate = s.impersonate.as_deref().is_some_and(|t| !t.is_empty());
            return self.sign_in_jwt(jwt, &site_id, impersonate);
        }
        let on_site = |u: &&User| u.site_id == site_id;
        let (user_id, pat) = if let (Some(n), Some(sec)) = (&s.pat_name, &s.pat_secret) {
            let u = self
                .users
                .iter()
                .filter(on_site)
                .find(|u| u.pats.iter().any(|p| p.name == *n && p.secret == *sec))
                .ok_or_else(ApiError::signin_error)?;
            let pat = Pat {
                name: n.clone(),
                secret: sec.clone(),
            };
            (u.id.clone(), Some(pat))
        } else if let (Some(n), Some(pw)) = (&s.name, &s.password) {
            let u = self
                .users
                .iter()
                .filter(on_site)
                .find(|u| {
                    u.name.eq_ignore_ascii_case(n) && u.password.as_deref() == Some(pw.as_str())
                })
                .ok_or_else(ApiError::signin_error)?;
            (u.id.clone(), None)
        } else {
            return Err(ApiError::signin_error());
        };
        let user_id = match &s.impersonate {
            Some(target) if !target.is_empty() => {
                let admin = self
                    .user(&user_id)
                    .is_some_and(|u| u.site_role.contains("Administrator"));
                if !admin
                    || !self
                        .users
                        .iter()
                        .any(|u| u.id == *target && u.site_id == site_id)
                {
                    return Err(ApiError::signin_error());
                }
                target.clone()
            }
            _ => user_id,
        };
        Ok(self.new_session(&site_id, &user_id, pat, None))
    }

    /// Connected-app (direct trust) sign-in. Failures are 401001 with `(errorCode=N)`.
    fn sign_in_jwt(
        &mut self,
        jwt: &str,
        site_id: &str,
        impersonate: bool,
    ) -> Result<SignedIn, ApiError> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let apps: Vec<&ConnectedApp> = self
            .connected_apps
            .iter()
            .filter(|a| a.site_id == site_id)
            .collect();
        let v = crate::jwt::verify(jwt, &apps, now).map_err(ApiError::jwt_signin_error)?;
        let login_failed = || ApiError::jwt_signin_error(crate::jwt::LOGIN_FAILED);
        if impersonate {
            // The JWT names the user; `<user id>` is not allowed with it (a choice).
            return Err(login_failed());
        }
        // `sub` is the user name, matched case-sensitively.
        let user_id = self
            .users
            .iter()
            .find(|u| u.site_id == site_id && u.name == v.sub)
            .map(|u| u.id.clone())
            .ok_or_else(login_failed)?;
        let seen = &mut self.jwt_seen.0;
        seen.retain(|_, exp| *exp > now - crate::jwt::SKEW_SECS);
        let key = JwtId {
            client_id: v.client_id.clone(),
            jti: v.jti.clone(),
        };
        if seen.contains_key(&key) {
            return Err(login_failed());
        }
        seen.insert(key, v.exp);
        Ok(self.new_session(site_id, &user_id, None, Some(Arc::new(v.scopes))))
    }

    /// Switch the session's site: a new session for the same user name on the other site.
    pub(crate) fn switch_site(
        &mut self,
        token: &str,
        auth: &Auth,
        content_url: &str,
    ) -> Result<SignedIn, ApiError> {
        let target = self
            .site_by_content_url(content_url)
            .map(|s| s.id.clone())
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "404000",
                    "Resource Not Found",
                    format!("Site '{content_url}' could not be found."),
                )
            })?;
        if target == auth.site_id {
            return Err(ApiError::new(
                403,
                "403070",
                "Forbidden",
                format!("The user is already signed in to site '{content_url}'."),
            ));
        }
        let name = self
            .user(&auth.user_id)
            .map(|u| u.name.clone())
            .unwrap_or_default();
        let user_id = self
            .users
            .iter()
            .find(|u| u.site_id == target && u.name.eq_ignore_ascii_case(&name))
            .map(|u| u.id.clone())
            .ok_or_else(|| {
                ApiError::new(
                    403,
                    "403000",
                    "Forbidden",
                    format!("The user is not a member of site '{content_url}'."),
                )
            })?;
        let pat = self.session_pat(token);
        self.sign_out(token);
        // A JWT session keeps its scopes on the new site (a choice).
        Ok(self.new_session(&target, &user_id, pat, auth.scopes.clone()))
    }
}

impl Shared {
    pub(crate) fn sign_in_elsewhere(&self, site: &str, pat_name: &str) -> bool {
        let mut st = self.lock();
        let Some(site_id) = st.site_by_content_url(site).map(|s| s.id.clone()) else {
            return false;
        };
        let secret = st
            .users
            .iter()
            .filter(|u| u.site_id == site_id)
            .flat_map(|u| u.pats.iter())
            .find(|p| p.name == pat_name)
            .map(|p| p.secret.clone());
        let Some(secret) = secret else {
            return false;
        };
        let creds = crate::xml::SignIn {
            name: None,
            password: None,
            pat_name: Some(pat_name.to_owned()),
            pat_secret: Some(secret),
            site: site.to_owned(),
            ..Default::default()
        };
        st.sign_in(&creds).is_ok()
    }
}
