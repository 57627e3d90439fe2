//! Log lines and cancelling from another thread, against the emulator.
//!
//! The log tells a user what happened and why (a re-authentication with Tableau's code, each
//! retry with its reason and delay, an upload restarted in a new upload session, the kept spool
//! and the resume command on failure) and never holds a secret: every line of a publish that
//! signed in again is searched for the PAT secret and for each session token the server issued
//! (seen by a relay in front of the emulator, since the emulator never logs them).
//!
//! A [`Canceller`] stops a call wherever it waits (blocked writing a slow upload, blocked reading
//! a late answer, sleeping before a retry, polling the job, waiting for a turn at the session):
//! the call returns `Cancelled` within a second of the cancel, signs out, and keeps the spool
//! with its manifest. Timing-dependent, so the mid-upload case runs ten rounds.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::tap::Tap;
use common::{extract, sha256_hex, Env, MIB};
use serde_json::json;
use tableau_emulator::FaultAction;
use tableau_publisher::log::LogLevel;
use tableau_publisher::progress::{Phase, Progress};
use tableau_publisher::{Canceller, Error, ErrorKind, Publisher};

/// The longest a cancelled call may take to return.
const WITHIN: Duration = Duration::from_secs(1);

type Lines = Arc<Mutex<Vec<(LogLevel, String)>>>;

/// Collects the publisher's log lines.
fn collect(p: &mut Publisher) -> Lines {
    let lines: Lines = Arc::default();
    let sink = lines.clone();
    p.set_log(Some(Box::new(move |level, message: &str| {
        sink.lock().unwrap().push((level, message.to_owned()));
    })));
    lines
}

fn dump(lines: &Lines) -> String {
    lines
        .lock()
        .unwrap()
        .iter()
        .map(|(l, m)| format!("  {}: {m}\n", l.name()))
        .collect()
}

/// The lines at `level` that contain every one of `parts`.
fn find(lines: &Lines, level: LogLevel, parts: &[&str]) -> Vec<String> {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter(|(l, m)| *l == level && parts.iter().all(|p| m.contains(p)))
        .map(|(_, m)| m.clone())
        .collect()
}

fn chunked(env: &Env, server_url: &str, name: &str) -> String {
    env.config(json!({
        "server_url": server_url,
        "datasource_name": name,
        "chunk_size_bytes": MIB,
        "single_request_max_bytes": MIB,
        "retry": {"max_attempts": 4, "base_delay_ms": 20, "max_delay_ms": 100},
    }))
}

fn sign_outs(env: &Env) -> usize {
    env.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/auth/signout"))
        .count()
}

#[test]
fn a_token_expiring_mid_upload_is_logged_with_its_reason_and_no_line_holds_a_secret() {
    let env = Env::start();
    let tap = Tap::start(&env.emu.url());
    env.fault("PUT", "/fileUploads/", 2, 1, FaultAction::ExpireToken);
    let data = extract(4 * MIB, 1);
    let mut p = Publisher::new(&chunked(&env, &tap.url, "Logged")).unwrap();
    let lines = collect(&mut p);
    p.preflight().unwrap();
    common::feed(&mut p, &data).unwrap();
    let r = p.finalize_and_publish().unwrap().clone();
    assert_eq!(r.sha256, sha256_hex(&data));
    assert_eq!(r.sign_ins, 2, "one new sign-in after the expiry");
    let all = dump(&lines);

    let reauth = find(
        &lines,
        LogLevel::Warn,
        &[
            "the session expired or was ended (Tableau error 401000)",
            "during Append to File Upload (bytes 1048576..2097152)",
            "signing in again (re-authentication 1 of at most",
        ],
    );
    assert_eq!(reauth.len(), 1, "one re-authentication line:\n{all}");
    assert_eq!(
        find(
            &lines,
            LogLevel::Info,
            &[
                "signed in to the Default site of http://127.0.0.1:",
                "as personal access token \"ci\""
            ]
        )
        .len(),
        3,
        "the preflight's sign-in, the publish's, and the one after the expiry:\n{all}"
    );
    assert_eq!(
        find(
            &lines,
            LogLevel::Info,
            &["preflight passed", "mode \"create_new\" can publish"]
        )
        .len(),
        1,
        "{all}"
    );
    let done = find(
        &lines,
        LogLevel::Info,
        &["published data source \"Logged\"", &r.sha256],
    );
    assert_eq!(done.len(), 1, "{all}");
    assert!(
        done[0].contains("4 chunk(s) in 1 upload session(s); 2 sign-in(s)"),
        "{all}"
    );
    assert!(
        find(&lines, LogLevel::Error, &[]).is_empty(),
        "no error line:\n{all}"
    );

    let tokens = tap.tokens();
    assert!(
        tokens.len() >= 3,
        "the relay saw the session tokens: {}",
        tokens.len()
    );
    for (_, line) in lines.lock().unwrap().iter() {
        assert!(
            !line.contains("ci-secret"),
            "the PAT secret in a log line: {line}"
        );
        for token in &tokens {
            // The whole token and its random part (the emulator appends the site id).
            let random = token.split('|').next().unwrap();
            assert!(
                !line.contains(token.as_str()) && !line.contains(random),
                "a session token in a log line: {line}"
            );
        }
    }
}

