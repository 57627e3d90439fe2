//! The control API (`/_emulator/...`, JSON) that tests and the CLI use to inspect the emulator
//! and steer it: data sources, the request log, token expiry, faults, projects.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Request;
use serde::Deserialize;

use super::faults::check_fault;
use super::response::{json_response, Resp};
use crate::state::Shared;
use crate::util::Query;

/// Body of `POST /_emulator/expire-tokens` (empty: expire every session now).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expire {
    #[serde(default)]
    after_requests: Option<u64>,
    #[serde(default)]
    at_unix_ms: Option<u64>,
}

/// Body of `POST /_emulator/sign-in-elsewhere`.
#[derive(Deserialize)]
struct Elsewhere {
    #[serde(default)]
    site: String,
    pat: String,
}

/// Body of `POST /_emulator/connected-apps`.
#[derive(Deserialize)]
struct AppEnabled {
    #[serde(default)]
    site: String,
    client_id: String,
    enabled: bool,
}

/// Body of `POST /_emulator/projects`.
#[derive(Deserialize)]
struct NewProject {
    #[serde(default)]
    site: String,
    #[serde(default)]
    parent_id: Option<String>,
    name: String,
}

fn ok() -> Resp {
    json_response(200, serde_json::json!({"ok": true}))
}

fn bad(msg: String) -> Resp {
    json_response(400, serde_json::json!({"error": msg}))
}

/// Handle a `/_emulator/...` request.
pub(super) async fn handle(sh: Arc<Shared>, req: Request<Incoming>) -> Resp {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    match (method.as_str(), path.as_str()) {
        ("GET", "/_emulator/datasources") => {
            // Reading extracts blocks while hyperd works.
            let listed = tokio::task::spawn_blocking(move || sh.datasources()).await;
            json_response(
                200,
                serde_json::to_value(listed.unwrap_or_default()).unwrap_or_default(),
            )
        }
        ("GET", "/_emulator/requests") => {
            json_response(200, serde_json::to_value(sh.requests()).unwrap_or_default())
        }
        ("POST", "/_emulator/expire-tokens") => expire_tokens(&sh, &body),
        ("POST", "/_emulator/sign-in-elsewhere") => {
            match serde_json::from_slice::<Elsewhere>(&body) {
                Ok(e) => {
                    if sh.sign_in_elsewhere(&e.site, &e.pat) {
                        ok()
                    } else {
                        json_response(
                            404,
                            serde_json::json!({"error": format!("no PAT {:?} on site {:?}", e.pat, e.site)}),
                        )
                    }
                }
                Err(e) => bad(e.to_string()),
            }
        }
        ("POST", "/_emulator/connected-apps") => {
            match serde_json::from_slice::<AppEnabled>(&body) {
                Ok(a) => {
                    if sh.set_connected_app_enabled(&a.site, &a.client_id, a.enabled) {
                        ok()
                    } else {
                        json_response(
                            404,
                            serde_json::json!({"error": format!("no connected app {:?} on site {:?}", a.client_id, a.site)}),
                        )
                    }
                }
                Err(e) => bad(e.to_string()),
            }
        }
        ("GET", "/_emulator/upload-sessions") => json_response(
            200,
            serde_json::to_value(sh.upload_sessions()).unwrap_or_default(),
        ),
        ("POST", "/_emulator/token-lifetime") => token_lifetime(&sh, &body),
        ("POST", "/_emulator/faults") => match serde_json::from_slice::<crate::Fault>(&body) {
            Ok(f) => match check_fault(&f) {
                Ok(()) => {
                    sh.inject_fault(f);
                    ok()
                }
                Err(e) => bad(e),
            },
            Err(e) => bad(e.to_string()),
        },
        ("DELETE", "/_emulator/faults") => {
            sh.clear_faults();
            ok()
        }
        ("POST", "/_emulator/projects") => match serde_json::from_slice::<NewProject>(&body) {
            Ok(p) => match sh.add_project(&p.site, p.parent_id.as_deref(), &p.name) {
                Ok(id) => json_response(200, serde_json::json!({"id": id})),
                Err(e) => json_response(404, serde_json::json!({"error": e})),
            },
            Err(e) => bad(e.to_string()),
        },
        ("GET", "/_emulator/project-id") => {
            let q = Query::parse(&query);
            let site = q.get("site").unwrap_or("").to_owned();
            let p = q.get("path").unwrap_or("").to_owned();
            let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
            json_response(200, serde_json::json!({"id": sh.project_id(&site, &parts)}))
        }
        _ => json_response(
            404,
            serde_json::json!({"error": format!("unknown control endpoint {method} {path}")}),
        ),
    }
}

/// `POST /_emulator/expire-tokens`: now, after N requests, or at a time.
fn expire_tokens(sh: &Shared, body: &[u8]) -> Resp {
    let e = if body.iter().all(u8::is_ascii_whitespace) {
        Expire {
            after_requests: None,
            at_unix_ms: None,
        }
    } else {
        match serde_json::from_slice::<Expire>(body) {
            Ok(e) => e,
            Err(e) => return bad(e.to_string()),
        }
    };
    match (e.after_requests, e.at_unix_ms) {
        (None, None) => sh.expire_all_tokens(),
        (Some(_), Some(_)) => {
            return bad("give either after_requests or at_unix_ms, not both".into())
        }
        (Some(n), None) => sh.expire_tokens_after_requests(n),
        (None, Some(ms)) => sh.expire_tokens_at(std::time::UNIX_EPOCH + Duration::from_millis(ms)),
    }
    ok()
}

/// `POST /_emulator/token-lifetime`: `{"seconds": N}`.
fn token_lifetime(sh: &Shared, body: &[u8]) -> Resp {
    let v: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return bad(e.to_string()),
    };
    match v.get("seconds").and_then(|s| s.as_f64()) {
        Some(s) if s >= 0.0 && s.is_finite() => {
            sh.set_token_ttl(Duration::from_secs_f64(s));
            ok()
        }
        _ => bad("expected {\"seconds\": N}".into()),
    }
}
