//! Routing: the API version check, then path and method → handler.

use super::context::Ctx;
use super::response::Reply;
use super::{auth, datasources, info, jobs, projects, publish, uploads};
use crate::state::ApiError;
use crate::util::{parse_version, percent_decode};

fn allow(method: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&method) {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed(method))
    }
}

/// Handle a REST request (`/api/X.Y/...`).
pub(super) async fn route(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let path = ctx.path.clone();
    let rest = path.strip_prefix("/api").unwrap_or(&path);
    let unknown = || ApiError::unknown_resource(rest);
    let inner = match path.strip_prefix("/api/") {
        Some(r) => r,
        None => return Err(unknown()),
    };
    let (ver, tail) = inner.split_once('/').unwrap_or((inner, ""));
    let v = parse_version(ver).ok_or_else(unknown)?;
    let max = parse_version(&ctx.sh.cfg.api_version).unwrap_or((3, 25));
    if v > max {
        return Err(unknown());
    }
    let segs: Vec<String> = tail
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = ctx.method.clone();
    let m = m.as_str();
    match segs.as_slice() {
        ["serverinfo"] | ["serverInfo"] => {
            if v < (2, 4) {
                return Err(unknown());
            }
            allow(m, &["GET"])?;
            Ok(info::server_info(ctx))
        }
        ["auth", "signin"] => {
            allow(m, &["POST"])?;
            auth::sign_in(ctx).await
        }
        ["auth", "signout"] => {
            allow(m, &["POST"])?;
            auth::sign_out(ctx)
        }
        ["auth", "switchSite"] => {
            allow(m, &["POST"])?;
            auth::switch_site(ctx).await
        }
        ["sessions", "current"] => {
            allow(m, &["GET"])?;
            auth::current_session(ctx)
        }
        ["sites", site, "projects"] => {
            allow(m, &["GET"])?;
            projects::list(ctx, site)
        }
        ["sites", _, "projects", _] => Err(ApiError::method_not_allowed(m)),
        ["sites", site, "fileUploads"] => {
            allow(m, &["POST"])?;
            uploads::initiate(ctx, site)
        }
        ["sites", site, "fileUploads", id] => {
            allow(m, &["PUT"])?;
            uploads::append(ctx, site, id).await
        }
        ["sites", site, "datasources"] => {
            allow(m, &["GET", "POST"])?;
            if m == "GET" {
                datasources::list(ctx, site)
            } else {
                publish::publish(ctx, site).await
            }
        }
        ["sites", site, "datasources", id] => {
            allow(m, &["GET"])?;
            datasources::get(ctx, site, id)
        }
        ["sites", site, "jobs", id] => {
            allow(m, &["GET"])?;
            jobs::get(ctx, site, id)
        }
        _ => Err(unknown()),
    }
}
