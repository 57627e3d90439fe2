//! Killed sessions, token-expiry schedules, mid-body and mid-response resets, 429 variants, the
//! `applied` flag of the request log and the upload-session list.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use tableau_emulator::{Config, Emulator, Fault, FaultAction, LoggedRequest, UploadSessionInfo};

const MIB: usize = 1024 * 1024;

fn logged(emu: &Emulator, fault: &str) -> LoggedRequest {
    emu.requests()
        .into_iter()
        .find(|r| r.fault.as_deref() == Some(fault))
        .unwrap_or_else(|| panic!("no request with fault {fault}"))
}

/// A raw HTTP/1.1 GET; returns every byte received until the server closes the connection.
async fn raw_get(base: &str, url: &str, token: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.strip_prefix("http://").unwrap();
    let path = url.strip_prefix(base).unwrap();
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-Tableau-Auth: {token}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), sock.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .unwrap();
    out
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_session_and_sign_in_elsewhere() {
    let emu = start(Config::default());
    let url = emu.url();
    let s = signin(&url, "").await;
    let p = signin_password(&url, "").await;
    assert_eq!(s.projects("").await.0, 200);

    // KillSession: this request and every later use of the token get 401002.
    emu.inject_fault(fault("GET", "/projects", FaultAction::KillSession));
    let (st, code, body) = s.projects("").await;
    assert_eq!((st, code.as_deref()), (401, Some("401002")), "{body}");
    assert!(body.contains("Invalid authentication credentials were provided."));
    let (st, code, _) = s.current().await;
    assert_eq!((st, code.as_deref()), (401, Some("401002")));
    assert_eq!(s.projects("").await.1.as_deref(), Some("401002"));
    let entry = logged(&emu, "kill_session");
    assert_eq!(
        (entry.status, entry.code.as_deref(), entry.applied),
        (401, Some("401002"), false)
    );
    assert!(entry.auth_session.is_some());
    // Other sessions are unaffected, and signing in again works.
    assert_eq!(p.projects("").await.0, 200);
    let s = signin(&url, "").await;
    assert_eq!(s.projects("").await.0, 200);

    // A password session is ended the same way.
    emu.inject_fault(fault("GET", "/projects", FaultAction::KillSession));
    assert_eq!(p.projects("").await.1.as_deref(), Some("401002"));
    assert_eq!(p.projects("").await.1.as_deref(), Some("401002"));
    assert_eq!(s.projects("").await.0, 200);

    // No token / unknown token: the usual answers, nothing else is killed.
    emu.inject_fault(Fault {
        times: 2,
        ..fault("GET", "/projects", FaultAction::KillSession)
    });
    let (_, code, _) = get_unauth(&s.site_url("projects")).await;
    assert_eq!(code.as_deref(), Some("401000"));
    let r = client()
        .get(s.site_url("projects"))
        .header("X-Tableau-Auth", "0123456789abcdef0123456789abcdef|nope")
        .send()
        .await
        .unwrap();
    assert_eq!(status_code(r).await.1.as_deref(), Some("401002"));
    assert_eq!(s.projects("").await.0, 200);

    // sign_in_elsewhere: a real second sign-in with the PAT ends its current session.
    assert!(emu.sign_in_elsewhere("", "ci"));
    let (st, code, _) = s.projects("").await;
    assert_eq!((st, code.as_deref()), (401, Some("401002")));
    // The same PAT on the other site (PATs have one live session per server).
    let s = signin(&url, "").await;
    assert!(emu.sign_in_elsewhere("QA", "ci"));
    assert_eq!(s.projects("").await.1.as_deref(), Some("401002"));
    assert!(!emu.sign_in_elsewhere("", "nope"));
    assert!(!emu.sign_in_elsewhere("nosite", "ci"));
    // It is not a REST request: the log does not show it.
    assert!(emu.requests().iter().all(|r| !r.path.contains("elsewhere")));

    // Control API.
    let s = signin(&url, "").await;
    let r = control_post(&url, "sign-in-elsewhere", r#"{"site":"","pat":"ci"}"#).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(json(r).await["ok"], true);
    assert_eq!(s.projects("").await.1.as_deref(), Some("401002"));
    let r = control_post(&url, "sign-in-elsewhere", r#"{"pat":"nope"}"#).await;
    assert_eq!(r.status().as_u16(), 404);
    let r = control_post(&url, "sign-in-elsewhere", "{").await;
    assert_eq!(r.status().as_u16(), 400);

    // Over the fault API too.
    let s = signin(&url, "").await;
    let r = control_post(
        &url,
        "faults",
        r#"{"method":"POST","path_contains":"/fileUploads","action":{"kind":"kill_session"}}"#,
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(s.initiate_raw().await.1.as_deref(), Some("401002"));
    assert!(emu.upload_sessions().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_tokens_after_requests() {
    let emu = start(Config {
        expired_token_code: "401004".into(),
        ..Config::default()
    });
    let url = emu.url();
    let s = signin(&url, "").await;

    emu.expire_tokens_after_requests(2);
    // Requests that do not pass token authentication do not count.
    assert_eq!(get_unauth(&s.site_url("projects")).await.0, 401);
    assert_eq!(get_unauth(&format!("{}/serverinfo", s.base)).await.0, 200);
    // A session created after the call still expires: it exists when the count is reached.
    let p = signin_password(&url, "").await;
    assert_eq!(s.projects("").await.0, 200);
    assert_eq!(p.projects("").await.0, 200);
    let (st, code, body) = s.projects("").await;
    assert_eq!((st, code.as_deref()), (401, Some("401004")), "{body}");
    assert!(body.contains("The authentication token has expired."));
    assert_eq!(p.projects("").await.1.as_deref(), Some("401004"));
    // One-shot: a new session keeps working.
    let s = signin(&url, "").await;
    for _ in 0..5 {
        assert_eq!(s.projects("").await.0, 200);
    }

    // n = 0 expires now.
    emu.expire_tokens_after_requests(0);
    assert_eq!(s.projects("").await.1.as_deref(), Some("401004"));

    // Control API.
    let s = signin(&url, "").await;
    let r = control_post(&url, "expire-tokens", r#"{"after_requests": 1}"#).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(s.projects("").await.0, 200);
    assert_eq!(s.projects("").await.1.as_deref(), Some("401004"));
    // No body: expire now, as before.
    let s = signin(&url, "").await;
    let r = control_post(&url, "expire-tokens", "").await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(s.projects("").await.1.as_deref(), Some("401004"));
    // Invalid bodies.
    for bad in [
        r#"{"after":1}"#,
        r#"{"after_requests":1,"at_unix_ms":5}"#,
        r#"{"after_requests":-1}"#,
        "nope",
    ] {
        let r = control_post(&url, "expire-tokens", bad).await;
        assert_eq!(r.status().as_u16(), 400, "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_tokens_at_a_time() {
    let emu = start(Config::default());
    let url = emu.url();
    let s = signin(&url, "").await;
    emu.expire_tokens_at(SystemTime::now() + Duration::from_millis(400));
    assert_eq!(s.projects("").await.0, 200);
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Signed in after the time: not expired (one-shot), while the older session is.
    let late = signin_password(&url, "").await;
    let (st, code, body) = s.projects("").await;
    assert_eq!((st, code.as_deref()), (401, Some("401000")), "{body}");
    assert_eq!(late.projects("").await.0, 200);

    // Again: a session existing at the time expires, one created after it does not.
    emu.expire_tokens_at(SystemTime::now() + Duration::from_millis(300));
    assert_eq!(late.projects("").await.0, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = signin_password(&url, "").await;
    assert_eq!(late.projects("").await.1.as_deref(), Some("401000"));
    assert_eq!(after.projects("").await.0, 200);

    // A time that has passed applies at once to the sessions older than it.
    let s = signin(&url, "").await;
    emu.expire_tokens_at(SystemTime::now());
    assert_eq!(s.projects("").await.1.as_deref(), Some("401000"));
    assert_eq!(after.projects("").await.1.as_deref(), Some("401000"));
    let s = signin(&url, "").await;
    assert_eq!(s.projects("").await.0, 200);

    // Control API.
    let at = format!(r#"{{"at_unix_ms": {}}}"#, unix_ms(SystemTime::now()) + 300);
    let r = control_post(&url, "expire-tokens", &at).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(s.projects("").await.0, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.projects("").await.1.as_deref(), Some("401000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mid_body_discards_the_chunk() {
    let emu = start(Config::default());
    let s = signin(&emu.url(), "").await;
    let project = s.project_id("default").await;
    let id = s.initiate().await;
    let first = hyper_file(MIB, 1);
    let (st, _, body) = s.append(&id, Style::Docs, &first).await;
    assert_eq!(st, 200, "{body}");

    emu.inject_fault(fault(
        "PUT",
        "/fileUploads/",
        FaultAction::ResetMidBody {
            after_bytes: 512 * 1024,
        },
    ));
    let big = bytes(4 * MIB, 2);
    let err = s
        .put_chunk(&id, Style::Docs, &big)
        .await
        .expect_err("a reset mid-body is a transport error");
    assert!(err.status().is_none(), "{err:?}");
    // Nothing of the chunk is stored; the session is still usable.
    assert_eq!(
        emu.upload_sessions(),
        vec![UploadSessionInfo {
            id: id.clone(),
            bytes: MIB as u64,
            appends: 1,
            committed: false
        }]
    );
    let entry = logged(&emu, "reset_mid_body:524288");
    assert_eq!(
        (entry.status, entry.code.as_deref(), entry.applied),
        (0, None, false)
    );
    assert!(entry.body_bytes >= 512 * 1024, "{entry:?}");
    assert!(entry.body_bytes < 4 * MIB as u64, "{entry:?}");
    let (st, _, body) = s.append(&id, Style::FormData, b"tail").await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(attr(&body, "fileUpload", "fileSize").as_deref(), Some("2"));
    let (st, _, body) = s.commit(&commit_query(&id), "Chunked", &project).await;
    assert_eq!(st, 201, "{body}");
    let mut whole = first.clone();
    whole.extend_from_slice(b"tail");
    let ds = emu.datasources();
    assert_eq!(ds.len(), 1);
    assert_eq!(
        (ds[0].size, ds[0].sha256.clone()),
        (whole.len() as u64, sha_hex(&whole))
    );

    // A body shorter than after_bytes is read to the end, then the connection is dropped
    // without applying the publish.
    emu.inject_fault(fault(
        "POST",
        "/datasources",
        FaultAction::ResetMidBody {
            after_bytes: 10 * MIB as u64,
        },
    ));
    let data = hyper_file(1000, 3);
    let body = publish_body(Style::FormData, "Short", &project, "short.hyper", &data);
    let len = body.len() as u64;
    let err = s
        .publish_send("", Style::FormData, body)
        .await
        .expect_err("connection dropped");
    assert!(err.status().is_none());
    assert_eq!(emu.datasources().len(), 1);
    let entry = logged(&emu, &format!("reset_mid_body:{}", 10 * MIB));
    assert_eq!(
        (entry.status, entry.applied, entry.body_bytes),
        (0, false, len)
    );

    // Serialisation.
    let f: Fault = serde_json::from_str(
        r#"{"method":"PUT","action":{"kind":"reset_mid_body","after_bytes":1024}}"#,
    )
    .unwrap();
    assert_eq!(f.action, FaultAction::ResetMidBody { after_bytes: 1024 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mid_response_applies_then_truncates() {
    let emu = start(Config::default());
    let url = emu.url();
    let s = signin(&url, "").await;
    let project = s.project_id("default").await;

    // An append: the client sees the status and headers, then a truncated body.
    let id = s.initiate().await;
    emu.inject_fault(fault("PUT", "/fileUploads/", FaultAction::ResetMidResponse));
    let data = hyper_file(2 * MIB, 9);
    let r = s
        .put_chunk(&id, Style::Docs, &data)
        .await
        .expect("headers arrive");
    assert_eq!(r.status().as_u16(), 200);
    let full_len = r.content_length().expect("Content-Length of the full body");
    assert!(full_len > 100);
    let err = r.bytes().await.expect_err("the body must be truncated");
    assert!(err.is_body() || err.is_decode(), "{err:?}");
    // …but the chunk was stored, exactly once.
    let ups = emu.upload_sessions();
    assert_eq!((ups[0].bytes, ups[0].appends), (2 * MIB as u64, 1));
    let entry = logged(&emu, "reset_mid_response");
    assert_eq!((entry.status, entry.applied), (200, true));
    assert_eq!(entry.method, "PUT");
    // The connection pool recovers: the next append works and counts from 2 MiB.
    let (st, _, body) = s.append(&id, Style::Docs, b"more").await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(attr(&body, "fileUpload", "fileSize").as_deref(), Some("3"));

    // A single-request publish: the data source is created although the client saw an error.
    emu.inject_fault(fault("POST", "/datasources", FaultAction::ResetMidResponse));
    let file = hyper_file(5000, 4);
    let body = publish_body(Style::FormData, "Truncated", &project, "t.hyper", &file);
    let res = s.publish_send("", Style::FormData, body).await;
    let saw_error = match res {
        Err(_) => true,
        Ok(r) => {
            assert_eq!(r.status().as_u16(), 201);
            r.text().await.is_err()
        }
    };
    assert!(saw_error, "the client must not see a success");
    let ds = emu.datasources();
    assert_eq!(ds.len(), 1);
    assert_eq!(
        (ds[0].name.as_str(), ds[0].sha256.clone()),
        ("Truncated", sha_hex(&file))
    );
    // A blind retry now hits the existing data source.
    let (st, code, _) = s
        .publish_file("", "Truncated", &project, "t.hyper", &file)
        .await;
    assert_eq!((st, code.as_deref()), (403, Some("403007")));
    let log = emu.requests();
    let publishes: Vec<_> = log
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/datasources"))
        .collect();
    assert_eq!(publishes.len(), 2);
    assert_eq!(publishes[0].fault.as_deref(), Some("reset_mid_response"));
    assert_eq!((publishes[0].status, publishes[0].applied), (201, true));
    assert_eq!((publishes[1].status, publishes[1].applied), (403, false));

    // A sign-in: the session is created.
    emu.inject_fault(fault("POST", "/auth/signin", FaultAction::ResetMidResponse));
    let res = client()
        .post(format!("{url}/api/{V}/auth/signin"))
        .body(password_body("admin", "admin-pass", ""))
        .send()
        .await;
    match res {
        Err(_) => {}
        Ok(r) => assert!(r.text().await.is_err()),
    }
    let last = emu.requests().pop().unwrap();
    assert_eq!(
        (last.status, last.applied, last.fault.as_deref()),
        (200, true, Some("reset_mid_response"))
    );
    assert!(last.auth_session.is_some());

    // An empty (204) body cannot be cut: the connection is closed after the sign-out is applied.
    emu.inject_fault(fault(
        "POST",
        "/auth/signout",
        FaultAction::ResetMidResponse,
    ));
    let res = s.signout_raw().await;
    assert!(res.is_err());
    let last = emu.requests().pop().unwrap();
    assert_eq!((last.status, last.applied), (0, true));
    assert_eq!(s.projects("").await.1.as_deref(), Some("401002"));

    // On the wire: status line, headers with the full Content-Length, half the body, then EOF.
    let s = signin(&url, "").await;
    emu.inject_fault(fault("GET", "/projects", FaultAction::ResetMidResponse));
    let raw = raw_get(&url, &s.site_url("projects"), &s.token).await;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap();
    assert_eq!(body.len(), len / 2, "{head}");
    assert!(body.starts_with("<?xml"));
    // The same request without the fault gives the full body of that length.
    let (st, _, full) = s.projects("").await;
    assert_eq!((st, full.len()), (200, len));

    let f: Fault = serde_json::from_str(r#"{"action":{"kind":"reset_mid_response"}}"#).unwrap();
    assert_eq!(f.action, FaultAction::ResetMidResponse);
}

fn too_many(retry_after: Option<&str>, detail: &str) -> FaultAction {
    FaultAction::Error {
        status: 429,
        code: "429000".into(),
        summary: "Too Many Requests".into(),
        detail: detail.into(),
        retry_after: retry_after.map(str::to_owned),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_variants() {
    let emu = start(Config::default());
    let url = emu.url();
    let s = signin(&url, "").await;
    let project = s.project_id("default").await;
    let file = hyper_file(3000, 8);
    let detail = "Too many requests for 'api.rest.publish'. Please retry after 1 seconds.";
    let date = "Wed, 21 Oct 2026 07:28:00 GMT";
    let cases = [
        (Some("1"), "Slow down."),
        (Some(date), "Later."),
        (None, detail),
    ];
    for (i, (ra, text)) in cases.into_iter().enumerate() {
        emu.inject_fault(fault("POST", "/datasources", too_many(ra, text)));
        let body = publish_body(
            Style::FormData,
            &format!("T{i}"),
            &project,
            "t.hyper",
            &file,
        );
        let r = s.publish_send("", Style::FormData, body).await.unwrap();
        assert_eq!(r.status().as_u16(), 429);
        assert_eq!(
            r.headers().get("retry-after").map(|v| v.to_str().unwrap()),
            ra,
            "case {i}"
        );
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml"));
        let body = r.text().await.unwrap();
        assert_eq!(error_code(&body).as_deref(), Some("429000"));
        assert!(
            body.contains(&format!(
                "<summary>Too Many Requests</summary><detail>{text}</detail>"
            )),
            "{body}"
        );
    }
    // Nothing was published, and every refusal is logged as not applied.
    assert!(emu.datasources().is_empty());
    let refused: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.fault.as_deref() == Some("error:429"))
        .collect();
    assert_eq!(refused.len(), 3);
    assert!(refused
        .iter()
        .all(|r| r.status == 429 && r.code.as_deref() == Some("429000") && !r.applied));
    // The detail in JSON too.
    emu.inject_fault(fault("GET", "/serverinfo", too_many(None, detail)));
    let r = client()
        .get(format!("{url}/api/{V}/serverinfo"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_none());
    let v = json(r).await;
    assert_eq!(v["error"]["detail"], detail);
    assert_eq!(v["error"]["code"], "429000");
    // Over the control API; a Retry-After that cannot be a header value is refused.
    let r = control_post(
        &url,
        "faults",
        r#"{"action":{"kind":"error","status":429,"code":"429000","retry_after":"bad\nvalue"}}"#,
    )
    .await;
    assert_eq!(r.status().as_u16(), 400);
    let r = control_post(&url, "faults", r#"{"method":"GET","path_contains":"/projects","action":{"kind":"error","status":429,"code":"429000","summary":"Too Many Requests","retry_after":"Wed, 21 Oct 2026 07:28:00 GMT"}}"#).await;
    assert_eq!(r.status().as_u16(), 200);
    let r = s.get_raw(&s.site_url("projects")).await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], date);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_flag_and_upload_sessions() {
    let emu = start(Config {
        job_duration: Duration::from_millis(50),
        ..Config::default()
    });
    let url = emu.url();
    let s = signin(&url, "").await;
    let project = s.project_id("default").await;

    let a = s.initiate().await;
    let b = s.initiate().await;
    let c1 = hyper_file(MIB, 1);
    assert_eq!(s.append(&a, Style::Docs, &c1).await.0, 200);
    // Refused by an injected error: not applied.
    emu.inject_fault(fault(
        "PUT",
        "/fileUploads/",
        too_many(Some("1"), "Please retry after 1 seconds."),
    ));
    assert_eq!(s.append(&a, Style::Docs, b"never").await.0, 429);
    // Reset after the body: applied although the client saw no response.
    emu.inject_fault(fault("PUT", "/fileUploads/", FaultAction::ResetAfterBody));
    assert!(s.put_chunk(&a, Style::Docs, b"stored").await.is_err());
    // Reset mid-body: not applied.
    emu.inject_fault(fault(
        "PUT",
        "/fileUploads/",
        FaultAction::ResetMidBody { after_bytes: 10 },
    ));
    assert!(s.put_chunk(&a, Style::Docs, &bytes(MIB, 3)).await.is_err());
    // Too large: refused.
    assert_eq!(s.append(&b, Style::Docs, b"b-data").await.0, 200);
    assert_eq!(
        s.append("1:ffffffffffffffffffffffffffffffff-1:0", Style::Docs, b"x")
            .await
            .0,
        404
    );
    assert_eq!(s.projects("").await.0, 200);

    let infos = emu.upload_sessions();
    assert_eq!(
        infos,
        vec![
            UploadSessionInfo {
                id: a.clone(),
                bytes: MIB as u64 + 6,
                appends: 2,
                committed: false
            },
            UploadSessionInfo {
                id: b.clone(),
                bytes: 6,
                appends: 1,
                committed: false
            },
        ]
    );

    // Commit a (async job); committing b fails ("b-data" is not a hyper file), so b stays open.
    let (st, _, _) = s.commit_job(&a, "A", &project).await;
    assert_eq!(st, 202);
    let (st, code, _) = s.commit(&commit_query(&b), "B", &project).await;
    assert_eq!((st, code.as_deref()), (400, Some("400011")));
    let infos = emu.upload_sessions();
    assert!(infos[0].committed && !infos[1].committed, "{infos:?}");

    // The log proves which requests changed state.
    let log = emu.requests();
    let applied: Vec<(String, String, u16)> = log
        .iter()
        .filter(|r| r.applied)
        .map(|r| {
            let tail = r.path.rsplit('/').next().unwrap().to_owned();
            let kind = if r.path.contains("/fileUploads/") {
                "fileUploads/ID".to_owned()
            } else {
                tail
            };
            (r.method.clone(), kind, r.status)
        })
        .collect();
    let expect = |m: &str, k: &str, s: u16| (m.to_owned(), k.to_owned(), s);
    assert_eq!(
        applied,
        vec![
            expect("POST", "signin", 200),
            expect("POST", "fileUploads", 201),
            expect("POST", "fileUploads", 201),
            expect("PUT", "fileUploads/ID", 200),
            expect("PUT", "fileUploads/ID", 0),
            expect("PUT", "fileUploads/ID", 200),
            expect("POST", "datasources", 202),
        ]
    );
    // Never a double append: applied appends per session match the stored counts.
    for info in emu.upload_sessions() {
        let n = log
            .iter()
            .filter(|r| r.applied && r.method == "PUT" && r.path.ends_with(&enc(&info.id)))
            .count();
        assert_eq!(n as u32, info.appends, "{info:?}");
    }
    assert!(log.iter().filter(|r| r.method == "GET").all(|r| !r.applied));
    // The job applies later; the data source has the bytes of both applied appends.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let ds = emu.datasources();
    assert_eq!(ds.len(), 1);
    let mut whole = c1.clone();
    whole.extend_from_slice(b"stored");
    assert_eq!(ds[0].sha256, sha_hex(&whole));

    // Control API mirrors upload_sessions() and the log carries `applied`.
    let v = json(control_get(&url, "upload-sessions").await).await;
    let parsed: Vec<UploadSessionInfo> = serde_json::from_value(v).unwrap();
    assert_eq!(parsed, emu.upload_sessions());
    let v = json(control_get(&url, "requests").await).await;
    assert_eq!(v[0]["applied"], true);
}