#[test]
fn retries_after_503_and_429_are_logged_with_their_reason_and_delay() {
    let env = Env::start();
    env.fault(
        "GET",
        "/projects",
        1,
        1,
        FaultAction::Error {
            status: 503,
            code: String::new(),
            summary: String::new(),
            detail: String::new(),
            retry_after: None,
        },
    );
    env.fault(
        "GET",
        "/datasources",
        1,
        1,
        FaultAction::Error {
            status: 429,
            code: "429000".into(),
            summary: "Too Many Requests".into(),
            detail: "Slow down".into(),
            retry_after: Some("1".into()),
        },
    );
    let mut p = Publisher::new(&chunked(&env, &env.emu.url(), "Retried")).unwrap();
    let lines = collect(&mut p);
    common::feed(&mut p, &extract(200_000, 2)).unwrap();
    let r = p.finalize_and_publish().unwrap().clone();
    assert_eq!(r.retries, 2);
    let all = dump(&lines);
    assert_eq!(
        find(
            &lines,
            LogLevel::Warn,
            &[
                "Query projects: HTTP 503 Service Unavailable; retrying in ",
                " ms (attempt 2 of 4)"
            ]
        )
        .len(),
        1,
        "{all}"
    );
    assert_eq!(
        find(
            &lines,
            LogLevel::Warn,
            &["Query datasources: Tableau is throttling requests (HTTP 429) and asks to wait 1.0 s; retrying in 1.0 s (attempt 2 of 4)"]
        )
        .len(),
        1,
        "{all}"
    );
}

#[test]
fn a_reset_mid_upload_is_logged_as_a_restart_in_a_new_upload_session() {
    let env = Env::start();
    env.fault(
        "PUT",
        "/fileUploads/",
        2,
        1,
        FaultAction::ResetMidBody {
            after_bytes: 64 * 1024,
        },
    );
    let data = extract(3 * MIB, 3);
    let mut p = Publisher::new(&chunked(&env, &env.emu.url(), "Restarted")).unwrap();
    let lines = collect(&mut p);
    common::feed(&mut p, &data).unwrap();
    let r = p.finalize_and_publish().unwrap().clone();
    assert_eq!(
        (r.upload_sessions, r.sha256.clone()),
        (2, sha256_hex(&data))
    );
    let all = dump(&lines);
    let restart = find(
        &lines,
        LogLevel::Warn,
        &[
            "Append to File Upload (bytes 1048576..2097152): the connection to",
            "it is unknown what the server kept of the last request, so the upload starts again from the first byte in a new upload session (restart 1 of at most",
        ],
    );
    assert_eq!(restart.len(), 1, "{all}");
}

#[test]
fn a_failure_logs_the_final_error_with_the_kept_spool_and_the_resume_command() {
    let env = Env::start();
    let data = extract(200_000, 4);
    common::publish(&chunked(&env, &env.emu.url(), "Twice"), &data).unwrap();
    let mut p = Publisher::new(&chunked(&env, &env.emu.url(), "Twice")).unwrap();
    let lines = collect(&mut p);
    common::feed(&mut p, &data).unwrap();
    let e = p.finalize_and_publish().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    let all = dump(&lines);
    let last = lines.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last, (LogLevel::Error, e.message().to_owned()), "{all}");
    assert!(
        last.1.contains("already exists")
            && last.1.contains("is kept at")
            && last.1.contains("tabpub resume "),
        "{all}"
    );
}

