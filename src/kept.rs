//! The spools kept in a spool directory, for `tabpub spools`: each with what it was for, how far
//! its publish got, and the command that publishes it. Nothing here deletes anything.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::manifest::{resume_command, Manifest, State};
use crate::spool::{manifest_path, PRIVATE_DIR};

/// A spool left on disk.
#[derive(Debug, Clone, Serialize)]
pub struct KeptSpool {
    /// The bytes.
    pub spool: PathBuf,
    /// Its manifest, when it has one.
    pub manifest: Option<PathBuf>,
    /// Data source name (from the manifest).
    pub datasource_name: Option<String>,
    /// Project path or id (from the manifest).
    pub project: Option<String>,
    /// Size of the spool file.
    pub bytes: u64,
    /// Seconds since the spool was last written.
    pub age_secs: u64,
    /// How far its publish got, in words.
    pub state: String,
    /// The command that publishes it, when it has a manifest.
    pub resume: Option<String>,
}

/// Lists the spools kept in `spool_dir` (its `tableau-publisher/` directory), oldest first.
pub fn list(spool_dir: &Path) -> Result<Vec<KeptSpool>> {
    let dir = spool_dir.join(PRIVATE_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&format!("cannot list {}", dir.display()), &e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.to_string_lossy().ends_with(".spool") {
            continue; // manifests, published spools being deleted, temporary files
        }
        let Ok(meta) = entry.metadata() else { continue };
        let age = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .unwrap_or(Duration::ZERO);
        let mpath = manifest_path(&path);
        let manifest = Manifest::read(&mpath).ok();
        let (datasource_name, project, state) = match &manifest {
            Some(m) => (
                Some(m.settings.datasource_name.clone()),
                m.settings
                    .project
                    .as_ref()
                    .map(|p| p.join("/"))
                    .or_else(|| m.settings.project_id.clone()),
                describe(m),
            ),
            None if mpath.exists() => (None, None, format!("manifest {} unreadable", mpath.display())),
            None => (
                None,
                None,
                "no manifest: its publish never started or its process died while starting; publish it with: tabpub publish --config CONFIG.json --input THIS_FILE".to_owned(),
            ),
        };
        out.push(KeptSpool {
            spool: path,
            resume: manifest.as_ref().map(|_| resume_command(&mpath)),
            manifest: manifest.map(|_| mpath),
            datasource_name,
            project,
            bytes: meta.len(),
            age_secs: age.as_secs(),
            state,
        });
    }
    out.sort_by_key(|k| std::cmp::Reverse(k.age_secs));
    Ok(out)
}

/// How far the publish of `m` got.
fn describe(m: &Manifest) -> String {
    let commit = if m.commit_may_have_applied() {
        "; its commit was sent and may have applied (resume checks before publishing again)"
    } else {
        "; nothing was committed"
    };
    match (m.state, m.pid) {
        (State::Publishing, Some(pid)) if crate::process::alive(pid) => {
            format!("publishing (process {pid} is running){commit}")
        }
        (State::Publishing, Some(pid)) => format!("interrupted (process {pid} is gone){commit}"),
        (State::Publishing, None) => format!("interrupted{commit}"),
        (State::Failed, _) => match &m.failure {
            Some(f) => format!("failed ({:?}): {}{commit}", f.kind, f.error),
            None => format!("failed{commit}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Journal;

    #[test]
    fn lists_every_kept_spool_with_its_state_and_deletes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join(PRIVATE_DIR);
        std::fs::create_dir(&private).unwrap();
        let config = crate::config::Config::from_json(
            &serde_json::json!({
                "server_url": "http://127.0.0.1:9", "site": "",
                "auth": {"method": "pat", "token_name": "ci", "token_secret": "s"},
                "project": "Finance/Quarterly", "datasource_name": "Sales",
                "mode": "overwrite", "spool_dir": dir.path(),
            })
            .to_string(),
        )
        .unwrap();
        let spool = |name: &str| {
            let p = private.join(name);
            std::fs::write(&p, b"bytes").unwrap();
            p
        };
        let orphan = spool("a.spool");
        let running = spool("b.spool");
        Journal::start(Manifest::starting(&config, &running, 5, None, None));
        let gone = spool("c.spool");
        let mut m = Manifest::starting(&config, &gone, 5, None, None);
        m.pid = Some(u32::MAX); // no such process
        m.write().unwrap();
        let failed = spool("d.spool");
        Journal::start(Manifest::starting(&config, &failed, 5, None, None))
            .fail(&Error::new(crate::ErrorKind::Server, "HTTP 503"))
            .unwrap();
        std::fs::write(private.join("e.spool.done"), b"published").unwrap();

        let listed = list(dir.path()).unwrap();
        let state = |p: &Path| {
            listed
                .iter()
                .find(|k| k.spool == p)
                .map(|k| k.state.clone())
                .unwrap_or_else(|| panic!("{} not listed: {listed:?}", p.display()))
        };
        assert_eq!(
            listed.len(),
            4,
            "published spools are not listed: {listed:?}"
        );
        assert!(state(&orphan).starts_with("no manifest"));
        assert!(
            state(&running).starts_with("publishing (process"),
            "{}",
            state(&running)
        );
        assert!(
            state(&gone).starts_with("interrupted (process"),
            "{}",
            state(&gone)
        );
        assert!(state(&failed).contains("HTTP 503"), "{}", state(&failed));
        let k = listed.iter().find(|k| k.spool == failed).unwrap();
        assert_eq!(k.datasource_name.as_deref(), Some("Sales"));
        assert_eq!(k.project.as_deref(), Some("Finance/Quarterly"));
        assert_eq!(k.bytes, 5);
        assert!(k.resume.as_deref().unwrap().starts_with("tabpub resume "));
        for p in [&orphan, &running, &gone, &failed] {
            assert!(p.exists(), "nothing is deleted");
        }
    }

    #[test]
    fn a_missing_directory_lists_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list(&dir.path().join("nowhere")).unwrap().is_empty());
    }
}
