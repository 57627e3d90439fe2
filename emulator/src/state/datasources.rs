//! Data sources: the publish checks, storing a publish (create, overwrite, append) and the
//! public view of what is stored.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{ApiError, Shared, State};
use crate::util::{iso8601, new_luid};
use crate::{DatasourceOp, PublishedDatasource};

/// A file ready to become (part of) a data source.
#[derive(Clone, Debug)]
pub(crate) struct Staged {
    pub path: Option<PathBuf>,
    pub size: u64,
    pub sha256: String,
    pub head: Vec<u8>,
}

impl Staged {
    pub(crate) fn discard(&self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// What a publish does to a data source of the same name in the same project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Create,
    Overwrite,
    Append,
}

/// A publish that passed the request checks, to apply now or when its job is due.
pub(crate) struct PendingPublish {
    pub site_id: String,
    pub project_id: String,
    pub name: String,
    pub description: Option<String>,
    pub mode: Mode,
    pub file_type: String,
    pub staged: Staged,
    pub owner_id: String,
}

/// A publish `apply_publish` refused, handed back so the caller can discard its file.
pub(crate) struct RejectedPublish {
    pub error: ApiError,
    pub pending: PendingPublish,
}

/// A stored data source.
pub(crate) struct Datasource {
    pub id: String,
    pub site_id: String,
    pub name: String,
    pub description: String,
    pub content_url: String,
    pub project_id: String,
    pub owner_id: String,
    pub file_type: String,
    pub size: u64,
    pub sha256: String,
    pub history: Vec<DatasourceOp>,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
    pub path: Option<PathBuf>,
}

/// Move a staged file to its place among the data sources' files.
fn place(from: &Option<PathBuf>, to: PathBuf) -> Option<PathBuf> {
    let from = from.as_ref()?;
    if std::fs::rename(from, &to).is_err() {
        // Different file system: copy then remove.
        std::fs::copy(from, &to).ok()?;
        let _ = std::fs::remove_file(from);
    }
    Some(to)
}

impl State {
    pub(crate) fn published(&self, d: &Datasource) -> PublishedDatasource {
        PublishedDatasource {
            id: d.id.clone(),
            site: self
                .site(&d.site_id)
                .map(|s| s.content_url.clone())
                .unwrap_or_default(),
            name: d.name.clone(),
            content_url: d.content_url.clone(),
            project_id: d.project_id.clone(),
            project_name: self
                .project(&d.site_id, &d.project_id)
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            file_type: d.file_type.clone(),
            size: d.size,
            sha256: d.sha256.clone(),
            history: d.history.clone(),
            created_at: iso8601(d.created_at),
            updated_at: iso8601(d.updated_at),
            extract: None,
            extract_error: None,
        }
    }

    fn find_ds(&self, site_id: &str, project_id: &str, name: &str) -> Option<usize> {
        self.datasources
            .iter()
            .position(|d| d.site_id == site_id && d.project_id == project_id && d.name == name)
    }

    /// The checks a publish must pass before anything is stored (run again when a job applies).
    pub(crate) fn check_publish(&self, p: &PendingPublish) -> Result<(), ApiError> {
        let project = self.project(&p.site_id, &p.project_id).ok_or_else(|| {
            ApiError::new(
                404,
                "404005",
                "Resource Not Found",
                format!("Project '{}' could not be found.", p.project_id),
            )
        })?;
        let existing = self.find_ds(&p.site_id, &p.project_id, &p.name);
        match p.mode {
            Mode::Append if existing.is_none() => Err(ApiError::new(
                404,
                "404012",
                "Resource Not Found",
                format!(
                    "Data source '{}' could not be found in project '{}'; append needs an existing data source.",
                    p.name, project.name
                ),
            )),
            Mode::Create if existing.is_some() => Err(ApiError::new(
                403,
                "403007",
                "Forbidden",
                format!(
                    "The datasource '{}' already exists and may not be overwritten without the 'overwrite' flag set to 'true'.",
                    p.name
                ),
            )),
            _ => Ok(()),
        }
    }

