//! Nothing lost to a crash: a real `tabpub publish` process is killed with SIGKILL at each
//! phase of a chunked, asynchronous publish; its spool and manifest stay, `tabpub spools` lists
//! them, and `tabpub resume` publishes the bytes exactly once, byte-exact, even when the killed
//! process's commit had already applied (no duplicate, no false `create_new` clash).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tableau_emulator::{Config, Emulator, Fault, FaultAction};

const MIB: usize = 1024 * 1024;
const SAMPLE: &[u8] = include_bytes!("../../tests/fixtures/sample.hyper");

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 3 MiB starting with a real Hyper header: three appends of 1 MiB.
fn data() -> Vec<u8> {
    let mut d = SAMPLE.to_vec();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    while d.len() < 3 * MIB {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        d.extend_from_slice(&x.to_le_bytes());
    }
    d.truncate(3 * MIB);
    d
}

struct Setup {
    emu: Emulator,
    dir: tempfile::TempDir,
    data: Vec<u8>,
}

impl Setup {
    fn new(emu: Config) -> Setup {
        let setup = Setup {
            emu: Emulator::start(emu).unwrap(),
            dir: tempfile::tempdir().unwrap(),
            data: data(),
        };
        std::fs::create_dir(setup.spool_dir()).unwrap();
        let config = serde_json::json!({
            "server_url": setup.emu.url(),
            "site": "",
            "auth": {"method": "pat", "token_name": "ci", "token_secret": "ci-secret"},
            "project": "Finance/Quarterly",
            "datasource_name": "Crashed",
            "mode": "create_new",
            "spool_dir": setup.spool_dir(),
            "chunk_size_bytes": MIB,
            "single_request_max_bytes": MIB,
            // A commit sent as a job whose id never arrived is looked for this long on resume.
            "retry": {"max_attempts": 2, "base_delay_ms": 10, "max_delay_ms": 20, "commit_verify_secs": 3},
        });
        std::fs::write(setup.config(), config.to_string()).unwrap();
        std::fs::write(setup.input(), &setup.data).unwrap();
        setup
    }

    fn spool_dir(&self) -> PathBuf {
        self.dir.path().join("spool")
    }
    fn config(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }
    fn input(&self) -> PathBuf {
        self.dir.path().join("extract.hyper")
    }

    fn fault(&self, method: &str, path: &str, nth: u32, action: FaultAction) {
        self.emu.inject_fault(Fault {
            method: Some(method.into()),
            path_contains: Some(path.into()),
            nth,
            times: 1,
            action,
        });
    }

    /// `tabpub publish` with the data on standard input, so it goes through the spool.
    fn start_publish(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_tabpub"))
            .args(["publish", "--config", self.config().to_str().unwrap()])
            .stdin(std::fs::File::open(self.input()).unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// The one manifest in the spool directory, once it exists.
    fn manifest(&self) -> Option<(PathBuf, serde_json::Value)> {
        let dir = self.spool_dir().join("tableau-publisher");
        let path = std::fs::read_dir(dir)
            .ok()?
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".spool.json"))?;
        let text = std::fs::read_to_string(&path).ok()?;
        Some((path, serde_json::from_str(&text).ok()?))
    }

    /// Runs `tabpub` to the end.
    fn tabpub(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_tabpub"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn applied_publishes(&self) -> usize {
        self.emu
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/datasources") && r.applied)
            .count()
    }
}

