//! The fault matrix: every fault at every phase of a chunked, asynchronous publish, with PAT
//! and password sign-in, against the emulator. Each case asserts from the emulator's log and
//! store: success with the exact bytes, or the expected status within a bounded time; the
//! number of sign-ins, upload sessions and applied publishes; never a duplicate data source or
//! a double append. The results table is compared with `docs/fault-matrix.md`; regenerate it
//! with `TP_UPDATE_FAULT_MATRIX=1 cargo test --test fault_matrix`.

mod common;

use std::time::{Duration, Instant};

use common::{extract, publish, sha256_hex, Env, Phase};
use serde_json::json;
use tableau_emulator::{Config as EmuConfig, FaultAction};
use tableau_publisher::{ErrorKind, Publisher};

const KIB: usize = 1024;
/// 5 appends of 128 KiB: first, middle (3rd) and last are distinct.
const DATA_LEN: usize = 640 * KIB;
const CASE_LIMIT: Duration = Duration::from_secs(45);

/// How a fault is expected to play out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// The session ends: sign in again, re-send.
    SessionEnds,
    /// Throttled for a short while: wait, re-send.
    Throttled,
    /// Throttled for longer than allowed: fail with TP_ERR_RATE_LIMITED.
    ThrottledTooLong,
    /// The request may have applied (5xx, reset, timeout, lost answer): safe retry for reads,
    /// new upload session for appends, verify-then-resend for the commit.
    Ambiguous,
    /// Slow but fine.
    Slow,
    /// The publish job fails on the server: TP_ERR_SERVER.
    JobFails,
}

struct FaultKind {
    name: &'static str,
    class: Class,
    action: fn() -> FaultAction,
}

fn error(status: u16, code: &str, detail: &str, retry_after: Option<&str>) -> FaultAction {
    FaultAction::Error {
        status,
        code: code.into(),
        summary: "Injected".into(),
        detail: detail.into(),
        retry_after: retry_after.map(Into::into),
    }
}

