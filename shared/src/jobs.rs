//! Training jobs: `POST /initialtrain` and `POST /retrain` answer at once with a job id and
//! the training runs elsewhere (a background task in `fraudctl serve`, an asynchronous Lambda
//! invocation in AWS); `GET /jobs/{job_id}` reads its state from the [`JobStore`].
//!
//! A job goes `queued` → `running` → `succeeded` (with the summary) or `failed` (with an
//! error code and message). Only one job is active (queued or running) at a time, whatever
//! its kind, since trainings share one lock anyway. A job left queued or running longer than
//! the job timeout reads as failed with the code [`TIMED_OUT`]: a worker killed mid-run (a
//! Lambda timeout, a crash) never leaves a job active for ever.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ports::StoreError;

/// Default of [`crate::config::ENV_JOB_TIMEOUT`]: Lambda's longest run (15 minutes).
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(900);
/// The error code of a job that stayed active past the job timeout.
pub const TIMED_OUT: &str = "timed_out";

/// What a job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// `POST /initialtrain`.
    Initialtrain,
    /// `POST /retrain`.
    Retrain,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Initialtrain => "initialtrain",
            JobKind::Retrain => "retrain",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "initialtrain" => Some(JobKind::Initialtrain),
            "retrain" => Some(JobKind::Retrain),
            _ => None,
        }
    }
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "queued" => Some(JobState::Queued),
            "running" => Some(JobState::Running),
            "succeeded" => Some(JobState::Succeeded),
            "failed" => Some(JobState::Failed),
            _ => None,
        }
    }

    /// Queued or running.
    pub fn is_active(self) -> bool {
        matches!(self, JobState::Queued | JobState::Running)
    }
}

/// Why a job failed: a stable code (the API's error kinds, or [`TIMED_OUT`]) and a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobError {
    /// `conflict`, `busy`, `dependency`, `internal`, `timed_out`, ...
    pub code: String,
    /// What went wrong, readable on its own.
    pub message: String,
}

/// A training job as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    /// The job's id (UUID v4).
    pub job_id: Uuid,
    pub kind: JobKind,
    pub state: JobState,
    /// What the job was asked to do: `{"force": bool}` or `{"mode": "always" | "if-drift"}`.
    #[schema(value_type = Object)]
    pub parameters: Value,
    /// Who asked for it (null for jobs made outside the API).
    pub username: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished; for a `timed_out` job, when its time ran out.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<DateTime<Utc>>,
    /// The training (or retrain) summary, once succeeded.
    #[schema(value_type = Option<Object>)]
    pub summary: Option<Value>,
    /// Why it failed, once failed.
    pub error: Option<JobError>,
}

impl Job {
    /// A new queued job.
    pub fn queued(kind: JobKind, parameters: Value, username: Option<&str>) -> Self {
        Job {
            job_id: Uuid::new_v4(),
            kind,
            state: JobState::Queued,
            parameters,
            username: username.map(str::to_string),
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            summary: None,
            error: None,
        }
    }

    /// When the job became active last: started, else created.
    fn active_since(&self) -> DateTime<Utc> {
        self.started_at.unwrap_or(self.created_at)
    }

    /// True when the job is active but has been so for longer than `timeout`.
    pub fn is_stale(&self, now: DateTime<Utc>, timeout: Duration) -> bool {
        let limit = chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
        self.state.is_active() && now.signed_duration_since(self.active_since()) > limit
    }

    /// The job as a reader should see it: a stale active job reads as failed, timed out.
    pub fn as_seen(mut self, now: DateTime<Utc>, timeout: Duration) -> Self {
        if self.is_stale(now, timeout) {
            self.error = Some(timed_out_error(self.state, timeout));
            self.state = JobState::Failed;
            self.finished_at = Some(self.active_since() + chrono_from(timeout));
        }
        self
    }
}

fn chrono_from(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// The error of a job that stayed `state` longer than `timeout`.
pub fn timed_out_error(state: JobState, timeout: Duration) -> JobError {
    JobError {
        code: TIMED_OUT.to_string(),
        message: format!(
            "the job stayed {} longer than the job timeout ({} s); its worker was probably \
             stopped (a Lambda timeout or a crash)",
            state.as_str(),
            timeout.as_secs()
        ),
    }
}

/// What [`JobStore::create_job`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum JobCreated {
    /// The job is stored, queued.
    Queued(Job),
    /// Another job is active (queued or running, within the timeout); nothing was stored.
    Busy(Job),
}

/// The jobs table.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Stores `job` (queued) unless another job is active; an active job older than
    /// `timeout` does not count, and is marked failed ([`TIMED_OUT`]) on the way.
    async fn create_job(&self, job: &Job, timeout: Duration) -> Result<JobCreated, StoreError>;
    /// Moves a queued job to running and returns it; `None` when the job is unknown or not
    /// queued (already run, or timed out), so a repeated delivery never runs it twice.
    async fn mark_job_running(&self, job_id: Uuid) -> Result<Option<Job>, StoreError>;
    /// Records the summary of a finished job.
    async fn mark_job_succeeded(&self, job_id: Uuid, summary: &Value) -> Result<(), StoreError>;
    /// Records why a job failed.
    async fn mark_job_failed(&self, job_id: Uuid, error: &JobError) -> Result<(), StoreError>;
    /// The job as stored (see [`Job::as_seen`] for how a reader should see it).
    async fn job(&self, job_id: Uuid) -> Result<Option<Job>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_active_job_reads_as_timed_out() {
        let job = Job::queued(JobKind::Retrain, serde_json::json!({}), None);
        let timeout = Duration::from_secs(60);
        let soon = job.created_at + chrono::Duration::seconds(59);
        assert_eq!(job.clone().as_seen(soon, timeout).state, JobState::Queued);
        let late = job.created_at + chrono::Duration::seconds(61);
        let seen = job.clone().as_seen(late, timeout);
        assert_eq!(seen.state, JobState::Failed);
        assert_eq!(seen.error.map(|e| e.code), Some(TIMED_OUT.to_string()));
        let mut done = job;
        done.state = JobState::Succeeded;
        assert_eq!(done.as_seen(late, timeout).state, JobState::Succeeded);
    }
}
