//! A host's Cancel button, from C: `tests/c/cancel.c` publishes on a second thread while the
//! emulator takes the upload slowly, and calls `tp_cancel` from its main thread once the upload
//! is under way. Ten rounds (the timing matters): each must return `TP_ERR_CANCELLED` within a
//! second of `tp_cancel`, and, from the emulator's side, sign out and publish nothing, with its
//! spool kept beside a manifest.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use common::{extract, Env, MIB};
use serde_json::json;
use tableau_emulator::FaultAction;

fn cancel_host() -> &'static Path {
    static HOST: OnceLock<std::path::PathBuf> = OnceLock::new();
    HOST.get_or_init(|| common::c::compile("cancel.c", &["-pthread"]))
}

#[test]
fn a_c_host_cancels_a_slow_upload_from_another_thread_ten_times() {
    let env = Env::start();
    // Every append is read at 256 KiB/s: a 1 MiB chunk takes 4 s.
    env.fault(
        "PUT",
        "/fileUploads/",
        1,
        1000,
        FaultAction::SlowBody {
            bytes_per_sec: 256 * 1024,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.hyper");
    std::fs::write(&input, extract(4 * MIB, 41)).unwrap();
    let config = env.config(json!({
        "datasource_name": "@NAME@",
        "chunk_size_bytes": MIB,
        "single_request_max_bytes": MIB,
    }));
    let config_file = dir.path().join("config.json");
    std::fs::write(&config_file, config).unwrap();
    let rounds = 10;
    let out = common::c::command(cancel_host())
        .arg(&config_file)
        .arg(&input)
        .arg(rounds.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}:\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    for round in 0..rounds {
        assert!(
            stdout.contains(&format!("round {round} status 13 ")),
            "round {round} was cancelled:\n{stdout}"
        );
    }

    let requests = env.requests();
    let count = |part: &str, ok: bool| {
        requests
            .iter()
            .filter(|r| r.path.ends_with(part) && (!ok || (200..300).contains(&r.status)))
            .count()
    };
    assert_eq!(count("/auth/signin", true), rounds, "one sign-in per round");
    assert_eq!(
        count("/auth/signout", true),
        rounds,
        "every round signed out"
    );
    assert!(
        requests
            .iter()
            .all(|r| !(r.method == "POST" && r.path.contains("/datasources"))),
        "no commit was sent"
    );
    assert!(env.datasources().is_empty(), "nothing was published");
    assert_eq!(
        env.manifests().len(),
        rounds,
        "every spool is kept with its manifest"
    );
    assert_eq!(env.spool_files().len(), rounds);
}
