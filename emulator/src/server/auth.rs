//! Authentication endpoints: sign in, sign out, switch site, current session.

use std::time::Duration;

use super::context::Ctx;
use super::response::Reply;
use crate::state::{ApiError, SignedIn};
use crate::xml::{self, attrs};

/// `H:MM:SS`, as in `estimatedTimeToExpiration`.
fn ttl_text(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

/// The `<credentials>` of a new session (JSON when asked for).
fn credentials_reply(ctx: &Ctx, s: &SignedIn) -> Reply {
    let content_url = ctx
        .sh
        .lock()
        .site(&s.site_id)
        .map(|s| s.content_url.clone())
        .unwrap_or_default();
    let (token, site_id, user_id) = (&s.token, &s.site_id, &s.user_id);
    let ttl = ttl_text(ctx.sh.cfg.token_ttl);
    if ctx.want_json {
        return Reply::json(
            200,
            serde_json::json!({"credentials": {"site": {"id": site_id, "contentUrl": content_url}, "user": {"id": user_id}, "token": token, "estimatedTimeToExpiration": ttl}}),
        );
    }
    Reply::xml(
        200,
        &format!(
            "<credentials{}><site{}/><user{}/></credentials>",
            attrs(&[("token", token), ("estimatedTimeToExpiration", &ttl)]),
            attrs(&[("id", site_id), ("contentUrl", &content_url)]),
            attrs(&[("id", user_id)])
        ),
    )
}

/// `POST auth/signin` (XML or JSON body).
pub(super) async fn sign_in(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let text = ctx.read_text().await?;
    let is_json = ctx.content_type().is_some_and(|c| c.contains("json"));
    if !is_json && !ctx.sh.cfg.accept_apos_entity && xml::has_apos_entity(&text) {
        return Err(ApiError::bad_request(xml::APOS_ENTITY_DETAIL));
    }
    let creds = if is_json {
        xml::parse_signin_json(&text)
    } else {
        xml::parse_signin_xml(&text)
    }
    .ok_or_else(ApiError::malformed)?;
    let signed_in = ctx.sh.lock().sign_in(&creds)?;
    ctx.auth_serial = Some(signed_in.serial);
    ctx.applied = true;
    Ok(credentials_reply(ctx, &signed_in))
}

/// `POST auth/signout`.
pub(super) fn sign_out(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let token = ctx.token().unwrap_or_default();
    ctx.auth()?;
    ctx.sh.lock().sign_out(&token);
    ctx.applied = true;
    Ok(Reply::no_content())
}

/// `POST auth/switchSite`: a new session on the other site; the old one ends.
pub(super) async fn switch_site(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let auth = ctx.auth()?;
    let token = ctx.token().unwrap_or_default();
    let text = ctx.read_text().await?;
    let cu = xml::parse_switch_site(&text).ok_or_else(ApiError::malformed)?;
    let signed_in = ctx.sh.lock().switch_site(&token, &auth, &cu)?;
    ctx.auth_serial = Some(signed_in.serial);
    ctx.applied = true;
    Ok(credentials_reply(ctx, &signed_in))
}

/// `GET sessions/current`.
pub(super) fn current_session(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let auth = ctx.auth()?;
    let st = ctx.sh.lock();
    let site = st
        .site(&auth.site_id)
        .ok_or_else(ApiError::invalid_credentials)?;
    let user = st
        .user(&auth.user_id)
        .ok_or_else(ApiError::invalid_credentials)?;
    Ok(Reply::xml(
        200,
        &format!(
            "<session><site{}/><user{}/></session>",
            attrs(&[
                ("id", &site.id),
                ("name", &site.name),
                ("contentUrl", &site.content_url)
            ]),
            attrs(&[
                ("id", &user.id),
                ("name", &user.name),
                ("siteRole", &user.site_role)
            ])
        ),
    ))
}
