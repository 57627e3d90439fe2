//! Asynchronous publish jobs: created by an `asJob=true` publish, completed (applied or failed)
//! when due, the next time the state is locked.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use super::{PendingPublish, State};
use crate::util::new_luid;

/// One job.
pub(crate) struct Job {
    pub id: String,
    pub site_id: String,
    pub created_at: SystemTime,
    pub created: Instant,
    pub due: Instant,
    /// The publish to apply when due (taken when the job completes).
    pub pending: Option<PendingPublish>,
    /// An injected `FailJob` fault's notes: the job fails with them instead.
    pub fail_notes: Option<String>,
    pub outcome: Option<JobOutcome>,
}

/// How a job ended.
pub(crate) struct JobOutcome {
    pub completed_at: SystemTime,
    pub finish_code: u8,
    pub notes: Option<String>,
    pub datasource: Option<JobDatasource>,
}

/// The data source a successful job published.
pub(crate) struct JobDatasource {
    pub id: String,
    pub name: String,
}

impl JobOutcome {
    fn failed(notes: Option<String>) -> JobOutcome {
        JobOutcome {
            completed_at: SystemTime::now(),
            finish_code: 1,
            notes,
            datasource: None,
        }
    }
}

/// Every job by id, and how many have not completed yet.
#[derive(Default)]
pub(super) struct Jobs {
    by_id: HashMap<String, Job>,
    open: usize,
}

impl State {
    /// Queue `pending` as a job due after `duration`; returns its id.
    pub(crate) fn add_job(
        &mut self,
        site_id: &str,
        pending: PendingPublish,
        duration: Duration,
        fail_notes: Option<String>,
    ) -> String {
        let id = new_luid();
        let now = Instant::now();
        self.jobs.by_id.insert(
            id.clone(),
            Job {
                id: id.clone(),
                site_id: site_id.to_owned(),
                created_at: SystemTime::now(),
                created: now,
                due: now + duration,
                pending: Some(pending),
                fail_notes,
                outcome: None,
            },
        );
        self.jobs.open += 1;
        id
    }

    pub(crate) fn job(&self, id: &str) -> Option<&Job> {
        self.jobs.by_id.get(id)
    }

    /// Complete the due jobs, oldest due first.
    pub(super) fn settle_jobs(&mut self, data_dir: &Path) {
        if self.jobs.open == 0 {
            return;
        }
        let now = Instant::now();
        let mut due: Vec<(Instant, String)> = self
            .jobs
            .by_id
            .values()
            .filter(|j| j.outcome.is_none() && j.due <= now)
            .map(|j| (j.due, j.id.clone()))
            .collect();
        due.sort();
        for (_, id) in due {
            let (pending, fail) = {
                let j = self.jobs.by_id.get_mut(&id).unwrap();
                (j.pending.take(), j.fail_notes.clone())
            };
            let outcome = self.complete(pending, fail, data_dir);
            self.jobs.by_id.get_mut(&id).unwrap().outcome = Some(outcome);
            self.jobs.open -= 1;
        }
    }

    /// Apply (or fail) one due job's publish.
    fn complete(
        &mut self,
        pending: Option<PendingPublish>,
        fail: Option<String>,
        data_dir: &Path,
    ) -> JobOutcome {
        match (pending, fail) {
            (Some(p), Some(notes)) => {
                p.staged.discard();
                JobOutcome::failed(Some(notes))
            }
            (Some(p), None) => {
                let name = p.name.clone();
                match self.apply_publish(p, data_dir) {
                    Ok(id) => JobOutcome {
                        completed_at: SystemTime::now(),
                        finish_code: 0,
                        notes: None,
                        datasource: Some(JobDatasource { id, name }),
                    },
                    Err(rejected) => {
                        let e = rejected.error;
                        rejected.pending.staged.discard();
                        JobOutcome::failed(Some(format!("{}: {}", e.code, e.detail)))
                    }
                }
            }
            (None, notes) => JobOutcome::failed(notes),
        }
    }
}
