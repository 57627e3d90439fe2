//! One PAT, many publishes at once in one process: the handles share one Tableau session
//! instead of ending each other's (Tableau keeps one session per PAT). Each case asserts from
//! the emulator's log how many sign-ins there were, and that every publish is byte-exact.

mod common;

use std::sync::{Arc, Barrier};

use common::{extract, sha256_hex, Env, MIB};
use serde_json::json;
use tableau_emulator::FaultAction;
use tableau_publisher::{Error, ErrorKind, PublishResult, Publisher};

fn sign_ins(env: &Env) -> usize {
    env.requests()
        .iter()
        .filter(|r| r.path.ends_with("/auth/signin") && r.status == 200)
        .count()
}

fn sign_outs(env: &Env) -> usize {
    env.requests()
        .iter()
        .filter(|r| r.path.ends_with("/auth/signout"))
        .count()
}

fn config(env: &Env, name: &str) -> String {
    env.config(json!({
        "datasource_name": name,
        "chunk_size_bytes": MIB,
        "single_request_max_bytes": MIB,
        "retry": {"max_attempts": 4, "base_delay_ms": 20, "max_delay_ms": 100},
    }))
}

/// `handles` publishes of `len` bytes each, started together on their own threads.
fn publish_at_once(
    env: &Env,
    handles: usize,
    len: usize,
) -> Vec<(String, Vec<u8>, Result<PublishResult, Error>)> {
    let start = Arc::new(Barrier::new(handles));
    let threads: Vec<_> = (0..handles)
        .map(|i| {
            let name = format!("Shared {i}");
            let data = extract(len, 100 + i as u64);
            let mut p = Publisher::new(&config(env, &name)).unwrap();
            common::feed(&mut p, &data).unwrap();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let result = p.finalize_and_publish().cloned();
                (name, data, result)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn assert_all_published(env: &Env, outcomes: &[(String, Vec<u8>, Result<PublishResult, Error>)]) {
    for (name, data, result) in outcomes {
        match result {
            Ok(r) => assert_eq!(r.sha256, sha256_hex(data), "{name}"),
            Err(e) => panic!("{name} failed ({:?}): {e}", e.kind()),
        }
        assert_eq!(
            env.datasource(name).sha256,
            sha256_hex(data),
            "{name}: bytes"
        );
    }
}

#[test]
fn six_handles_with_one_pat_publish_at_once_through_a_token_expiry() {
    let env = Env::start();
    // The shared token expires in the middle of the uploads.
    env.fault("PUT", "/fileUploads/", 40, 1, FaultAction::ExpireToken);
    let outcomes = publish_at_once(&env, 6, 24 * MIB);
    assert_all_published(&env, &outcomes);
    let n = sign_ins(&env);
    assert!(n <= 3, "{n} sign-ins for six handles and one expiry");
    assert!(
        n >= 2,
        "the expiry was noticed and the session renewed once: {n}"
    );
    assert_eq!(sign_outs(&env), 1, "signed out once, by the last handle");
    let renewed: u64 = outcomes
        .iter()
        .map(|(_, _, r)| r.as_ref().unwrap().sign_ins)
        .sum();
    assert_eq!(
        renewed as usize, n,
        "each sign-in was made by exactly one handle"
    );
}

/// The fault-matrix row of issue "one credential": the shared session is ended (a sign-in
/// elsewhere) while four handles are uploading: one sign-in, and all finish.
#[test]
fn the_shared_session_ends_while_four_handles_upload_one_sign_in_all_finish() {
    let env = Env::start();
    env.fault("PUT", "/fileUploads/", 10, 1, FaultAction::KillSession);
    let outcomes = publish_at_once(&env, 4, 8 * MIB);
    assert_all_published(&env, &outcomes);
    assert_eq!(sign_ins(&env), 2, "the first sign-in and one renewal");
}

#[test]
fn one_handle_cancelling_does_not_end_the_session_of_the_others() {
    let env = Env::start();
    let cancelled = Publisher::new(&config(&env, "Cancelled")).unwrap();
    let data = extract(8 * MIB, 7);
    let start = Arc::new(Barrier::new(2));
    let t = {
        let (mut p, data, start) = (cancelled, data.clone(), start.clone());
        std::thread::spawn(move || {
            common::feed(&mut p, &data).unwrap();
            let mut seen = 0;
            p.set_progress(Some(Box::new(
                move |progress: &tableau_publisher::progress::Progress| {
                    if progress.phase == tableau_publisher::progress::Phase::Uploading {
                        seen += 1;
                    }
                    seen < 2 // cancel once the upload is under way
                },
            )));
            start.wait();
            p.finalize_and_publish().map(|_| ()).unwrap_err().kind()
        })
    };
    let mut other = Publisher::new(&config(&env, "Survivor")).unwrap();
    let other_data = extract(16 * MIB, 8);
    common::feed(&mut other, &other_data).unwrap();
    start.wait();
    let r = other.finalize_and_publish().cloned();
    assert_eq!(t.join().unwrap(), ErrorKind::Cancelled);
    let r = r.unwrap_or_else(|e| panic!("the other handle failed: {e}"));
    assert_eq!(r.sha256, sha256_hex(&other_data));
    assert_eq!(env.datasource("Survivor").sha256, sha256_hex(&other_data));
    assert!(sign_ins(&env) <= 2, "{} sign-ins", sign_ins(&env));
    let errors_401 = env.requests().iter().filter(|r| r.status == 401).count();
    assert_eq!(errors_401, 0, "no request was refused for an ended session");
}

#[test]
fn a_preflight_joins_the_session_of_a_publish_under_way() {
    let env = Env::start();
    let data = extract(8 * MIB, 9);
    let mut p = Publisher::new(&config(&env, "Busy")).unwrap();
    common::feed(&mut p, &data).unwrap();
    let checker_config = config(&env, "Other");
    let mut checked = false;
    p.set_progress(Some(Box::new(
        move |progress: &tableau_publisher::progress::Progress| {
            if progress.phase == tableau_publisher::progress::Phase::Uploading && !checked {
                checked = true;
                // Another handle, on another thread, checks the target while this one uploads.
                let cfg = checker_config.clone();
                let r = std::thread::spawn(move || {
                    Publisher::new(&cfg).unwrap().preflight().map(|_| ())
                })
                .join()
                .unwrap();
                assert!(r.is_ok(), "preflight: {r:?}");
            }
            true
        },
    )));
    let r = p.finalize_and_publish().cloned().unwrap();
    assert_eq!(r.sha256, sha256_hex(&data));
    assert_eq!(
        sign_ins(&env),
        1,
        "the preflight used the publish's session"
    );
    assert_eq!(sign_outs(&env), 1, "and did not end it");
}
