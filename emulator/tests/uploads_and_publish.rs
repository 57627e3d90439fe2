//! File uploads, publishing (single request, upload session, async jobs) and fault injection.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tableau_emulator::{Config, Fault, FaultAction};

const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_sessions_both_styles_and_commit() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(Config {
        data_dir: Some(dir.path().to_path_buf()),
        max_chunk_bytes: 2 * MIB as u64,
        ..Config::default()
    });
    let s = signin(&emu.url(), "").await;
    let project = s.project_id("default").await;

    let id = s.initiate().await;
    assert!(id.contains(':'), "{id}");
    let data = hyper_file(3 * MIB + 123, 7);
    let (a, b) = data.split_at(1);
    // 1 byte → fileSize 1 (MB, rounded up), docs-style part headers.
    let (st, _, body) = s.append(&id, Style::Docs, a).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(attr(&body, "fileUpload", "fileSize").as_deref(), Some("1"));
    assert_eq!(
        attr(&body, "fileUpload", "uploadSessionId").as_deref(),
        Some(id.as_str())
    );
    // Then the rest in TSC-style parts: 1 MiB + 1 → 2 MB total, and so on.
    let (b1, b2) = b.split_at(MIB);
    let (_, _, body) = s.append(&id, Style::FormData, b1).await;
    assert_eq!(attr(&body, "fileUpload", "fileSize").as_deref(), Some("2"));
    let (b2a, b2b) = b2.split_at(2 * MIB);
    let (st, _, body) = s.append(&id, Style::FormData, b2a).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(attr(&body, "fileUpload", "fileSize").as_deref(), Some("4"));
    // A chunk larger than max_chunk_bytes → 413, and nothing of it is kept.
    let (st, code, body) = s.append(&id, Style::Docs, &bytes(2 * MIB + 1, 1)).await;
    assert_eq!((st, code.as_deref()), (413, Some("413000")), "{body}");
    assert!(body.contains("<summary>Payload Too Large</summary>"));
    let (_, _, body) = s.append(&id, Style::Docs, b2b).await;
    assert_eq!(attr(&body, "fileUpload", "fileSize").as_deref(), Some("4"));

    // Unknown session (also via an unencoded id).
    let (st, code, body) = s
        .append(
            "1234:ffffffffffffffffffffffffffffffff-1:0",
            Style::Docs,
            b"x",
        )
        .await;
    assert_eq!((st, code.as_deref()), (404, Some("404000")), "{body}");
    assert!(body.contains(
        "Upload session '1234:ffffffffffffffffffffffffffffffff-1:0' could not be found."
    ));

    // Commit needs datasourceType.
    let q = format!("uploadSessionId={}", enc(&id));
    let (st, code, body) = s.commit(&q, "Big", &project).await;
    assert_eq!((st, code.as_deref()), (400, Some("400000")), "{body}");
    assert!(body.contains("datasourceType"));
    // A file part next to uploadSessionId is refused.
    let (st, code, _) = s
        .publish_file(
            &format!("{q}&datasourceType=hyper"),
            "Big",
            &project,
            "x.hyper",
            &hyper_file(100, 1),
        )
        .await;
    assert_eq!((st, code.as_deref()), (400, Some("400000")));

    // The commit (raw ':' in the query works as well as %3A).
    let raw_q = format!("uploadSessionId={id}&datasourceType=hyper&overwrite=false");
    let (st, _, body) = s.commit(&raw_q, "Big", &project).await;
    assert_eq!(st, 201, "{body}");
    let ds_id = attr(&body, "datasource", "id").unwrap();
    assert_eq!(attr(&body, "datasource", "name").as_deref(), Some("Big"));
    assert_eq!(
        attr(&body, "datasource", "contentUrl").as_deref(),
        Some("Big")
    );
    assert_eq!(
        attr(&body, "project", "id").as_deref(),
        Some(project.as_str())
    );
    assert_eq!(attr(&body, "project", "name").as_deref(), Some("default"));
    assert_eq!(attr(&body, "owner", "id").as_deref(), Some(s.user.as_str()));
    assert!(body.contains("<tags/>"));
    let created = attr(&body, "datasource", "createdAt").unwrap();
    assert_eq!(created.len(), 20);
    assert!(created.ends_with('Z') && created.as_bytes()[10] == b'T');

    let dss = emu.datasources();
    assert_eq!(dss.len(), 1);
    let d = &dss[0];
    assert_eq!(
        (d.id.as_str(), d.site.as_str(), d.file_type.as_str()),
        (ds_id.as_str(), "", "hyper")
    );
    assert_eq!(d.size, data.len() as u64);
    assert_eq!(d.sha256, sha_hex(&data));
    assert_eq!(d.project_name, "default");
    assert_eq!(d.history.len(), 1);
    assert_eq!(d.history[0].op, "create");
    // The stored file is the uploaded one.
    let stored = std::fs::read(
        dir.path()
            .join("datasources")
            .join(format!("{ds_id}.hyper")),
    )
    .unwrap();
    assert_eq!(sha_hex(&stored), d.sha256);

    // The session is consumed.
    let (st, code, _) = s.append(&id, Style::Docs, b"x").await;
    assert_eq!((st, code.as_deref()), (404, Some("404000")));
    let again = format!("{q}&datasourceType=hyper&overwrite=true");
    let (st, code, _) = s.commit(&again, "Big", &project).await;
    assert_eq!((st, code.as_deref()), (404, Some("404000")));

    // Data source queries.
    let (st, _, body) = s
        .datasources("filter=name:eq:Big,projectName:eq:default")
        .await;
    assert_eq!(st, 200);
    assert_eq!(attrs_all(&body, "datasource", "id"), vec![ds_id.clone()]);
    assert_eq!(
        attr(&body, "pagination", "totalAvailable").as_deref(),
        Some("1")
    );
    let (_, _, body) = s
        .datasources(&format!(
            "filter={}",
            enc("name:eq:Big,projectName:eq:Finance")
        ))
        .await;
    assert_eq!(count(&body, "datasource"), 0);
    assert!(body.contains("<datasources></datasources>"));
    let (st, _, body) = s.get(&s.site_url(&format!("datasources/{ds_id}"))).await;
    assert_eq!(st, 200);
    assert_eq!(attr(&body, "datasource", "name").as_deref(), Some("Big"));
    let (st, code, _) = s
        .get(&s.site_url("datasources/00000000-0000-0000-0000-000000000000"))
        .await;
    assert_eq!((st, code.as_deref()), (404, Some("404000")));

    // An upload session from another site's session is not visible.
    let qa = signin_password(&emu.url(), "qa").await;
    let id2 = s.initiate().await;
    let mut foreign = qa.clone();
    foreign.site = s.site.clone();
    let (st, code, _) = foreign.append(&id2, Style::Docs, b"x").await;
    assert_eq!((st, code.as_deref()), (403, Some("403000")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_request_publish_overwrite_append_and_errors() {
    let emu = start(Config {
        max_single_request_bytes: MIB as u64,
        ..Config::default()
    });
    let s = signin(&emu.url(), "").await;
    let default = s.project_id("default").await;
    let quarterly = emu.project_id("", &["Finance", "Quarterly"]).unwrap();
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/sample.hyper"
    ))
    .unwrap();

    let body = created(
        s.publish_file(
            "datasourceType=hyper",
            "Sales",
            &quarterly,
            "sample.hyper",
            &sample,
        )
        .await,
    );
    let id = attr(&body, "datasource", "id").unwrap();
    assert_eq!(attr(&body, "project", "name").as_deref(), Some("Quarterly"));
    let d = emu.datasources().into_iter().find(|d| d.id == id).unwrap();
    assert_eq!(
        (d.size, d.sha256.clone()),
        (sample.len() as u64, sha_hex(&sample))
    );

    // Same name in another project is fine; contentUrl is made unique.
    let body = created(
        s.publish_file("", "Sales", &default, "sales.hyper", &sample)
            .await,
    );
    assert_eq!(
        attr(&body, "datasource", "contentUrl").as_deref(),
        Some("Sales_1")
    );

    // Name clash without overwrite.
    let (st, code, body) = s
        .publish_file(
            "overwrite=false",
            "Sales",
            &quarterly,
            "sample.hyper",
            &sample,
        )
        .await;
    assert_eq!((st, code.as_deref()), (403, Some("403007")));
    assert!(body.contains("<summary>Forbidden</summary><detail>The datasource 'Sales' already exists and may not be overwritten without the 'overwrite' flag set to 'true'.</detail>"), "{body}");
    // Names are case-sensitive.
    created(
        s.publish_file("", "sales", &quarterly, "sample.hyper", &sample)
            .await,
    );

    // Overwrite keeps the id, replaces content.
    let v2 = hyper_file(50_000, 2);
    let body = created(
        s.publish_file("overwrite=true", "Sales", &quarterly, "v2.hyper", &v2)
            .await,
    );
    assert_eq!(
        attr(&body, "datasource", "id").as_deref(),
        Some(id.as_str())
    );
    let d = emu.datasources().into_iter().find(|d| d.id == id).unwrap();
    assert_eq!((d.size, d.sha256.clone()), (v2.len() as u64, sha_hex(&v2)));
    assert_eq!(
        d.history.iter().map(|h| h.op.as_str()).collect::<Vec<_>>(),
        vec!["create", "overwrite"]
    );
    // Overwrite of a missing one creates it.
    created(
        s.publish_file("overwrite=true", "Fresh", &quarterly, "f.hyper", &v2)
            .await,
    );

    // Append.
    let v3 = hyper_file(10_000, 3);
    created(
        s.publish_file("append=true", "Sales", &quarterly, "more.hyper", &v3)
            .await,
    );
    let d = emu.datasources().into_iter().find(|d| d.id == id).unwrap();
    assert_eq!((d.size, d.sha256.clone()), (v3.len() as u64, sha_hex(&v3)));
    assert_eq!(d.history.last().unwrap().op, "append");
    assert_eq!(d.history.last().unwrap().sha256, sha_hex(&v3));
    let (st, code, body) = s
        .publish_file("append=true", "Nope", &quarterly, "more.hyper", &v3)
        .await;
    assert_eq!((st, code.as_deref()), (404, Some("404012")), "{body}");
    let tds = b"<?xml version='1.0'?><datasource/>".to_vec();
    created(s.publish_file("", "Tds", &quarterly, "x.tds", &tds).await);
    let (st, code, _) = s
        .publish_file("append=true", "Tds", &quarterly, "x.tds", &tds)
        .await;
    assert_eq!((st, code.as_deref()), (400, Some("400011")));
    let (st, code, _) = s
        .publish_file(
            "append=true&overwrite=true",
            "Sales",
            &quarterly,
            "x.hyper",
            &v3,
        )
        .await;
    assert_eq!((st, code.as_deref()), (400, Some("400000")));

    // Magic numbers.
    let (st, code, body) = s
        .publish_file(
            "",
            "Bad",
            &quarterly,
            "bad.hyper",
            b"PK\x03\x04 not a hyper file",
        )
        .await;
    assert_eq!((st, code.as_deref()), (400, Some("400011")));
    assert!(
        body.contains("There was a problem publishing the file 'bad.hyper'."),
        "{body}"
    );
    for (name, file, data) in [
        ("Zip", "z.tdsx", &b"PK\x03\x04rest"[..]),
        ("Bom", "b.tds", b"\xEF\xBB\xBF\n  <datasource/>"),
        ("Tde", "t.tde", b"\x20\x02\x01\x62...."),
    ] {
        created(s.publish_file("", name, &quarterly, file, data).await);
    }
    let (st, code, _) = s.publish_file("", "Txt", &quarterly, "t.csv", b"a,b").await;
    assert_eq!((st, code.as_deref()), (400, Some("400011")));
    let (st, code, _) = s
        .publish_file("", "Empty", &quarterly, "e.hyper", b"")
        .await;
    assert_eq!((st, code.as_deref()), (400, Some("400011")));

    // Project unknown / absent.
    let (st, code, _) = s
        .publish_file("", "X", "no-such-project", "x.hyper", &v3)
        .await;
    assert_eq!((st, code.as_deref()), (404, Some("404005")));
    let payload = r#"<tsRequest><datasource name="NoProject"/></tsRequest>"#;
    let file = Some(("tableau_datasource", "n.hyper", &v3[..]));
    let (st, _, body) = s
        .publish_raw("", Style::Docs, multipart(Style::Docs, payload, file))
        .await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(attr(&body, "project", "name").as_deref(), Some("default"));

    // Malformed payload, no file, too large.
    let malformed = multipart(Style::Docs, "<tsRequest><datasource", file);
    let (st, code, _) = s.publish_raw("", Style::Docs, malformed).await;
    assert_eq!((st, code.as_deref()), (400, Some("400000")));
    let (st, code, _) = s
        .publish_raw("", Style::Docs, multipart(Style::Docs, payload, None))
        .await;
    assert_eq!((st, code.as_deref()), (400, Some("400000")));
    let (st, code, body) = s
        .publish_file("", "Huge", &quarterly, "h.hyper", &hyper_file(MIB + 1, 4))
        .await;
    assert_eq!((st, code.as_deref()), (413, Some("413000")), "{body}");
    assert!(emu.datasources().iter().all(|d| d.name != "Huge"));
    // No leftovers from failed publishes.
    let incoming = std::fs::read_dir(emu.data_dir().join("incoming"))
        .unwrap()
        .count();
    assert_eq!(incoming, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_publish_jobs() {
    let emu = start(Config {
        job_duration: Duration::from_millis(1500),
        ..Config::default()
    });
    let s = signin(&emu.url(), "").await;
    let project = s.project_id("default").await;
    let data = hyper_file(200_000, 9);
    let id = s.upload(Style::FormData, &data).await;

    let (st, _, body) = s.commit_job(&id, "Async", &project).await;
    assert_eq!(st, 202);
    let job = attr(&body, "job", "id").unwrap();
    assert_eq!(attr(&body, "job", "mode").as_deref(), Some("Asynchronous"));
    assert_eq!(
        attr(&body, "job", "type").as_deref(),
        Some("PublishDatasource")
    );
    assert_eq!(attr(&body, "job", "progress").as_deref(), Some("0"));
    assert_eq!(attr(&body, "job", "finishCode").as_deref(), Some("1"));
    assert!(attr(&body, "job", "createdAt").is_some());

    // Not done yet: no completedAt, and the data source does not exist.
    let (st, _, body) = s.job(&job).await;
    assert_eq!(st, 200);
    assert!(attr(&body, "job", "completedAt").is_none(), "{body}");
    assert!(attr(&body, "job", "startedAt").is_some());
    assert!(emu.datasources().is_empty());
    let (_, _, list) = s.datasources("filter=name:eq:Async").await;
    assert_eq!(count(&list, "datasource"), 0);
    // The session is already consumed.
    assert_eq!(s.append(&id, Style::Docs, b"x").await.0, 404);

    tokio::time::sleep(Duration::from_millis(1700)).await;
    let (_, _, body) = s.job(&job).await;
    assert_eq!(
        attr(&body, "job", "finishCode").as_deref(),
        Some("0"),
        "{body}"
    );
    assert_eq!(attr(&body, "job", "progress").as_deref(), Some("100"));
    assert!(attr(&body, "job", "completedAt").is_some());
    let dss = emu.datasources();
    assert_eq!(dss.len(), 1);
    assert_eq!(
        attr(&body, "datasource", "id").as_deref(),
        Some(dss[0].id.as_str())
    );
    assert_eq!(
        (dss[0].size, dss[0].sha256.clone()),
        (data.len() as u64, sha_hex(&data))
    );

    // FailJob: the job fails with notes, nothing is published.
    let fail = FaultAction::FailJob {
        notes: "disk quota exceeded".into(),
    };
    emu.inject_fault(fault("POST", "/datasources", fail));
    let (st, _, body) = s
        .publish_file("asJob=true", "Doomed", &project, "d.hyper", &data)
        .await;
    assert_eq!(st, 202, "{body}");
    let job = attr(&body, "job", "id").unwrap();
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let (_, _, body) = s.job(&job).await;
    assert_eq!(attr(&body, "job", "finishCode").as_deref(), Some("1"));
    assert!(attr(&body, "job", "completedAt").is_some());
    assert!(
        body.contains("<notes>disk quota exceeded</notes>"),
        "{body}"
    );
    assert!(emu.datasources().iter().all(|d| d.name != "Doomed"));
    assert!(emu
        .requests()
        .iter()
        .any(|r| r.fault.as_deref() == Some("fail_job")));

    // Unknown job.
    let (st, code, _) = s.job("00000000-0000-0000-0000-000000000000").await;
    assert_eq!((st, code.as_deref()), (404, Some("404000")));

    // A different status for async publishes.
    let emu2 = start(Config {
        async_publish_status: 200,
        job_duration: Duration::ZERO,
        ..Config::default()
    });
    let s2 = signin(&emu2.url(), "").await;
    let p2 = s2.project_id("default").await;
    let (st, _, _) = s2
        .publish_file("asJob=true", "Now", &p2, "n.hyper", &data)
        .await;
    assert_eq!(st, 200);
    assert_eq!(emu2.datasources().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults() {
    let emu = start(Config::default());
    let s = signin(&emu.url(), "").await;

    // Error on the 2nd matching request only, with Retry-After.
    emu.inject_fault(Fault {
        method: Some("get".into()),
        path_contains: Some("/projects".into()),
        nth: 2,
        times: 1,
        action: FaultAction::Error {
            status: 429,
            code: "429000".into(),
            summary: "Too Many Requests".into(),
            detail: "Please retry after 1 minutes.".into(),
            retry_after: Some("60".into()),
        },
    });
    assert_eq!(s.projects("").await.0, 200);
    let r = s.get_raw(&s.site_url("projects")).await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "60");
    let body = r.text().await.unwrap();
    assert!(body.contains(r#"<error code="429000"><summary>Too Many Requests</summary><detail>Please retry after 1 minutes.</detail></error>"#));
    assert_eq!(s.projects("").await.0, 200);
    // Non-matching method doesn't count.
    emu.clear_faults();

    // Gateway-style error without a Tableau body.
    let gateway = FaultAction::Error {
        status: 502,
        code: String::new(),
        summary: String::new(),
        detail: String::new(),
        retry_after: None,
    };
    emu.inject_fault(Fault {
        times: 2,
        ..any_method_fault("/projects", gateway)
    });
    for _ in 0..2 {
        let r = s.get_raw(&s.site_url("projects")).await.unwrap();
        assert_eq!(r.status().as_u16(), 502);
        assert!(r.text().await.unwrap().starts_with("<html>"));
    }
    assert_eq!(s.projects("").await.0, 200);
    emu.clear_faults();

    // Reset: a connection error, not an HTTP status.
    emu.inject_fault(any_method_fault("/projects", FaultAction::Reset));
    let err = s.get_raw(&s.site_url("projects")).await;
    let err = err.expect_err("reset must be a transport error");
    assert!(err.status().is_none(), "{err:?}");
    assert_eq!(s.projects("").await.0, 200);
    let log = emu.requests();
    let reset = log
        .iter()
        .find(|r| r.fault.as_deref() == Some("reset"))
        .unwrap();
    assert_eq!(reset.status, 0);

    // Delay.
    emu.inject_fault(any_method_fault(
        "/projects",
        FaultAction::Delay { ms: 600 },
    ));
    let t = Instant::now();
    assert_eq!(s.projects("").await.0, 200);
    assert!(t.elapsed() >= Duration::from_millis(600));
    let t = Instant::now();
    assert_eq!(s.projects("").await.0, 200);
    assert!(t.elapsed() < Duration::from_millis(600));

    // ResetAfterBody on an append: the chunk is stored although the client saw no response.
    let id = s.initiate().await;
    emu.inject_fault(fault("PUT", "/fileUploads/", FaultAction::ResetAfterBody));
    let data = hyper_file(3 * MIB, 5);
    let err = s.put_chunk(&id, Style::Docs, &data).await;
    assert!(err.is_err());
    let (st, _, body) = s.append(&id, Style::Docs, b"tail").await;
    assert_eq!(st, 200);
    assert_eq!(attr(&body, "fileUpload", "fileSize").as_deref(), Some("4"));
    let entry = emu
        .requests()
        .into_iter()
        .find(|r| r.fault.as_deref() == Some("reset_after_body"))
        .unwrap();
    assert!(entry.body_bytes > 3 * MIB as u64);

    // ExpireToken.
    emu.inject_fault(any_method_fault("/projects", FaultAction::ExpireToken));
    let (st, code, _) = s.projects("").await;
    assert_eq!((st, code.as_deref()), (401, Some("401000")));
    assert_eq!(s.projects("").await.1.as_deref(), Some("401000"));

    // Faults serialise as documented.
    let f: Fault =
        serde_json::from_str(r#"{"path_contains":"/x","action":{"kind":"reset_after_body"}}"#)
            .unwrap();
    assert_eq!((f.nth, f.times), (1, 1));
    assert_eq!(f.action, FaultAction::ResetAfterBody);
    let f: Fault =
        serde_json::from_str(r#"{"nth":3,"times":2,"action":{"kind":"fail_job","notes":"n"}}"#)
            .unwrap();
    assert_eq!(f.action, FaultAction::FailJob { notes: "n".into() });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_sessions_bound_to_auth_and_discard_mode() {
    let emu = start(Config {
        bind_upload_sessions_to_auth: true,
        discard_data: true,
        ..Config::default()
    });
    let s = signin(&emu.url(), "").await;
    let project = s.project_id("default").await;
    let id = s.initiate().await;
    let data = hyper_file(100_000, 11);
    assert_eq!(s.append(&id, Style::Docs, &data).await.0, 200);
    // After re-sign-in the session is gone.
    let s2 = signin(&emu.url(), "").await;
    let (st, code, _) = s2.append(&id, Style::Docs, b"x").await;
    assert_eq!((st, code.as_deref()), (404, Some("404000")));

    // Without binding, a new auth session may continue; discard mode counts (and keeps the
    // first bytes for the type check) but neither hashes nor stores.
    let emu = start(Config {
        discard_data: true,
        max_chunk_bytes: 200_000,
        ..Config::default()
    });
    let s = signin(&emu.url(), "").await;
    let id = s.initiate().await;
    assert_eq!(s.append(&id, Style::Docs, &data[..50_000]).await.0, 200);
    let s = signin(&emu.url(), "").await;
    assert_eq!(s.append(&id, Style::Docs, &data[50_000..]).await.0, 200);
    let (st, _, body) = s
        .commit(&commit_query(&id), "D", &project_of(&s).await)
        .await;
    assert_eq!(st, 201, "{body}");
    let d = &emu.datasources()[0];
    assert_eq!((d.size, d.sha256.as_str()), (data.len() as u64, ""));
    // An oversized part is still refused in discard mode, after the body was read.
    let id = s.initiate().await;
    let big = hyper_file(200_001, 12);
    let (st, code, _) = s.append(&id, Style::Docs, &big).await;
    assert_eq!((st, code.as_deref()), (413, Some("413000")));
    // A single-request publish is counted the same way.
    let (st, _, body) = s
        .publish_file("", "D2", &project_of(&s).await, "d2.hyper", &data)
        .await;
    assert_eq!(st, 201, "{body}");
    let d2 = emu
        .datasources()
        .into_iter()
        .find(|d| d.name == "D2")
        .unwrap();
    assert_eq!((d2.size, d2.sha256.as_str()), (data.len() as u64, ""));
    assert_eq!(
        std::fs::read_dir(emu.data_dir().join("datasources"))
            .unwrap()
            .count(),
        0
    );
    let _ = project;
}

async fn project_of(s: &Session) -> String {
    s.project_id("default").await
}