/// Waits (bounded) until `ready` holds.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills a publish with SIGKILL once `ready` holds, then checks what a user finds and resumes.
fn kill_then_resume(setup: &Setup, phase: &str, ready: impl FnMut() -> bool) -> serde_json::Value {
    let mut child = setup.start_publish();
    wait_for(phase, ready);
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "{phase}: the publish was still running when killed"
    );

    let (manifest_path, manifest) = setup
        .manifest()
        .expect("the killed publish left a manifest");
    assert_eq!(manifest["state"], "publishing", "{phase}: {manifest}");
    assert_eq!(manifest["bytes"], setup.data.len() as u64);
    assert!(!manifest.to_string().contains("ci-secret"));
    let spool = PathBuf::from(manifest["spool"].as_str().unwrap());
    assert_eq!(
        std::fs::read(&spool).unwrap(),
        setup.data,
        "{phase}: spool kept intact"
    );

    // `tabpub spools` tells the user the bytes are there, and how to publish them.
    let dir = setup.spool_dir();
    let (ok, listing, err) = setup.tabpub(&["spools", "--dir", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        listing.contains("Crashed in Finance/Quarterly"),
        "{listing}"
    );
    assert!(listing.contains("interrupted (process"), "{listing}");
    assert!(
        listing.contains(&format!("tabpub resume {}", manifest_path.display())),
        "{listing}"
    );

    let (ok, out, err) = setup.tabpub(&[
        "resume",
        manifest_path.to_str().unwrap(),
        "--config",
        setup.config().to_str().unwrap(),
    ]);
    assert!(ok, "{phase}: resume failed: {err}");
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["sha256"], sha256_hex(&setup.data), "{phase}");

    let stored = setup.emu.datasources();
    assert_eq!(
        stored.len(),
        1,
        "{phase}: exactly one data source: {stored:?}"
    );
    assert_eq!(stored[0].name, "Crashed");
    assert_eq!(
        stored[0].sha256,
        sha256_hex(&setup.data),
        "{phase}: bytes exact"
    );
    assert_eq!(
        stored[0].history.len(),
        1,
        "{phase}: published exactly once"
    );
    // A commit whose answer is still held back is logged only once answered.
    assert!(
        setup.applied_publishes() <= 1,
        "{phase}: one publish applied"
    );
    assert!(
        !spool.exists() && !manifest_path.exists(),
        "{phase}: spool and manifest removed after the resumed publish"
    );
    result
}

#[test]
fn killed_while_signing_in() {
    let setup = Setup::new(Config::default());
    setup.fault("POST", "/auth/signin", 1, FaultAction::Delay { ms: 10_000 });
    let start = Instant::now();
    kill_then_resume(&setup, "sign-in", || {
        setup.manifest().is_some() && start.elapsed() > Duration::from_millis(300)
    });
}

#[test]
fn killed_while_uploading() {
    let setup = Setup::new(Config::default());
    // The second append trickles in: the process is killed with it half sent.
    setup.fault(
        "PUT",
        "/fileUploads/",
        2,
        FaultAction::SlowBody {
            bytes_per_sec: 256 * 1024,
        },
    );
    kill_then_resume(&setup, "upload", || {
        setup
            .manifest()
            .is_some_and(|(_, m)| m["upload_session_id"].is_string())
            && setup
                .emu
                .requests()
                .iter()
                .any(|r| r.method == "PUT" && r.applied)
    });
    assert_eq!(
        setup.emu.upload_sessions().len(),
        2,
        "the resumed publish uploaded again in a fresh session"
    );
}

#[test]
fn killed_after_sending_the_commit_before_it_applied() {
    let setup = Setup::new(Config::default());
    setup.fault("POST", "/datasources", 1, FaultAction::Delay { ms: 10_000 });
    kill_then_resume(&setup, "commit sent, not applied", || {
        setup
            .manifest()
            .is_some_and(|(_, m)| m["commit"]["sent_at"].is_string())
    });
}

#[test]
fn killed_after_the_commit_applied_before_its_answer() {
    let setup = Setup::new(Config::default());
    setup.fault(
        "POST",
        "/datasources",
        1,
        FaultAction::DelayAnswer { ms: 10_000 },
    );
    // The server has published; the process dies before it hears so. With mode create_new a
    // naive resume would now report a clash, or publish a second time with overwrite.
    let result = kill_then_resume(&setup, "commit applied, answer pending", || {
        setup.emu.datasources().len() == 1
    });
    assert_eq!(
        result["upload_sessions"], 0,
        "resume found the commit applied and uploaded nothing"
    );
}

#[test]
fn killed_while_waiting_for_the_job() {
    let setup = Setup::new(Config {
        job_duration: Duration::from_secs(3),
        ..Config::default()
    });
    let result = kill_then_resume(&setup, "job wait", || {
        setup
            .manifest()
            .is_some_and(|(_, m)| m["commit"]["job_id"].is_string())
    });
    assert!(result["job_id"].is_string(), "{result}");
    assert_eq!(result["upload_sessions"], 0, "resume waited for the job");
}

#[test]
fn spools_lists_nothing_in_an_empty_directory() {
    let setup = Setup::new(Config::default());
    let dir = setup.spool_dir();
    let (ok, out, _) = setup.tabpub(&["spools", "--dir", dir.to_str().unwrap()]);
    assert!(ok);
    assert!(out.contains("no kept spools"), "{out}");
}
