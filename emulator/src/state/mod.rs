//! The emulator's model: sites, users, projects, sessions, upload sessions, data sources, jobs,
//! faults and the request log. Everything here is synchronous and runs under one mutex that is
//! never held across an `.await`.
//!
//! `Shared` owns the lock; `State` is what it guards. Each submodule adds the part of `State`
//! (and of the control API on `Shared`) for one concern.

mod datasources;
mod error;
mod faults;
mod jobs;
mod log;
mod projects;
mod seed;
mod sessions;
mod signin;
mod sites;
mod uploads;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};

use crate::jwt::ConnectedApp;
use crate::Config;

pub(crate) use datasources::{Datasource, Mode, PendingPublish, Staged};
pub(crate) use error::ApiError;
pub(crate) use jobs::Job;
pub(crate) use projects::Project;
pub(crate) use sessions::{Auth, SignedIn};
pub(crate) use sites::{Site, User};
pub(crate) use uploads::{UploadData, UploadSession};

/// Everything the emulator knows, guarded by the mutex in [`Shared`].
pub(crate) struct State {
    pub sites: Vec<Site>,
    pub users: Vec<User>,
    pub projects: Vec<Project>,
    connected_apps: Vec<ConnectedApp>,
    /// Accepted JWTs, to refuse replays until they expire.
    jwt_seen: signin::JwtReplays,
    sessions: sessions::Sessions,
    uploads: uploads::Uploads,
    pub datasources: Vec<Datasource>,
    jobs: jobs::Jobs,
    faults: Vec<faults::ArmedFault>,
    log: log::RequestLog,
}

/// The state shared by the server's tasks and the library's [`crate::Emulator`] handle.
pub(crate) struct Shared {
    pub cfg: Config,
    pub data_dir: PathBuf,
    pub log_stderr: AtomicBool,
    pub extracts: crate::extract::ExtractReader,
    st: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(cfg: Config, data_dir: PathBuf) -> Shared {
        let st = State::seeded(&cfg);
        let extracts = crate::extract::ExtractReader::new(crate::extract::ReaderSettings {
            enabled: cfg.read_extracts
                && std::env::var("TABLEAU_EMULATOR_HYPERD").as_deref() != Ok("off"),
            hyperd_path: cfg.hyperd_path.clone(),
            max_bytes: cfg.extract_read_max_bytes,
            work_dir: data_dir.clone(),
        });
        Shared {
            cfg,
            data_dir,
            log_stderr: AtomicBool::new(std::env::var_os("TABLEAU_EMULATOR_LOG").is_some()),
            extracts,
            st: Mutex::new(st),
        }
    }

    /// Lock the state, completing any due jobs and a due token-expiry schedule first.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        let mut g = self.st.lock().unwrap_or_else(|e| e.into_inner());
        g.settle_jobs(&self.data_dir);
        g.settle_expiry();
        g
    }
}