/// Runs `p.finalize_and_publish()` on a thread; once `ready` fires, waits `after` and cancels
/// from this thread. The outcome, and the time from the cancel to the return.
fn cancel_mid_call(
    mut p: Publisher,
    ready: mpsc::Receiver<()>,
    after: Duration,
) -> (Result<(), Error>, Duration) {
    let canceller = p.canceller();
    let worker = std::thread::spawn(move || {
        let r = p.finalize_and_publish().map(|_| ());
        (r, Instant::now())
    });
    ready
        .recv_timeout(Duration::from_secs(60))
        .expect("the call got to where it is cancelled");
    std::thread::sleep(after);
    let at = Instant::now();
    canceller.cancel();
    let (r, returned) = worker.join().unwrap();
    (r, returned.saturating_duration_since(at))
}

/// A progress function that fires `tx` once, when `phase` is first reported.
fn signal_at(phase: Phase, tx: mpsc::Sender<()>) -> tableau_publisher::progress::ProgressFn {
    let mut fired = false;
    Box::new(move |p: &Progress| {
        if !fired && p.phase == phase {
            fired = true;
            let _ = tx.send(());
        }
        true
    })
}

fn assert_cancelled(r: &Result<(), Error>, took: Duration, what: &str) {
    let e = r.as_ref().expect_err(what);
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{what}: {e}");
    assert!(
        e.message()
            .contains("cancelled by the host (it asked to cancel)"),
        "{what}: {e}"
    );
    assert!(
        e.message().contains("tabpub resume "),
        "{what}: the resume hint: {e}"
    );
    assert!(took < WITHIN, "{what}: returned {took:?} after the cancel");
}

#[test]
fn cancel_from_another_thread_mid_upload_returns_within_a_second_signs_out_and_keeps_the_spool() {
    let env = Env::start();
    let data = extract(4 * MIB, 5);
    let rounds = 10;
    for round in 0..rounds {
        env.emu.clear_faults();
        // Even rounds block in a write (the server reads the body slowly), odd rounds in a
        // read (the server holds its answer).
        let action = if round % 2 == 0 {
            FaultAction::SlowBody {
                bytes_per_sec: 256 * 1024,
            }
        } else {
            FaultAction::DelayAnswer { ms: 30_000 }
        };
        env.fault("PUT", "/fileUploads/", 1, 100, action);
        let name = format!("Cancelled {round}");
        let mut p = Publisher::new(&chunked(&env, &env.emu.url(), &name)).unwrap();
        let lines = collect(&mut p);
        common::feed(&mut p, &data).unwrap();
        let (tx, rx) = mpsc::channel();
        p.set_progress(Some(signal_at(Phase::Uploading, tx)));
        let outs_before = sign_outs(&env);
        let (r, took) = cancel_mid_call(p, rx, Duration::from_millis(300));
        assert_cancelled(&r, took, &format!("round {round}"));
        assert_eq!(
            sign_outs(&env),
            outs_before + 1,
            "round {round}: signed out"
        );
        assert_eq!(
            env.manifests().len(),
            round + 1,
            "round {round}: the spool is kept with its manifest"
        );
        assert!(
            env.datasources().iter().all(|d| d.name != name),
            "round {round}: nothing published"
        );
        let all = dump(&lines);
        assert_eq!(
            find(
                &lines,
                LogLevel::Warn,
                &["cancelled by the host while uploading"]
            )
            .len(),
            1,
            "{all}"
        );
        assert!(
            find(
                &lines,
                LogLevel::Error,
                &["cancelled by the host", "tabpub resume "]
            )
            .len()
                == 1,
            "{all}"
        );
    }
    // Every kept spool is still there, beside its manifest.
    assert_eq!(env.spool_files().len(), rounds);
}

#[test]
fn cancel_during_a_retry_back_off_returns_within_a_second() {
    let env = Env::start();
    env.fault(
        "GET",
        "/projects",
        1,
        10,
        FaultAction::Error {
            status: 503,
            code: String::new(),
            summary: String::new(),
            detail: String::new(),
            retry_after: None,
        },
    );
    let config = env.config(json!({
        "datasource_name": "Backing off",
        "retry": {"max_attempts": 5, "base_delay_ms": 20_000, "max_delay_ms": 20_000, "max_elapsed_secs": 600},
    }));
    let mut p = Publisher::new(&config).unwrap();
    common::feed(&mut p, &extract(100_000, 6)).unwrap();
    let (tx, rx) = mpsc::channel();
    p.set_log(Some(Box::new(move |_, message: &str| {
        if message.contains("retrying in") {
            let _ = tx.send(());
        }
    })));
    let (r, took) = cancel_mid_call(p, rx, Duration::from_millis(200));
    assert_cancelled(&r, took, "during the back-off");
    assert_eq!(
        env.count("GET", "/projects"),
        1,
        "no retry was sent after the cancel"
    );
    assert_eq!(sign_outs(&env), 1);
}

