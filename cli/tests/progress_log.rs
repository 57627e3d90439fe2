//! `tabpub publish --progress` prints the library's log lines to standard error beside the
//! progress: a token that expires mid-upload shows as a `warn` line naming Tableau's code and
//! the request, and the publish is reported at `info`. Runs the real binary against the emulator.

use std::process::Command;

use tableau_emulator::{Config, Emulator, Fault, FaultAction};

const SAMPLE: &[u8] = include_bytes!("../../tests/fixtures/sample.hyper");
const MIB: usize = 1024 * 1024;

#[test]
fn progress_prints_a_re_authentication_line_and_no_secret() {
    let emu = Emulator::start(Config::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "server_url": emu.url(),
        "site": "",
        "auth": {"method": "pat", "token_name": "ci", "token_secret": "ci-secret"},
        "project": "Finance/Quarterly",
        "datasource_name": "CLI logged",
        "mode": "create_new",
        "spool_dir": dir.path(),
        "chunk_size_bytes": MIB,
        "single_request_max_bytes": MIB,
    });
    let config_path = dir.path().join("config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let mut data = SAMPLE.to_vec();
    data.extend((0..3 * MIB as u32).map(|i| (i * 7 % 251) as u8));
    let input = dir.path().join("extract.hyper");
    std::fs::write(&input, &data).unwrap();
    // The session expires at the second append.
    emu.inject_fault(Fault {
        method: Some("PUT".into()),
        path_contains: Some("/fileUploads/".into()),
        nth: 2,
        times: 1,
        action: FaultAction::ExpireToken,
    });

    let out = Command::new(env!("CARGO_BIN_EXE_tabpub"))
        .args(["publish", "--progress", "--config"])
        .arg(&config_path)
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warn: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("tabpub: warn: "))
        .collect();
    assert_eq!(warn.len(), 1, "{stderr}");
    assert!(
        warn[0].contains("(Tableau error 401000) during Append to File Upload (bytes ")
            && warn[0].ends_with("signing in again (re-authentication 1 of at most 10)"),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("tabpub: info: published data source \"CLI logged\"")),
        "{stderr}"
    );
    assert!(
        stderr.contains("tabpub: uploading"),
        "progress too: {stderr}"
    );
    assert!(!stderr.contains("ci-secret"), "{stderr}");
    assert_eq!(emu.datasources().len(), 1);
}
