//! Sign-in, sessions, versions, routing, projects and the control API.

mod common;

use std::time::Duration;

use common::*;
use tableau_emulator::{Config, Emulator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_good_and_bad() {
    let emu = start(Config::default());
    let url = emu.url();
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with('/'));

    let (s, body) = signin_raw(&url, pat_body("ci", "ci-secret", "")).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains(r#"<tsResponse xmlns="http://tableau.com/api" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://tableau.com/api https://help.tableau.com/samples/en-us/rest_api/ts-api_3_25.xsd">"#));
    let token = attr(&body, "credentials", "token").unwrap();
    let site = attr(&body, "site", "id").unwrap();
    assert!(token.ends_with(&format!("|{site}")), "{token}");
    assert_eq!(attr(&body, "site", "contentUrl").as_deref(), Some(""));
    assert!(attr(&body, "user", "id").is_some());
    assert!(attr(&body, "credentials", "estimatedTimeToExpiration").is_some());

    // Password sign-in on site qa, with a namespaced request.
    let (s, body) = signin_raw(
        &url,
        r#"<?xml version="1.0"?><tsRequest xmlns="http://tableau.com/api"><credentials name="admin" password="admin-pass"><site contentUrl="qa"/></credentials></tsRequest>"#.into(),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(attr(&body, "site", "contentUrl").as_deref(), Some("qa"));
    assert_ne!(attr(&body, "site", "id").unwrap(), site);

    for bad in [
        pat_body("ci", "wrong", ""),
        pat_body("nope", "ci-secret", ""),
        password_body("admin", "wrong", ""),
        password_body("admin", "admin-pass", "no-such-site"),
    ] {
        let (s, body) = signin_raw(&url, bad).await;
        assert_eq!(s, 401);
        assert_eq!(error_code(&body).as_deref(), Some("401001"));
        assert!(body.contains(
            "<summary>Signin Error</summary><detail>Error signing in to Tableau Server</detail>"
        ));
    }
    let (s, body) = signin_raw(&url, "<tsRequest><credentials".into()).await;
    assert_eq!((s, error_code(&body).as_deref()), (400, Some("400000")));
    assert!(body.contains("Payload is either malformed XML or incomplete"));

    // JSON sign-in with a JSON answer.
    let r = signin_json(
        &url,
        r#"{"credentials":{"name":"admin","password":"admin-pass","site":{"contentUrl":"qa"}}}"#
            .into(),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("json"));
    let v: serde_json::Value = json(r).await;
    assert!(v["credentials"]["token"].as_str().unwrap().len() > 32);
    assert_eq!(v["credentials"]["site"]["contentUrl"], "qa");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_unknown_and_ended_tokens() {
    let emu = start(Config::default());
    let s = signin(&emu.url(), "").await;
    let c = client();
    let r = c.get(s.site_url("projects")).send().await.unwrap();
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    let (st, code, body) = status_code(r).await;
    assert_eq!((st, code.as_deref()), (401, Some("401000")));
    assert_eq!(ct, "application/xml;charset=utf-8");
    assert!(body.contains("<summary>Unauthorized Access</summary><detail>No authentication credentials were provided.</detail>"));

    let r = c
        .get(s.site_url("projects"))
        .header("x-tableau-auth", "garbage")
        .send()
        .await
        .unwrap();
    let (st, code, body) = status_code(r).await;
    assert_eq!((st, code.as_deref()), (401, Some("401002")));
    assert!(body.contains("Invalid authentication credentials were provided."));

    // Header name is case-insensitive.
    let r = c
        .get(s.site_url("projects"))
        .header("X-TABLEAU-AUTH", &s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Sign out → 204, then the token is dead (401002), and signing out again is a 401.
    assert_eq!(s.signout().await.0, 204);
    assert_eq!(s.projects("").await.1.as_deref(), Some("401002"));
    assert_eq!(s.signout().await.1.as_deref(), Some("401002"));
    let r = c
        .post(format!("{}/auth/signout", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(status_code(r).await.1.as_deref(), Some("401000"));

    // A token of site A used on site B's URL → 403000.
    let a = signin(&emu.url(), "").await;
    let mut b = signin_password(&emu.url(), "qa").await;
    b.token = a.token.clone();
    let (st, code, body) = b.projects("").await;
    assert_eq!((st, code.as_deref()), (403, Some("403000")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_pat_sign_in_ends_the_first() {
    let emu = start(Config::default());
    let first = signin(&emu.url(), "").await;
    assert_eq!(first.projects("").await.0, 200);
    let second = signin(&emu.url(), "").await;
    let (st, code, body) = first.projects("").await;
    assert_eq!((st, code.as_deref()), (401, Some("401002")));
    assert!(body.contains("Invalid authentication credentials were provided."));
    assert_eq!(second.projects("").await.0, 200);
    // Same PAT on another site also ends the earlier session.
    let third = signin(&emu.url(), "qa").await;
    assert_eq!(second.projects("").await.1.as_deref(), Some("401002"));
    assert_eq!(third.projects("").await.0, 200);
    // Password sessions are not limited.
    let p1 = signin_password(&emu.url(), "").await;
    let p2 = signin_password(&emu.url(), "").await;
    assert_eq!(p1.projects("").await.0, 200);
    assert_eq!(p2.projects("").await.0, 200);
    // The log records session serials, never tokens.
    let log = emu.requests();
    let serials: std::collections::BTreeSet<u64> =
        log.iter().filter_map(|r| r.auth_session).collect();
    assert!(serials.len() >= 5, "{serials:?}");
    let json = serde_json::to_string(&log).unwrap();
    assert!(!json.contains(&first.token) && !json.contains("ci-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiry() {
    let emu = start(Config::default());
    let s = signin(&emu.url(), "").await;
    emu.expire_all_tokens();
    let (st, code, body) = s.projects("").await;
    assert_eq!((st, code.as_deref()), (401, Some("401000")), "{body}");
    assert!(body.contains("No authentication credentials were provided."));
    // A new sign-in works.
    let s = signin(&emu.url(), "").await;
    assert_eq!(s.projects("").await.0, 200);

    // Idle TTL: each request extends it.
    emu.set_token_ttl(Duration::from_millis(1000));
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(s.projects("").await.0, 200);
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(s.projects("").await.1.as_deref(), Some("401000"));

    // Absolute TTL and a configurable code.
    let emu2 = start(Config {
        token_ttl: Duration::from_millis(1000),
        absolute_token_ttl: true,
        expired_token_code: "401002".into(),
        ..Config::default()
    });
    let s2 = signin(&emu2.url(), "").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s2.projects("").await.0, 200);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(s2.projects("").await.1.as_deref(), Some("401002"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_routes_and_serverinfo() {
    let emu = start(Config::default());
    let url = emu.url();
    for p in ["serverinfo", "serverInfo"] {
        let (st, _, body) = get_unauth(&format!("{url}/api/2.4/{p}")).await;
        assert_eq!(st, 200);
        assert!(body.contains(r#"<serverInfo><productVersion build="20251.25.0312.1200">2025.1.0</productVersion><restApiVersion>3.25</restApiVersion></serverInfo>"#), "{body}");
    }
    let (st, code, body) = get_unauth(&format!("{url}/api/3.26/serverInfo")).await;
    assert_eq!((st, code.as_deref()), (404, Some("404003")));
    assert!(body.contains("<summary>Resource Not Found</summary><detail>Unknown resource '/3.26/serverInfo' specified in URI.</detail>"), "{body}");
    let (_, code, _) = get_unauth(&format!("{url}/api/2.3/serverInfo")).await;
    assert_eq!(code.as_deref(), Some("404003"));
    let (_, code, _) = get_unauth(&format!("{url}/api/3.25/nonsense")).await;
    assert_eq!(code.as_deref(), Some("404003"));
    let (_, code, _) = get_unauth(&format!("{url}/api/-/serverinfo")).await;
    assert_eq!(code.as_deref(), Some("404003"));
    let (st, code, body) = get_unauth(&format!("{url}/api/3.25/auth/signin")).await;
    assert_eq!((st, code.as_deref()), (405, Some("405000")));
    assert!(body.contains("The HTTP method 'GET' is not supported for the given resource"));

    // Numeric comparison: 3.10 > 3.9.
    let emu39 = start(Config {
        api_version: "3.9".into(),
        ..Config::default()
    });
    let (_, code, _) = get_unauth(&format!("{}/api/3.10/serverinfo", emu39.url())).await;
    assert_eq!(code.as_deref(), Some("404003"));
    let (_, _, body) = get_unauth(&format!("{}/api/3.9/serverinfo", emu39.url())).await;
    assert!(body.contains("<restApiVersion>3.9</restApiVersion>"));
    let emu310 = start(Config {
        api_version: "3.10".into(),
        ..Config::default()
    });
    let (st, _, _) = get_unauth(&format!("{}/api/3.9/serverinfo", emu310.url())).await;
    assert_eq!(st, 200);

    // Session probe.
    let s = signin(&url, "qa").await;
    let (st, _, body) = s.current().await;
    assert_eq!(st, 200);
    assert_eq!(attr(&body, "user", "name").as_deref(), Some("admin"));
    assert_eq!(attr(&body, "site", "contentUrl").as_deref(), Some("qa"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_filters_and_pagination() {
    let emu = start(Config {
        max_page_size: 2,
        ..Config::default()
    });
    let s = signin(&emu.url(), "").await;
    let finance = emu.project_id("", &["Finance"]).unwrap();
    let quarterly = emu.project_id("", &["Finance", "Quarterly"]).unwrap();
    assert!(emu.project_id("", &["Quarterly"]).is_none());
    // A second "Quarterly" at the top level, and one with awkward characters.
    let top_q = emu.add_project("", None, "Quarterly");
    let odd = emu.add_project("", Some(&finance), "R&D <2025> \"x\"");

    // Pagination: 6 projects, page size capped at 2.
    let mut ids = vec![];
    for page in 1..=3 {
        let (st, _, body) = s.projects(&format!("pageSize=100&pageNumber={page}")).await;
        assert_eq!(st, 200);
        assert_eq!(attr(&body, "pagination", "pageSize").as_deref(), Some("2"));
        assert_eq!(
            attr(&body, "pagination", "pageNumber").as_deref(),
            Some(&*page.to_string())
        );
        assert_eq!(
            attr(&body, "pagination", "totalAvailable").as_deref(),
            Some("5")
        );
        ids.extend(attrs_all(&body, "project", "id"));
    }
    assert_eq!(ids.len(), 5);
    let (_, _, body) = s.projects("pageNumber=4").await;
    assert_eq!(count(&body, "project"), 0);
    assert!(body.contains("<projects></projects>"));

    // Raw filter.
    let (_, _, body) = s.projects("filter=name:eq:Quarterly").await;
    let mut got = attrs_all(&body, "project", "id");
    got.sort();
    let mut want = vec![quarterly.clone(), top_q.clone()];
    want.sort();
    assert_eq!(got, want);
    // Percent-encoded delimiters, AND of two conditions.
    let (_, _, body) = s
        .projects(&format!(
            "filter={}",
            enc("topLevelProject:eq:true,name:eq:Quarterly")
        ))
        .await;
    assert_eq!(attrs_all(&body, "project", "id"), vec![top_q.clone()]);
    assert!(attr(&body, "project", "parentProjectId").is_none());
    let (_, _, body) = s
        .projects(&format!(
            "filter=parentProjectId:eq:{finance},name:eq:Quarterly"
        ))
        .await;
    assert_eq!(attrs_all(&body, "project", "id"), vec![quarterly.clone()]);
    assert_eq!(
        attr(&body, "project", "parentProjectId").as_deref(),
        Some(finance.as_str())
    );
    assert_eq!(
        attr(&body, "project", "contentPermissions").as_deref(),
        Some("ManagedByOwner")
    );
    assert!(attr(&body, "owner", "id").is_some());
    let (_, _, body) = s.projects("filter=topLevelProject:eq:false").await;
    assert_eq!(
        attr(&body, "pagination", "totalAvailable").as_deref(),
        Some("2")
    );
    // `in`, raw and encoded.
    for q in [
        "filter=name:in:[default,Finance]".to_owned(),
        format!("filter={}", enc("name:in:[default,Finance]")),
    ] {
        let (st, _, body) = s.projects(&q).await;
        assert_eq!(st, 200, "{q}: {body}");
        let mut names = attrs_all(&body, "project", "name");
        names.sort();
        assert_eq!(names, vec!["Finance", "default"], "{q}");
    }
    // Escaped names come back intact and can be searched for.
    let (_, _, body) = s
        .projects(&format!("filter={}", enc("name:eq:R&D <2025> \"x\"")))
        .await;
    assert_eq!(attrs_all(&body, "project", "id"), vec![odd]);
    assert_eq!(
        attr(&body, "project", "name").as_deref(),
        Some("R&D <2025> \"x\"")
    );
    // Sorting.
    let (_, _, body) = s.projects("sort=name:desc&pageSize=1").await;
    assert_eq!(attr(&body, "project", "name").as_deref(), Some("default"));

    // Errors.
    for bad in [
        "filter=owner:eq:x",
        "filter=name:gt:x",
        "filter=name",
        "filter=topLevelProject:eq:maybe",
        "pageSize=0",
        "pageNumber=abc",
        "sort=bogus:asc",
    ] {
        let (st, code, body) = s.projects(bad).await;
        assert_eq!(
            (st, code.as_deref()),
            (400, Some("400006")),
            "{bad}: {body}"
        );
    }

    // GET a project by id is not supported (as observed on real servers).
    let (st, code, body) = s.get(&s.site_url(&format!("projects/{finance}"))).await;
    assert_eq!((st, code.as_deref()), (405, Some("405000")));
    assert!(body.contains(
        "<detail>The HTTP method 'GET' is not supported for the given resource</detail>"
    ));

    // Nested projects on the other site.
    let qa = signin(&emu.url(), "qa").await;
    let (_, _, body) = qa.projects("pageSize=2&pageNumber=2").await;
    assert_eq!(attr(&body, "project", "name").as_deref(), Some("Quarterly"));
    assert!(attr(&body, "project", "parentProjectId").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api() {
    let emu = start(Config::default());
    let url = emu.url();
    let s = signin(&url, "").await;

    let r = control_post(
        &url,
        "projects",
        r#"{"site":"","parent_id":null,"name":"Ops"}"#,
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = json(r).await;
    let ops = v["id"].as_str().unwrap().to_owned();
    assert_eq!(emu.project_id("", &["Ops"]).as_deref(), Some(ops.as_str()));
    let daily = format!(r#"{{"site":"","parent_id":"{ops}","name":"Daily"}}"#);
    let r = control_post(&url, "projects", &daily).await;
    assert_eq!(r.status().as_u16(), 200);
    let r = control_get(&url, "project-id?site=&path=Ops/Daily").await;
    let v: serde_json::Value = json(r).await;
    assert!(v["id"].is_string());
    let r = control_post(&url, "projects", r#"{"site":"nope","name":"X"}"#).await;
    assert_eq!(r.status().as_u16(), 404);

    // Faults over HTTP.
    let r = control_post(&url, "faults", r#"{"method":"GET","path_contains":"/projects","nth":1,"action":{"kind":"error","status":500,"code":"500000","summary":"Internal Server Error","detail":"boom"}}"#).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(s.projects("").await.1.as_deref(), Some("500000"));
    assert_eq!(s.projects("").await.0, 200);
    let r = control_post(
        &url,
        "faults",
        r#"{"path_contains":"/projects","nth":1,"times":5,"action":{"kind":"delay","ms":1}}"#,
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let r = client()
        .delete(format!("{url}/_emulator/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(s.projects("").await.0, 200);
    let r = control_post(&url, "faults", "{}").await;
    assert_eq!(r.status().as_u16(), 400);

    // Token lifetime and expiry.
    let r = control_post(&url, "expire-tokens", "").await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(s.projects("").await.1.as_deref(), Some("401000"));
    let s = signin(&url, "").await;
    let r = control_post(&url, "token-lifetime", r#"{"seconds":0}"#).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(s.projects("").await.1.as_deref(), Some("401000"));
    let r = control_post(&url, "token-lifetime", r#"{"seconds":3600}"#).await;
    assert_eq!(r.status().as_u16(), 200);
    let s = signin(&url, "").await;
    assert_eq!(s.projects("").await.0, 200);

    // Request log and data sources as JSON; control requests are not logged.
    let r = control_get(&url, "requests").await;
    let log: serde_json::Value = json(r).await;
    let log = log.as_array().unwrap();
    assert!(!log.is_empty());
    assert!(log
        .iter()
        .all(|e| !e["path"].as_str().unwrap().starts_with("/_emulator")));
    assert!(log
        .iter()
        .any(|e| e["fault"] == "error:500" && e["code"] == "500000" && e["status"] == 500));
    let seqs: Vec<u64> = log.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    let r = control_get(&url, "datasources").await;
    assert_eq!(json(r).await, serde_json::json!([]));
    let r = control_get(&url, "bogus").await;
    assert_eq!(r.status().as_u16(), 404);
}

#[test]
fn start_and_stop_from_a_plain_thread() {
    let emu = Emulator::start(Config::default()).unwrap();
    let url = emu.url();
    let addr = url.trim_start_matches("http://").to_owned();
    // Raw HTTP/1.1 without any runtime.
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.write_all(b"GET /api/3.25/serverinfo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    conn.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp
        .to_ascii_lowercase()
        .contains("content-type: application/xml;charset=utf-8"));
    let dir = emu.data_dir();
    assert!(dir.exists());
    emu.shutdown();
    assert!(!dir.exists(), "temporary data dir removed");
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "listener closed after shutdown"
    );

    // Seeds from JSON.
    let seed = tableau_emulator::Seed::from_json(
        r#"{"sites":[{"content_url":"x","name":"X","users":[{"name":"u","password":"p","site_role":"Creator","pats":[{"name":"t","secret":"s"}]}],"projects":[{"name":"default"},{"name":"A","children":[{"name":"B"}]}]}]}"#,
    )
    .unwrap();
    let emu = Emulator::start(Config {
        seed,
        ..Config::default()
    })
    .unwrap();
    assert!(emu.project_id("x", &["A", "B"]).is_some());
    assert!(emu.project_id("", &["default"]).is_none());
    drop(emu);
    let def = tableau_emulator::Seed::default();
    assert_eq!(def.sites.len(), 2);
    let text = serde_json::to_string(&def).unwrap();
    assert_eq!(tableau_emulator::Seed::from_json(&text).unwrap(), def);
}

#[test]
fn emulator_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Emulator>();
    check::<Config>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_prints_url_logs_and_exits_on_stdin_eof() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.json");
    std::fs::write(
        &seed,
        r#"{"sites":[{"content_url":"","name":"Default","users":[{"name":"etl","password":"pw","site_role":"Creator","pats":[{"name":"bot","secret":"s3cr3t"}]}],"projects":[{"name":"default"},{"name":"Sales","children":[{"name":"EMEA"}]}]}]}"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tableau-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--exit-on-stdin-eof",
            "--max-page-size",
            "2",
            "--job-duration-ms",
            "10",
        ])
        .arg("--seed")
        .arg(&seed)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let s = signin_with(&url, pat_body("bot", "s3cr3t", "")).await;
    let token = s.token.clone();
    let (st, _) = signin_raw(&url, pat_body("ci", "ci-secret", "")).await;
    assert_eq!(st, 401, "the seed file replaces the default seed");
    let (_, _, body) = s.projects("").await;
    assert_eq!(attr(&body, "pagination", "pageSize").as_deref(), Some("2"));
    assert_eq!(
        attr(&body, "pagination", "totalAvailable").as_deref(),
        Some("3")
    );

    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(status.success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("POST /api/3.25/auth/signin 200 -"), "{err}");
    assert!(
        err.contains("POST /api/3.25/auth/signin 401 401001"),
        "{err}"
    );
    assert!(err.contains("/projects 200"), "{err}");
    assert!(!err.contains(&token) && !err.contains("s3cr3t") && !err.contains("ci-secret"));
    assert!(dir.path().join("data").join("uploads").is_dir());
}