#[test]
fn cancel_while_polling_the_job_returns_within_a_second() {
    let env = Env::with(tableau_emulator::Config {
        job_duration: Duration::from_secs(120),
        ..tableau_emulator::Config::default()
    });
    let mut p = Publisher::new(&chunked(&env, &env.emu.url(), "Job")).unwrap();
    common::feed(&mut p, &extract(2 * MIB, 7)).unwrap();
    let (tx, rx) = mpsc::channel();
    p.set_progress(Some(signal_at(Phase::WaitingForJob, tx)));
    let (r, took) = cancel_mid_call(p, rx, Duration::from_millis(700));
    assert_cancelled(&r, took, "while polling the job");
    let polls: Vec<_> = env
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.contains("/jobs/"))
        .collect();
    assert!(!polls.is_empty(), "the job was polled");
    let job_id = polls[0].path.rsplit('/').next().unwrap().to_owned();
    assert_eq!(sign_outs(&env), 1);
    let manifest = std::fs::read_to_string(&env.manifests()[0]).unwrap();
    assert!(
        manifest.contains(&format!("\"{job_id}\"")),
        "the kept manifest knows job {job_id}, to check it before publishing again: {manifest}"
    );
}

#[test]
fn cancel_while_waiting_for_a_turn_at_the_session_returns_within_a_second() {
    let env = Env::with(tableau_emulator::Config {
        end_session_on_second_connection: true,
        ..tableau_emulator::Config::default()
    });
    // Whoever commits first keeps its turn a while.
    env.fault(
        "POST",
        "/datasources",
        1,
        1,
        FaultAction::Delay { ms: 5000 },
    );
    let (tx, rx) = mpsc::channel::<Canceller>();
    let start = Arc::new(std::sync::Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let mut p =
                Publisher::new(&chunked(&env, &env.emu.url(), &format!("Turn {i}"))).unwrap();
            common::feed(&mut p, &extract(4 * MIB, 80 + i)).unwrap();
            let (tx, canceller) = (tx.clone(), p.canceller());
            let mut fired = false;
            p.set_progress(Some(Box::new(move |pr: &Progress| {
                if pr.phase == Phase::WaitingForSession && !fired {
                    fired = true;
                    let _ = tx.send(canceller.clone());
                }
                true
            })));
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let r = p.finalize_and_publish().map(|_| ());
                (r, Instant::now())
            })
        })
        .collect();
    let waiting = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a handle waited for its turn");
    std::thread::sleep(Duration::from_millis(300));
    let at = Instant::now();
    waiting.cancel();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let cancelled: Vec<_> = results
        .iter()
        .filter(|(r, _)| matches!(r, Err(e) if e.kind() == ErrorKind::Cancelled))
        .collect();
    assert_eq!(
        cancelled.len(),
        1,
        "{:?}",
        results
            .iter()
            .map(|(r, _)| r.as_ref().map_err(|e| e.kind()))
            .collect::<Vec<_>>()
    );
    let (r, returned) = cancelled[0];
    assert_cancelled(
        r,
        returned.saturating_duration_since(at),
        "while waiting for the turn",
    );
    assert!(
        results.iter().any(|(r, _)| r.is_ok()),
        "the handle holding the turn published"
    );
}

#[test]
fn a_cancel_before_the_call_stops_it_at_once_and_is_used_up_by_it() {
    fn send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    send_sync_clone::<Canceller>();

    let env = Env::start();
    let data = extract(200_000, 8);
    let mut p = Publisher::new(&chunked(&env, &env.emu.url(), "Early")).unwrap();
    common::feed(&mut p, &data).unwrap();
    let canceller = p.canceller();

    canceller.cancel();
    let e = p.preflight().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Cancelled);
    assert!(
        env.requests().is_empty(),
        "no request at all: {:?}",
        env.requests()
    );
    p.preflight()
        .expect("the cancel was used up by the preflight it stopped");

    canceller.cancel();
    canceller.cancel(); // twice is one request
    let requests = env.requests().len();
    let e = p.finalize_and_publish().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Cancelled);
    assert!(e.message().contains("tabpub resume "), "{e}");
    assert_eq!(
        env.requests().len(),
        requests,
        "no request for the cancelled publish"
    );
    assert_eq!(
        env.manifests().len(),
        1,
        "the spool is kept with its manifest"
    );
    assert!(!canceller.is_requested());
    let r = p
        .finalize_and_publish()
        .expect("the publish after the cancelled one runs");
    assert_eq!(r.sha256, sha256_hex(&data));
}
