//! The library as a plain C host sees it: `tests/c/host.c`, compiled with `cc`, default signal
//! dispositions (SIGPIPE terminates), no sanitizer, run as a child process under CPU load.
//! Rust programs ignore SIGPIPE before `main`, so only a host like this one shows whether a
//! connection reset can kill the process; and only a separate process shows the host's own
//! peak memory. Every case asserts the host lived, the status it got, and (when it published)
//! the exact bytes stored, from the emulator's side.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::hostile::{Answer, Hostile};
use common::{extract, sha256_hex, Env, Phase, MIB};
use serde_json::json;
use tableau_emulator::FaultAction;

/// `tests/c/host.c`, compiled once per test run.
fn host() -> &'static Path {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| common::c::compile("host.c", &[]))
}

/// Busy threads on every core while alive: timing faults show only under load.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start() -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 1u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..100_000 {
                            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        }
                        std::hint::black_box(x);
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// What the host printed and how it ended.
#[derive(Debug)]
struct Outcome {
    signal: Option<i32>,
    code: Option<i32>,
    status: Option<i32>,
    error: Option<String>,
    maxrss_kib: Option<u64>,
    elapsed: Duration,
    output: String,
}

fn line<'a>(stdout: &'a str, key: &str) -> Option<&'a str> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
}

/// Runs the C host on `input` with `config`, feeding `chunk` bytes per `tp_feed_chunk`.
fn run_host(config: &str, input: &Path, chunk: usize) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("config.json");
    std::fs::write(&config_file, config).unwrap();
    let started = Instant::now();
    let out = common::c::command(host())
        .arg(&config_file)
        .arg(input)
        .arg(chunk.to_string())
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Outcome {
        signal: out.status.signal(),
        code: out.status.code(),
        status: line(&stdout, "status").and_then(|s| s.parse().ok()),
        error: line(&stdout, "error").map(str::to_owned),
        maxrss_kib: line(&stdout, "maxrss_kib").and_then(|s| s.parse().ok()),
        elapsed,
        output: format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
    }
}

impl Outcome {
    fn assert_lived(&self, case: &str) {
        assert!(
            self.signal.is_none(),
            "{case}: the host was killed by signal {:?} (13 is SIGPIPE, 11 SIGSEGV, 6 SIGABRT):\n{}",
            self.signal,
            self.output
        );
    }

    fn assert_published(&self, case: &str) {
        self.assert_lived(case);
        assert_eq!(self.code, Some(0), "{case}: {}", self.output);
        assert_eq!(self.status, Some(0), "{case}: {}", self.output);
    }
}

fn write_input(dir: &Path, len: usize, seed: u64) -> (PathBuf, String) {
    let data = extract(len, seed);
    let path = dir.join("input.hyper");
    std::fs::write(&path, &data).unwrap();
    (path, sha256_hex(&data))
}

/// The report's case: a 70 MiB file in 8 MiB chunks, the server resetting the connection after
/// 1 MiB of the third append, ten times under CPU load. Before the fix the host died with
/// SIGPIPE in most runs.
#[test]
fn mid_body_resets_under_load_never_kill_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let (input, sha) = write_input(dir.path(), 70 * MIB, 3);
    let _load = Load::start();
    for run in 1..=10 {
        let env = Env::start();
        env.fault(
            "PUT",
            "/fileUploads/",
            3,
            1,
            FaultAction::ResetMidBody {
                after_bytes: MIB as u64,
            },
        );
        let config = env.config(json!({
            "chunk_size_bytes": 8 * MIB,
            "single_request_max_bytes": 8 * MIB,
        }));
        let out = run_host(&config, &input, 8 * MIB);
        let case = format!("run {run} of 10");
        out.assert_published(&case);
        assert_eq!(env.datasource("Sales").sha256, sha, "{case}: bytes differ");
        assert_eq!(
            env.emu.upload_sessions().len(),
            2,
            "{case}: the reset append restarted the upload once"
        );
    }
}

