//! A publish that fails leaves the bytes and a manifest; `tabpub resume` publishes them later,
//! byte for byte. Runs the real `tabpub` binary against the emulator.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};
use tableau_emulator::{Config, Emulator, Fault, FaultAction};

fn tabpub(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tabpub"))
        .args(args)
        .output()
        .unwrap()
}

/// `tabpub publish --config CONFIG` with the data on standard input (so it goes through the spool).
fn tabpub_stdin(config: &Path, input: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tabpub"))
        .args(["publish", "--config", config.to_str().unwrap()])
        .stdin(std::fs::File::open(input).unwrap())
        .output()
        .unwrap()
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An emulator, a private spool directory, a config file, and `data` written as the input.
struct Setup {
    emu: Emulator,
    _dir: tempfile::TempDir,
    spool: PathBuf,
    config: PathBuf,
    input: PathBuf,
}

fn setup(data: &[u8]) -> Setup {
    let emu = Emulator::start(Config::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let config = serde_json::json!({
        "server_url": emu.url(),
        "site": "",
        "auth": {"method": "pat", "token_name": "ci", "token_secret": "ci-secret"},
        "project": "Finance/Quarterly",
        "datasource_name": "Resumed",
        "mode": "create_new",
        "spool_dir": spool,
        "retry": {"max_attempts": 2, "base_delay_ms": 10, "max_delay_ms": 20},
    });
    let config_path = dir.path().join("config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let input = dir.path().join("extract.hyper");
    std::fs::write(&input, data).unwrap();
    Setup {
        emu,
        spool,
        config: config_path,
        input,
        _dir: dir,
    }
}

const SAMPLE: &[u8] = include_bytes!("../../tests/fixtures/sample.hyper");

#[test]
fn failed_publish_is_resumed_byte_exact() {
    let mut data = SAMPLE.to_vec();
    data.extend((0..300_000u32).map(|i| (i * 7 % 251) as u8));
    let setup = setup(&data); // keeps the temp dir alive
    let (emu, config, input) = (&setup.emu, &setup.config, &setup.input);

    // The server keeps failing the publish: it fails, and the data stays.
    emu.inject_fault(Fault {
        method: Some("POST".into()),
        path_contains: Some("/datasources".into()),
        nth: 1,
        times: 1000,
        action: FaultAction::Error {
            status: 503,
            code: "503000".into(),
            summary: "Service Unavailable".into(),
            detail: "maintenance".into(),
            retry_after: None,
        },
    });
    let out = tabpub_stdin(config, input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(10), "TP_ERR_SERVER: {stderr}");
    assert!(
        stderr.contains("503000") && stderr.contains("tabpub resume "),
        "{stderr}"
    );
    assert!(!stderr.contains("ci-secret"));
    assert!(emu.datasources().is_empty());

    let manifest_path = stderr
        .split_whitespace()
        .find(|w| w.ends_with(".spool.json"))
        .map(PathBuf::from)
        .expect("the message names the manifest");
    let manifest_text = std::fs::read_to_string(&manifest_path).unwrap();
    assert!(
        !manifest_text.contains("ci-secret"),
        "no secret in the manifest"
    );
    let manifest: serde_json::Value = serde_json::from_str(&manifest_text).unwrap();
    assert_eq!(manifest["bytes"], data.len() as u64);
    assert_eq!(manifest["sha256"], sha256_hex(&data));
    assert_eq!(manifest["failure"]["kind"], "server");
    assert_eq!(manifest["state"], "failed");
    let kept = PathBuf::from(manifest["spool"].as_str().unwrap());
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        data,
        "kept spool is the bytes, unchanged"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&kept), 0o600);
        assert_eq!(mode(&manifest_path), 0o600);
        assert_eq!(mode(kept.parent().unwrap()), 0o700);
    }

    // Later, the server is back: resume publishes exactly those bytes and cleans up.
    emu.clear_faults();
    let out = tabpub(&[
        "resume",
        manifest_path.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["sha256"], sha256_hex(&data));
    let stored = &emu.datasources()[0];
    assert_eq!(stored.name, "Resumed");
    assert_eq!(stored.sha256, sha256_hex(&data));
    assert_eq!(stored.size, data.len() as u64);
    assert!(
        !kept.exists() && !manifest_path.exists(),
        "spool and manifest removed after success"
    );
}

#[test]
fn resume_refuses_a_changed_spool() {
    let setup = setup(SAMPLE); // keeps the temp dir alive
    let (emu, config, input) = (&setup.emu, &setup.config, &setup.input);
    emu.inject_fault(Fault {
        method: Some("POST".into()),
        path_contains: Some("/auth/signin".into()),
        nth: 1,
        times: 1,
        action: FaultAction::Error {
            status: 401,
            code: "401001".into(),
            summary: "Signin Error".into(),
            detail: "Error signing in to Tableau Server".into(),
            retry_after: None,
        },
    });
    let out = tabpub_stdin(config, input);
    assert_eq!(
        out.status.code(),
        Some(5),
        "TP_ERR_AUTH, no retry for bad credentials"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let manifest = stderr
        .split_whitespace()
        .find(|w| w.ends_with(".spool.json"))
        .unwrap();
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    let kept = m["spool"].as_str().unwrap();
    std::fs::write(kept, b"Hyper\x08tampered").unwrap();
    let out = tabpub(&["resume", manifest, "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "TP_ERR_IO");
    assert!(String::from_utf8_lossy(&out.stderr).contains("has changed"));
    assert!(emu.datasources().is_empty());
}

#[test]
fn a_file_is_published_in_place_and_left_alone() {
    let setup = setup(SAMPLE); // keeps the temp dir alive
    let (emu, config, input, spool) = (&setup.emu, &setup.config, &setup.input, &setup.spool);
    let data = SAMPLE;
    let out = tabpub(&[
        "publish",
        "--config",
        config.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--progress",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("tabpub: signing in"), "{stderr}");
    assert!(stderr.contains("tabpub: uploading 0.1/0.1 MiB"), "{stderr}");
    assert_eq!(emu.datasources()[0].sha256, sha256_hex(data));
    assert_eq!(
        std::fs::read(input).unwrap(),
        data,
        "the input file is untouched"
    );
    assert!(
        !spool.join("tableau-publisher").exists(),
        "no spool copy was made"
    );
}
