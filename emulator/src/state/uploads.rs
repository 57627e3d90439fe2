//! Upload sessions (file uploads): the usable ones, and a record of every one ever created.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::Sha256;

use super::{ApiError, Auth, Shared, State};
use crate::util::{random_hex32, random_range};
use crate::UploadSessionInfo;

/// A usable upload session. Its data has a lock of its own, held across the `.await`s of an
/// append or a commit.
pub(crate) struct UploadSession {
    pub id: String,
    pub site_id: String,
    /// Serial of the auth session that created it.
    pub auth_serial: u64,
    pub data: tokio::sync::Mutex<UploadData>,
}

/// The bytes an upload session has received so far.
pub(crate) struct UploadData {
    /// Where the bytes are appended (not created when `discard_data`).
    pub path: PathBuf,
    pub bytes: u64,
    pub hasher: Sha256,
    /// The first bytes of the upload (for the magic-number check at commit).
    pub head: Vec<u8>,
    pub consumed: bool,
}

/// Every upload session: the usable ones by id, and the record of all ever created.
pub(super) struct Uploads {
    live: HashMap<String, Arc<UploadSession>>,
    /// Every upload session ever created, in creation order, and the index by id.
    infos: Vec<UploadSessionInfo>,
    index: HashMap<String, usize>,
    /// Numbers the ids (`N:hex-1:0`), starting at a random value.
    counter: u64,
}

impl Uploads {
    pub(super) fn new() -> Uploads {
        Uploads {
            live: HashMap::new(),
            infos: vec![],
            index: HashMap::new(),
            counter: random_range(1000, 9000),
        }
    }
}

impl State {
    /// Create an upload session; returns its id.
    pub(crate) fn new_upload(
        &mut self,
        site_id: &str,
        auth_serial: u64,
        data_dir: &Path,
    ) -> String {
        let u = &mut self.uploads;
        u.counter += 1;
        let hex = random_hex32();
        let id = format!("{}:{}-1:0", u.counter, hex);
        let sess = UploadSession {
            id: id.clone(),
            site_id: site_id.to_owned(),
            auth_serial,
            data: tokio::sync::Mutex::new(UploadData {
                path: data_dir.join("uploads").join(format!("{hex}.upload")),
                bytes: 0,
                hasher: <Sha256 as sha2::Digest>::new(),
                head: Vec::new(),
                consumed: false,
            }),
        };
        u.live.insert(id.clone(), Arc::new(sess));
        u.index.insert(id.clone(), u.infos.len());
        u.infos.push(UploadSessionInfo {
            id: id.clone(),
            bytes: 0,
            appends: 0,
            committed: false,
        });
        id
    }

    /// Record an applied append (`bytes` is the session's new total).
    pub(crate) fn note_append(&mut self, id: &str, bytes: u64) {
        if let Some(&i) = self.uploads.index.get(id) {
            let info = &mut self.uploads.infos[i];
            info.bytes = bytes;
            info.appends += 1;
        }
    }

    /// A publish consumed the upload session: it can no longer be used, and is recorded as
    /// committed.
    pub(crate) fn commit_upload(&mut self, id: &str) {
        self.uploads.live.remove(id);
        if let Some(&i) = self.uploads.index.get(id) {
            self.uploads.infos[i].committed = true;
        }
    }

    /// Look up an upload session usable by this caller.
    pub(crate) fn upload_for(
        &self,
        id: &str,
        auth: &Auth,
        bind: bool,
    ) -> Result<Arc<UploadSession>, ApiError> {
        let nf = || {
            ApiError::new(
                404,
                "404000",
                "Resource Not Found",
                format!("Upload session '{id}' could not be found."),
            )
        };
        let s = self.uploads.live.get(id).ok_or_else(nf)?;
        if s.site_id != auth.site_id || (bind && s.auth_serial != auth.serial) {
            return Err(nf());
        }
        Ok(s.clone())
    }
}

impl Shared {
    pub(crate) fn upload_sessions(&self) -> Vec<UploadSessionInfo> {
        self.lock().uploads.infos.clone()
    }
}