const FAULTS: &[FaultKind] = &[
    FaultKind {
        name: "token expires",
        class: Class::SessionEnds,
        action: || FaultAction::ExpireToken,
    },
    FaultKind {
        name: "session ended by a sign-in elsewhere (401002)",
        class: Class::SessionEnds,
        action: || FaultAction::KillSession,
    },
    FaultKind {
        name: "429 with Retry-After: 1",
        class: Class::Throttled,
        action: || error(429, "429000", "Too many requests.", Some("1")),
    },
    FaultKind {
        name: "429, \"retry after 1 seconds\" in detail",
        class: Class::Throttled,
        action: || {
            error(
                429,
                "429000",
                "Too many requests for 'api.rest.publish'. Please retry after 1 seconds.",
                None,
            )
        },
    },
    FaultKind {
        name: "429, \"retry after 29 minutes\"",
        class: Class::ThrottledTooLong,
        action: || {
            error(
                429,
                "429000",
                "Too many requests for 'api.rest.publish'. Please retry after 29 minutes.",
                None,
            )
        },
    },
    FaultKind {
        name: "500 (Tableau error)",
        class: Class::Ambiguous,
        action: || error(500, "500000", "Internal error", None),
    },
    FaultKind {
        name: "502 (gateway page)",
        class: Class::Ambiguous,
        action: || error(502, "", "", None),
    },
    FaultKind {
        name: "503 (Tableau error)",
        class: Class::Ambiguous,
        action: || error(503, "503000", "Unavailable", None),
    },
    FaultKind {
        name: "504 (gateway page)",
        class: Class::Ambiguous,
        action: || error(504, "", "", None),
    },
    FaultKind {
        name: "reset before the body is read",
        class: Class::Ambiguous,
        action: || FaultAction::Reset,
    },
    FaultKind {
        name: "reset mid-body",
        class: Class::Ambiguous,
        action: || FaultAction::ResetMidBody { after_bytes: 1000 },
    },
    FaultKind {
        name: "applied, answer lost",
        class: Class::Ambiguous,
        action: || FaultAction::ResetAfterBody,
    },
    FaultKind {
        name: "applied, answer cut mid-response",
        class: Class::Ambiguous,
        action: || FaultAction::ResetMidResponse,
    },
    FaultKind {
        name: "200 ms delay",
        class: Class::Slow,
        action: || FaultAction::Delay { ms: 200 },
    },
    FaultKind {
        name: "3 s delay (> request timeout), then applied",
        class: Class::Ambiguous,
        action: || FaultAction::Delay { ms: 3000 },
    },
    FaultKind {
        name: "publish job fails",
        class: Class::JobFails,
        action: || FaultAction::FailJob {
            notes: "injected failure".into(),
        },
    },
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthKind {
    Pat,
    Password,
}

struct Case {
    fault: &'static FaultKind,
    phase: Phase,
    auth: AuthKind,
}

/// What the case must end in.
struct Expected {
    status: Option<ErrorKind>,
    sign_ins: usize,
    upload_sessions: usize,
}

fn expected(case: &Case) -> Expected {
    let (class, phase) = (case.fault.class, case.phase);
    let status = match class {
        // Job status unreadable: the data source itself shows the publish applied.
        Class::ThrottledTooLong if phase == Phase::JobPoll => None,
        Class::ThrottledTooLong => Some(ErrorKind::RateLimited),
        Class::JobFails => Some(ErrorKind::Server),
        _ => None,
    };
    let upload_sessions = if status == Some(ErrorKind::RateLimited) && phase == Phase::ProjectLookup
    {
        0
    } else if phase.is_append() && class == Class::Ambiguous {
        2
    } else {
        1
    };
    Expected {
        status,
        sign_ins: if class == Class::SessionEnds { 2 } else { 1 },
        upload_sessions,
    }
}

struct Outcome {
    result: String,
    sign_ins: usize,
    upload_sessions: usize,
    publishes: usize,
}

fn config(env: &Env, auth: AuthKind) -> String {
    let auth = match auth {
        AuthKind::Pat => json!({"method": "pat", "token_name": "ci", "token_secret": "ci-secret"}),
        AuthKind::Password => {
            json!({"method": "password", "username": "admin", "password": "admin-pass"})
        }
    };
    env.config(json!({
        "auth": auth,
        "single_request_max_bytes": 256 * KIB,
        "chunk_size_bytes": 128 * KIB,
        "request_timeout_secs": 2,
        "retry": {
            "max_attempts": 4, "base_delay_ms": 20, "max_delay_ms": 100,
            "max_rate_limit_wait_secs": 3, "commit_verify_secs": 3, "max_upload_restarts": 2
        }
    }))
}

fn run_case(case: &Case) -> Result<Outcome, String> {
    let env = Env::start();
    let data = extract(DATA_LEN, 42);
    let (method, path, nth) = case.phase.target();
    env.fault(method, path, nth, 1, (case.fault.action)());
    let started = Instant::now();
    let mut p = Publisher::new(&config(&env, case.auth)).map_err(|e| e.to_string())?;
    common::feed(&mut p, &data).map_err(|e| e.to_string())?;
    let result = p.finalize_and_publish().cloned();
    let elapsed = started.elapsed();
    drop(p); // as tp_free: the published spool's deletion has finished
    let want = expected(case);
    let log = env.requests();
    let sign_ins = log
        .iter()
        .filter(|r| r.path.ends_with("/auth/signin") && r.status == 200)
        .count();
    let sessions = env.emu.upload_sessions();
    let publishes = log
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/datasources") && r.applied)
        .count();
    let stored = env.datasources();
    let mut problems = Vec::new();
    if elapsed > CASE_LIMIT {
        problems.push(format!("took {elapsed:?}"));
    }
    let result_text = match (&result, want.status) {
        (Ok(r), None) => {
            if r.sha256 != sha256_hex(&data) {
                problems.push("result sha256 differs".into());
            }
            match stored.as_slice() {
                [d] => {
                    if d.sha256 != sha256_hex(&data) || d.size != DATA_LEN as u64 {
                        problems.push("stored bytes differ".into());
                    }
                    if d.history.len() != 1 {
                        problems.push(format!("data source history {:?}", d.history));
                    }
                    if r.datasource_id.as_deref().is_some_and(|id| id != d.id) {
                        problems.push("result names another data source".into());
                    }
                }
                other => problems.push(format!("{} data sources stored", other.len())),
            }
            let committed: Vec<_> = sessions.iter().filter(|s| s.committed).collect();
            if committed.len() != 1 || committed[0].bytes != DATA_LEN as u64 {
                problems.push(format!("committed upload sessions {committed:?}"));
            }
            if publishes != 1 {
                problems.push(format!("{publishes} publishes applied"));
            }
            if !env.spool_files().is_empty() || !env.spools_being_removed().is_empty() {
                problems.push("spool left after success".into());
            }
            "ok, bytes exact".to_owned()
        }
        (Err(e), Some(kind)) if e.kind() == kind => {
            if e.message().contains("ci-secret") || e.message().contains("admin-pass") {
                problems.push("secret in message".into());
            }
            if env.spool_files().len() != 1 || env.manifests().len() != 1 {
                problems.push("spool or manifest not kept".into());
            } else if std::fs::read(&env.spool_files()[0]).map(|b| b == data).ok() != Some(true) {
                problems.push("kept spool differs".into());
            }
            if stored.len() > 1 {
                problems.push("duplicate data source".into());
            }
            if kind == ErrorKind::RateLimited && !e.message().contains("publish again after") {
                problems.push(format!("rate-limit message says not when: {e}"));
            }
            format!("{:?}", tableau_publisher::ffi::tp_status::from(kind))
        }
        (Ok(_), Some(kind)) => {
            problems.push(format!("succeeded, expected {kind:?}"));
            "ok (unexpected)".into()
        }
        (Err(e), _) => {
            problems.push(format!("failed: {e}"));
            format!("{:?}", tableau_publisher::ffi::tp_status::from(e.kind()))
        }
    };
    if sign_ins != want.sign_ins {
        problems.push(format!("{sign_ins} sign-ins, expected {}", want.sign_ins));
    }
    if sessions.len() != want.upload_sessions {
        problems.push(format!(
            "{} upload sessions, expected {}",
            sessions.len(),
            want.upload_sessions
        ));
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(Outcome {
        result: result_text,
        sign_ins,
        upload_sessions: sessions.len(),
        publishes,
    })
}

fn compare_with_doc(table: &str) {
    let root = env!("CARGO_MANIFEST_DIR");
    let doc = format!("{root}/docs/fault-matrix.md");
    let generated = format!("{root}/target/fault-matrix.md");
    let _ = std::fs::write(&generated, table);
    if std::env::var_os("TP_UPDATE_FAULT_MATRIX").is_some() {
        std::fs::write(&doc, table).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&doc).unwrap_or_default();
    assert!(
        committed == table,
        "docs/fault-matrix.md differs from this run's results ({generated}); if the change is intended, run `TP_UPDATE_FAULT_MATRIX=1 cargo test --test fault_matrix` and commit it"
    );
}

const HEADER: &str = "<!-- Generated by tests/fault_matrix.rs; do not edit. Reproduce: TP_UPDATE_FAULT_MATRIX=1 cargo test --test fault_matrix -->\n";

#[test]
fn fault_matrix() {
    let mut cases = Vec::new();
    for fault in FAULTS {
        for phase in Phase::ALL {
            if fault.class == Class::JobFails && phase != Phase::Commit {
                continue; // only the commit creates a job
            }
            for auth in [AuthKind::Pat, AuthKind::Password] {
                cases.push(Case { fault, phase, auth });
            }
        }
    }
    let outcomes = common::run_all(&cases, 8, run_case);

    let mut table = String::from(HEADER);
    table.push_str("# Fault matrix\n\nA 640 KiB extract published in 5 appends of 128 KiB as an asynchronous job; one fault injected per case at the given phase. Columns: the outcome, then what the emulator saw: successful sign-ins, upload sessions created, publishes applied. Every \"ok\" row was checked byte for byte (sha256), with exactly one data source, one history entry and one committed upload session holding exactly the data; every failure kept the spool and its manifest.\n\n");
    table.push_str("| Fault | Phase | Auth | Outcome | Sign-ins | Upload sessions | Publishes |\n|---|---|---|---|---|---|---|\n");
    let mut failures = Vec::new();
    for (case, outcome) in cases.iter().zip(outcomes) {
        let auth = match case.auth {
            AuthKind::Pat => "PAT",
            AuthKind::Password => "password",
        };
        match outcome {
            Ok(o) => table.push_str(&format!(
                "| {} | {} | {auth} | {} | {} | {} | {} |\n",
                case.fault.name,
                case.phase.name(),
                o.result,
                o.sign_ins,
                o.upload_sessions,
                o.publishes
            )),
            Err(why) => failures.push(format!(
                "{} at {} ({auth}): {why}",
                case.fault.name,
                case.phase.name()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    table.push_str(&special_cases());
    compare_with_doc(&table);
}

/// Cases outside the grid: tokens that keep dying, upload sessions bound to the auth session,
/// and permanent errors that must fail fast (one request, no retry).
fn special_cases() -> String {
    let mut out = String::from("\n## Beyond the grid\n\n| Case | Outcome | Sign-ins | Upload sessions | Requests of the failing kind |\n|---|---|---|---|---|\n");
    let data = extract(DATA_LEN, 7);

    // Another job keeps signing in with the same PAT: every session dies at once.
    let env = Env::start();
    env.fault("GET", "/projects", 1, 100, FaultAction::KillSession);
    let started = Instant::now();
    let err = publish(&config(&env, AuthKind::Pat), &data).unwrap_err();
    assert!(started.elapsed() < CASE_LIMIT);
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(
        err.message()
            .contains("used by another job at the same time"),
        "{err}"
    );
    let sign_ins = env
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/signin") && r.status == 200)
        .count();
    assert_eq!(sign_ins, 2, "one re-sign-in, then stop");
    out.push_str(&format!(
        "| every new session ends at once (PAT shared with another job) | TP_ERR_AUTH, names the shared PAT | {sign_ins} | 0 | {} |\n",
        env.count("GET", "/projects")
    ));

    // Upload sessions bound to the auth session: after re-sign-in the upload starts over.
    let env = Env::with(EmuConfig {
        bind_upload_sessions_to_auth: true,
        ..EmuConfig::default()
    });
    env.fault("PUT", "/fileUploads/", 3, 1, FaultAction::ExpireToken);
    let r = publish(&config(&env, AuthKind::Pat), &data).unwrap();
    assert_eq!(r.sha256, sha256_hex(&data));
    assert_eq!(env.datasource("Sales").sha256, sha256_hex(&data));
    let sessions = env.emu.upload_sessions();
    assert_eq!(sessions.len(), 2);
    out.push_str(&format!(
        "| token expires at the middle append, upload sessions bound to the auth session | ok, bytes exact | {} | {} | - |\n",
        r.sign_ins,
        sessions.len()
    ));

    // One PAT, four handles publishing at once: the session they share is ended (a sign-in
    // elsewhere) in the middle of their uploads. One of them signs in again, the others use
    // its token, and all four finish.
    let env = Env::start();
    env.fault("PUT", "/fileUploads/", 8, 1, FaultAction::KillSession);
    let inputs: Vec<Vec<u8>> = (0..4).map(|i| extract(DATA_LEN, 50 + i)).collect();
    let start = std::sync::Barrier::new(4);
    let results: Vec<_> = std::thread::scope(|s| {
        let threads: Vec<_> = inputs
            .iter()
            .enumerate()
            .map(|(i, data)| {
                let mut p = Publisher::new(&env.config(json!({
                    "datasource_name": format!("Shared {i}"),
                    "single_request_max_bytes": 256 * KIB,
                    "chunk_size_bytes": 128 * KIB,
                })))
                .unwrap();
                common::feed(&mut p, data).unwrap();
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    p.finalize_and_publish().cloned()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (i, (r, data)) in results.iter().zip(&inputs).enumerate() {
        let r = r.as_ref().unwrap_or_else(|e| panic!("handle {i}: {e}"));
        assert_eq!(r.sha256, sha256_hex(data));
        assert_eq!(
            env.datasource(&format!("Shared {i}")).sha256,
            sha256_hex(data)
        );
    }
    let sign_ins = env
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/signin") && r.status == 200)
        .count();
    assert_eq!(
        sign_ins, 2,
        "the first sign-in and one renewal, for all four"
    );
    out.push_str(&format!(
        "| one PAT, 4 handles at once; their shared session ends mid-upload | ok ×4, bytes exact | {sign_ins} | {} | - |\n",
        env.emu.upload_sessions().len()
    ));

    // Permanent errors: no retry, a message naming cause and fix.
    let permanent: [(&str, &str, &str, FaultAction, ErrorKind, &str); 3] = [
        (
            "403 permission denied at commit",
            "POST",
            "/datasources",
            error(403, "403004", "no permission", None),
            ErrorKind::Permission,
            "permission",
        ),
        (
            "400 malformed request at commit",
            "POST",
            "/datasources",
            error(
                400,
                "400000",
                "Payload is either malformed XML or incomplete",
                None,
            ),
            ErrorKind::Server,
            "400000",
        ),
        (
            "404 project vanished at commit",
            "POST",
            "/datasources",
            error(404, "404005", "Project not found", None),
            ErrorKind::NotFound,
            "404005",
        ),
    ];
    for (name, method, path, action, kind, says) in permanent {
        let env = Env::start();
        env.fault(method, path, 1, 1, action);
        let err = publish(&config(&env, AuthKind::Pat), &data).unwrap_err();
        assert_eq!(err.kind(), kind, "{name}: {err}");
        assert!(err.message().contains(says), "{name}: {err}");
        let sent = env.count(method, path);
        assert_eq!(sent, 1, "{name}: not retried");
        out.push_str(&format!(
            "| {name} | {:?} | 1 | {} | {sent} |\n",
            tableau_publisher::ffi::tp_status::from(kind),
            env.emu.upload_sessions().len()
        ));
    }
    let env = Env::start();
    let cfg =
        env.config(json!({"auth": {"method": "pat", "token_name": "ci", "token_secret": "wrong"}}));
    let err = publish(&cfg, &data).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(
        err.message().contains("401001") && err.message().contains("token name and secret"),
        "{err}"
    );
    let attempts = env.count("POST", "/auth/signin");
    assert_eq!(attempts, 1, "bad credentials are not retried");
    out.push_str(&format!(
        "| wrong PAT secret (401001 at sign-in) | TP_ERR_AUTH | 0 | 0 | {attempts} |\n"
    ));
    let err = publish(&env.config(json!({"project": "Nowhere"})), &data).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    out.push_str("| project not found | TP_ERR_NOT_FOUND | 1 | 0 | 1 |\n");
    out
}