    fn unique_content_url(&self, site_id: &str, name: &str) -> String {
        let mut base: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        if base.is_empty() {
            base = "datasource".to_owned();
        }
        let taken = |u: &str| {
            self.datasources
                .iter()
                .any(|d| d.site_id == site_id && d.content_url == u)
        };
        if !taken(&base) {
            return base;
        }
        (1..)
            .map(|i| format!("{base}_{i}"))
            .find(|u| !taken(u))
            .unwrap()
    }

    /// Store a publish; returns the data source's id. On error the staged file is left for the
    /// caller to discard.
    pub(crate) fn apply_publish(
        &mut self,
        p: PendingPublish,
        data_dir: &Path,
    ) -> Result<String, Box<RejectedPublish>> {
        if let Err(error) = self.check_publish(&p) {
            return Err(Box::new(RejectedPublish { error, pending: p }));
        }
        let now = SystemTime::now();
        let dir = data_dir.join("datasources");
        match (p.mode, self.find_ds(&p.site_id, &p.project_id, &p.name)) {
            (Mode::Append, Some(i)) => Ok(self.append_to(i, &p, &dir, now)),
            (Mode::Overwrite, Some(i)) => Ok(self.overwrite(i, &p, &dir, now)),
            _ => Ok(self.create(&p, &dir, now)),
        }
    }

    fn append_to(&mut self, i: usize, p: &PendingPublish, dir: &Path, now: SystemTime) -> String {
        let n = self.datasources[i].history.len();
        let d = &mut self.datasources[i];
        let _ = place(
            &p.staged.path,
            dir.join(format!("{}.append-{n}.{}", d.id, p.file_type)),
        );
        d.size = p.staged.size;
        d.sha256 = p.staged.sha256.clone();
        d.history.push(op("append", p));
        d.updated_at = now;
        d.id.clone()
    }

    fn overwrite(&mut self, i: usize, p: &PendingPublish, dir: &Path, now: SystemTime) -> String {
        let d = &mut self.datasources[i];
        let target = dir.join(format!("{}.{}", d.id, p.file_type));
        if let Some(old) = d.path.take() {
            if old != target {
                let _ = std::fs::remove_file(old);
            }
        }
        d.path = place(&p.staged.path, target);
        d.file_type = p.file_type.clone();
        d.size = p.staged.size;
        d.sha256 = p.staged.sha256.clone();
        if let Some(desc) = &p.description {
            d.description = desc.clone();
        }
        d.history.push(op("overwrite", p));
        d.updated_at = now;
        d.id.clone()
    }

    fn create(&mut self, p: &PendingPublish, dir: &Path, now: SystemTime) -> String {
        let id = new_luid();
        let content_url = self.unique_content_url(&p.site_id, &p.name);
        let path = place(&p.staged.path, dir.join(format!("{id}.{}", p.file_type)));
        self.datasources.push(Datasource {
            id: id.clone(),
            site_id: p.site_id.clone(),
            name: p.name.clone(),
            description: p.description.clone().unwrap_or_default(),
            content_url,
            project_id: p.project_id.clone(),
            owner_id: p.owner_id.clone(),
            file_type: p.file_type.clone(),
            size: p.staged.size,
            sha256: p.staged.sha256.clone(),
            history: vec![op("create", p)],
            created_at: now,
            updated_at: now,
            path,
        });
        id
    }
}

/// The history entry of a publish.
fn op(name: &str, p: &PendingPublish) -> DatasourceOp {
    DatasourceOp {
        op: name.to_owned(),
        size: p.staged.size,
        sha256: p.staged.sha256.clone(),
    }
}

impl Shared {
    /// Every data source; each `.hyper` read by hyperd when [`crate::Config::read_extracts`]
    /// (blocks while it reads; call from a blocking context).
    pub(crate) fn datasources(&self) -> Vec<PublishedDatasource> {
        let listed: Vec<(PublishedDatasource, Option<PathBuf>)> = {
            let st = self.lock();
            st.datasources
                .iter()
                .map(|d| (st.published(d), d.path.clone()))
                .collect()
        };
        listed
            .into_iter()
            .map(|(mut p, path)| {
                if let Some(path) = path.filter(|_| p.file_type == "hyper") {
                    match self.extracts.read(&path, &p.sha256) {
                        Some(Ok(contents)) => p.extract = Some(contents),
                        Some(Err(why)) => p.extract_error = Some(why),
                        None => {}
                    }
                }
                p
            })
            .collect()
    }
}
