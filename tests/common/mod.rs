//! Shared helpers for the integration tests: an emulator per test, configs, generated extracts.
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use tableau_emulator::{
    Config as EmuConfig, Emulator, Fault, FaultAction, LoggedRequest, PublishedDatasource,
};
use tableau_publisher::{Error, PublishResult, Publisher};

pub mod c;
pub mod hostile;
pub mod hyper;
pub mod proxy;
pub mod tap;

pub const MIB: usize = 1024 * 1024;

/// A running emulator and a private spool directory.
pub struct Env {
    pub emu: Emulator,
    pub spool: tempfile::TempDir,
}

impl Env {
    pub fn start() -> Env {
        Env::with(EmuConfig::default())
    }

    pub fn with(config: EmuConfig) -> Env {
        Env {
            emu: Emulator::start(config).expect("emulator starts"),
            spool: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A config for the default seed (PAT `ci`, Default site, `Finance/Quarterly`) with
    /// `overrides` merged on top (a JSON null removes a key).
    pub fn config(&self, overrides: serde_json::Value) -> String {
        let mut base = serde_json::json!({
            "server_url": self.emu.url(),
            "site": "",
            "auth": {"method": "pat", "token_name": "ci", "token_secret": "ci-secret"},
            "project": "Finance/Quarterly",
            "datasource_name": "Sales",
            "mode": "create_new",
            "spool_dir": self.spool.path(),
        });
        for (k, v) in overrides.as_object().expect("overrides are an object") {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        base.to_string()
    }

    /// Injects `action` into the `nth` request (1-based) of `method` whose path has `path`,
    /// for `times` requests.
    pub fn fault(&self, method: &str, path: &str, nth: u32, times: u32, action: FaultAction) {
        self.emu.inject_fault(Fault {
            method: Some(method.into()),
            path_contains: Some(path.into()),
            nth,
            times,
            action,
        });
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.emu.requests()
    }

    /// Requests whose path contains `part` (and whose method is `method`).
    pub fn count(&self, method: &str, part: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.contains(part))
            .count()
    }

    pub fn datasources(&self) -> Vec<PublishedDatasource> {
        self.emu.datasources()
    }

    pub fn datasource(&self, name: &str) -> PublishedDatasource {
        let all = self.datasources();
        let mut matching = all.iter().filter(|d| d.name == name);
        let d = matching
            .next()
            .unwrap_or_else(|| panic!("no data source {name:?} in {all:?}"));
        assert!(matching.next().is_none(), "duplicate data source {name:?}");
        d.clone()
    }

    /// Spool files left in the spool directory (`spool_dir/tableau-publisher/*.spool`).
    pub fn spool_files(&self) -> Vec<std::path::PathBuf> {
        self.files_ending(".spool")
    }

    /// Published spools not yet deleted (`*.spool.done`: deleted on a thread that freeing
    /// the handle waits for).
    pub fn spools_being_removed(&self) -> Vec<std::path::PathBuf> {
        self.files_ending(".spool.done")
    }

    /// Manifests of kept spools.
    pub fn manifests(&self) -> Vec<std::path::PathBuf> {
        self.files_ending(".spool.json")
    }

    fn files_ending(&self, suffix: &str) -> Vec<std::path::PathBuf> {
        let dir = self.spool.path().join("tableau-publisher");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .collect();
        files.sort();
        files
    }
}

/// The phases of a chunked, asynchronous publish of five appends where a fault is injected:
/// the request (method, path part, nth) each one is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    ProjectLookup,
    FirstAppend,
    MiddleAppend,
    LastAppend,
    Commit,
    JobPoll,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Phase::ProjectLookup,
        Phase::FirstAppend,
        Phase::MiddleAppend,
        Phase::LastAppend,
        Phase::Commit,
        Phase::JobPoll,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::ProjectLookup => "project lookup",
            Phase::FirstAppend => "first append",
            Phase::MiddleAppend => "middle append",
            Phase::LastAppend => "last append",
            Phase::Commit => "commit",
            Phase::JobPoll => "job poll",
        }
    }

    pub fn target(self) -> (&'static str, &'static str, u32) {
        match self {
            Phase::ProjectLookup => ("GET", "/projects", 1),
            Phase::FirstAppend => ("PUT", "/fileUploads/", 1),
            Phase::MiddleAppend => ("PUT", "/fileUploads/", 3),
            Phase::LastAppend => ("PUT", "/fileUploads/", 5),
            Phase::Commit => ("POST", "/datasources", 1),
            Phase::JobPoll => ("GET", "/jobs/", 1),
        }
    }

    pub fn is_append(self) -> bool {
        matches!(
            self,
            Phase::FirstAppend | Phase::MiddleAppend | Phase::LastAppend
        )
    }
}

/// `len` deterministic bytes starting with a real Hyper header (from Tableau's Hyper API).
pub fn extract(len: usize, seed: u64) -> Vec<u8> {
    const HEADER: &[u8] = include_bytes!("../fixtures/sample.hyper");
    let mut out = Vec::with_capacity(len + 8);
    out.extend_from_slice(&HEADER[..HEADER.len().min(len)]);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Feeds `data` in uneven pieces (to cross buffer boundaries) and publishes.
pub fn publish(config: &str, data: &[u8]) -> Result<PublishResult, Error> {
    let mut p = Publisher::new(config)?;
    feed(&mut p, data)?;
    p.finalize_and_publish().cloned()
}

pub fn feed(p: &mut Publisher, data: &[u8]) -> Result<(), Error> {
    for piece in data.chunks(MIB + 13) {
        p.feed(piece)?;
    }
    Ok(())
}

/// Runs `cases` on `workers` threads (the cases mostly wait) and returns outcomes in order.
pub fn run_all<T: Sync, R: Send>(
    cases: &[T],
    workers: usize,
    run: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::Mutex::new(0usize);
    let results: Vec<std::sync::Mutex<Option<R>>> =
        cases.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    let i = *n;
                    *n += 1;
                    i
                };
                let Some(case) = cases.get(i) else { break };
                *results[i].lock().unwrap() = Some(run(case));
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().unwrap().unwrap())
        .collect()
}
