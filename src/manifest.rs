//! The JSON manifest written beside a spool kept after a failed publish: what the bytes are,
//! where they were going (without secrets), why it failed, and how to publish them again.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Auth, Config, Mode, ProjectTarget};
use crate::error::{Error, ErrorKind, Result};
use crate::spool::{manifest_path, Sealed};

/// Identifies the manifest format.
pub const FORMAT: &str = "tableau-publisher-spool/1";

/// A kept spool's manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The spooled bytes, unchanged.
    pub spool: PathBuf,
    /// Their size.
    pub bytes: u64,
    /// Their SHA-256.
    pub sha256: String,
    /// When the publish failed (RFC 3339, UTC).
    pub failed_at: String,
    /// The `tp_status` number of the failure.
    pub status: i32,
    /// The failure message.
    pub error: String,
    /// Where the data was going. No secrets.
    pub settings: Settings,
    /// The command that publishes the spool again.
    pub resume: String,
}

/// The publish settings, without secrets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Server URL.
    pub server_url: String,
    /// Site content URL.
    pub site: String,
    /// `pat`, `password` or `connected_app`.
    pub auth_method: String,
    /// Token name (PAT), user name (password), or user name and app (connected app).
    pub auth_identity: String,
    /// Project path, or null when given by id.
    pub project: Option<Vec<String>>,
    /// Project LUID, when given by id.
    pub project_id: Option<String>,
    /// Data source name.
    pub datasource_name: String,
    /// `create_new`, `overwrite` or `append`.
    pub mode: String,
}

impl Settings {
    fn of(config: &Config) -> Settings {
        let (auth_method, auth_identity) = match &config.auth {
            Auth::Pat { token_name, .. } => ("pat", token_name.clone()),
            Auth::Password { username, .. } => ("password", username.clone()),
            Auth::ConnectedApp {
                username,
                client_id,
                ..
            } => ("connected_app", format!("{username} via {client_id}")),
        };
        let (project, project_id) = match &config.project {
            ProjectTarget::Path(p) => (Some(p.clone()), None),
            ProjectTarget::Id(id) => (None, Some(id.clone())),
        };
        Settings {
            server_url: config.server_url.clone(),
            site: config.site.clone(),
            auth_method: auth_method.into(),
            auth_identity,
            project,
            project_id,
            datasource_name: config.datasource_name.clone(),
            mode: match config.mode {
                Mode::CreateNew => "create_new",
                Mode::Overwrite => "overwrite",
                Mode::Append => "append",
            }
            .into(),
        }
    }
}

impl Manifest {
    /// Describes a kept spool after `error`.
    pub fn new(
        config: &Config,
        sealed: &Sealed,
        sha256: &str,
        kept: &Path,
        error: &Error,
    ) -> Manifest {
        let manifest = manifest_path(kept);
        Manifest {
            format: FORMAT.into(),
            spool: kept.to_path_buf(),
            bytes: sealed.len,
            sha256: sha256.to_owned(),
            failed_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            status: crate::ffi::tp_status::from(error.kind()) as i32,
            error: error.message().to_owned(),
            settings: Settings::of(config),
            resume: resume_command(&manifest),
        }
    }

    /// Writes the manifest beside the spool (atomically, private to the user).
    pub fn write(&self) -> Result<PathBuf> {
        let path = manifest_path(&self.spool);
        let dir = path.parent().unwrap_or(Path::new("."));
        let json = serde_json::to_vec_pretty(self).expect("manifest serialises");
        let mut tmp = tempfile::Builder::new()
            .prefix(".manifest-")
            .tempfile_in(dir)
            .map_err(|e| Error::io("cannot write the spool manifest", &e))?;
        std::io::Write::write_all(&mut tmp, &json)
            .map_err(|e| Error::io("cannot write the spool manifest", &e))?;
        tmp.persist(&path)
            .map_err(|e| Error::io("cannot write the spool manifest", &e.error))?;
        Ok(path)
    }

    /// Reads a manifest written by [`Manifest::write`].
    pub fn read(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(&format!("cannot read the manifest {}", path.display()), &e))?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("{} is not a spool manifest: {e}", path.display()),
            )
        })?;
        if m.format != FORMAT {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "{} has format \"{}\", this version reads \"{FORMAT}\"",
                    path.display(),
                    m.format
                ),
            ));
        }
        Ok(m)
    }
}

/// The one-line command that publishes a kept spool again.
pub fn resume_command(manifest: &Path) -> String {
    format!("tabpub resume {} --config CONFIG.json", manifest.display())
}