/// Every reset and drop fault of the fault matrix at every phase, through the C ABI from the
/// C host, under load: each publishes byte-exact, exactly once.
#[test]
fn fault_matrix_resets_and_drops_from_a_c_host() {
    type Named = (&'static str, fn() -> FaultAction);
    let faults: [Named; 5] = [
        ("reset before the body is read", || FaultAction::Reset),
        ("reset mid-body", || FaultAction::ResetMidBody {
            after_bytes: 64 * 1024,
        }),
        ("applied, answer lost", || FaultAction::ResetAfterBody),
        ("applied, answer cut mid-response", || {
            FaultAction::ResetMidResponse
        }),
        ("3 s delay (> request timeout), then applied", || {
            FaultAction::Delay { ms: 3000 }
        }),
    ];
    let dir = tempfile::tempdir().unwrap();
    // Five appends of 1 MiB: first, middle and last are distinct, each big enough to be in
    // flight when the connection goes.
    let (input, sha) = write_input(dir.path(), 5 * MIB, 11);
    let mut cases = Vec::new();
    for (name, action) in faults {
        for phase in Phase::ALL {
            cases.push((name, action, phase));
        }
    }
    let _load = Load::start();
    let failures: Vec<String> = common::run_all(&cases, 4, |(name, action, phase)| {
        let case = format!("{name} at {phase:?}");
        let env = Env::start();
        let (method, path, nth) = phase.target();
        env.fault(method, path, nth, 1, action());
        let config = env.config(json!({
            "chunk_size_bytes": MIB,
            "single_request_max_bytes": 2 * MIB,
            "request_timeout_secs": 2,
            "retry": {
                "max_attempts": 4, "base_delay_ms": 20, "max_delay_ms": 100,
                "commit_verify_secs": 3, "max_upload_restarts": 2
            }
        }));
        let out = run_host(&config, &input, 256 * 1024);
        let mut problems = Vec::new();
        if out.signal.is_some() {
            problems.push(format!("killed by signal {:?}", out.signal));
        } else if out.status != Some(0) {
            problems.push(format!("status {:?}: {:?}", out.status, out.error));
        } else {
            let stored = env.datasources();
            if stored.len() != 1 || stored[0].sha256 != sha || stored[0].history.len() != 1 {
                problems.push(format!("stored {stored:?}"));
            }
            let applied = env
                .requests()
                .iter()
                .filter(|r| r.method == "POST" && r.path.ends_with("/datasources") && r.applied)
                .count();
            if applied != 1 {
                problems.push(format!("{applied} publishes applied"));
            }
        }
        (!problems.is_empty()).then(|| format!("{case}: {}\n{}", problems.join("; "), out.output))
    })
    .into_iter()
    .flatten()
    .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Host peak RSS allowed while the library fends off a hostile answer.
const MAX_HOST_RSS_KIB: u64 = 64 * 1024;

/// Hostile answers to the first call (Server Info) and, with the version configured, to the
/// sign-in: the host lives, gets a clear status in time, and its memory stays bounded.
#[test]
fn hostile_answers_end_in_a_clear_status_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (input, _) = write_input(dir.path(), 64 * 1024, 5);
    let spool = tempfile::tempdir().unwrap();
    let timeout = 2u64;
    let attempts = 2u64;
    let _load = Load::start();
    let mut rows = Vec::new();
    for answer in Answer::ALL {
        for at_sign_in in [false, true] {
            let server = Hostile::start(answer);
            let mut config = json!({
                "server_url": server.url(),
                "site": "",
                "auth": {"method": "pat", "token_name": "ci", "token_secret": "ci-secret"},
                "project": "Finance",
                "datasource_name": "Sales",
                "mode": "overwrite",
                "spool_dir": spool.path(),
                "request_timeout_secs": timeout,
                "retry": {"max_attempts": attempts, "base_delay_ms": 10, "max_delay_ms": 20},
            });
            if at_sign_in {
                config["api_version"] = json!("3.25");
            }
            let out = run_host(&config.to_string(), &input, 16 * 1024);
            let case = format!(
                "{answer:?} at {}",
                if at_sign_in { "sign-in" } else { "server info" }
            );
            out.assert_lived(&case);
            let want = match answer {
                Answer::Stall | Answer::Drip => 12, // TP_ERR_TIMEOUT
                Answer::Truncated => 11,            // TP_ERR_NETWORK
                _ => 10,                            // TP_ERR_SERVER
            };
            assert_eq!(out.status, Some(want), "{case}: {}", out.output);
            let error = out.error.clone().unwrap_or_default();
            assert!(!error.contains("ci-secret"), "{case}: secret in message");
            let rss = out.maxrss_kib.expect("the host reports its peak RSS");
            assert!(
                rss < MAX_HOST_RSS_KIB,
                "{case}: host peak RSS {rss} KiB, over {MAX_HOST_RSS_KIB} KiB"
            );
            // Each attempt ends within the request timeout (plus slack for a loaded machine).
            let limit = Duration::from_secs(attempts * timeout + 10);
            assert!(out.elapsed < limit, "{case}: took {:?}", out.elapsed);
            rows.push(format!(
                "{case}: status {want}, {} requests, {:.1} s, peak RSS {} MiB: {error}",
                server.requests(),
                out.elapsed.as_secs_f64(),
                rss / 1024
            ));
        }
    }
    println!("{}", rows.join("\n"));
}

/// A spool directory on a full disk (a 1 MiB tmpfs): feeding fails with TP_ERR_IO naming the
/// fix, the host lives. Mounting needs root (CI runs as root); elsewhere this says so and stops.
#[test]
fn a_full_disk_is_a_clear_io_error() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("a_full_disk_is_a_clear_io_error: not root, cannot mount a small tmpfs; not run");
        return;
    }
    let env = Env::start();
    let dir = tempfile::tempdir().unwrap();
    let (input, _) = write_input(dir.path(), 4 * MIB, 9);
    let mount = tempfile::tempdir().unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(mount.path())
        .status()
        .expect("mount runs");
    assert!(status.success(), "mount a 1 MiB tmpfs as root");
    let config = env.config(json!({"spool_dir": mount.path()}));
    let out = run_host(&config, &input, 256 * 1024);
    let _ = Command::new("umount").arg(mount.path()).status();
    out.assert_lived("disk full");
    assert_eq!(out.status, Some(4), "TP_ERR_IO: {}", out.output);
    let error = out.error.unwrap_or_default();
    assert!(
        error.contains("disk full") && error.contains("spool_dir"),
        "{error}"
    );
    println!("{error}");
    assert!(env.datasources().is_empty());
}
