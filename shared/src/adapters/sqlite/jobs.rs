//! The embedded store's training jobs: one row per job; creating one is a write transaction
//! (SQLite's write lock), so two requests never both see "no active job" and insert.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::Value;
use uuid::Uuid;

use super::SqliteStore;
use crate::jobs::{timed_out_error, Job, JobCreated, JobError, JobKind, JobState, JobStore};
use crate::ports::StoreError;

/// The jobs table; at most one row is queued or running at a time (checked on insert).
pub(super) const MIGRATION: &str = "CREATE TABLE jobs (\n\
     job_id TEXT PRIMARY KEY,\n\
     kind TEXT NOT NULL CHECK (kind IN ('initialtrain', 'retrain')),\n\
     state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),\n\
     parameters TEXT NOT NULL,\n\
     username TEXT,\n\
     created_at TEXT NOT NULL,\n\
     started_at TEXT,\n\
     finished_at TEXT,\n\
     summary TEXT,\n\
     error_code TEXT,\n\
     error_message TEXT);\n\
     CREATE INDEX jobs_state ON jobs (state);";

const COLUMNS: &str = "job_id, kind, state, parameters, username, created_at, started_at, \
     finished_at, summary, error_code, error_message";

fn conversion(
    index: usize,
    error: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(error))
}

fn time(text: Option<String>, index: usize) -> Result<Option<DateTime<Utc>>, rusqlite::Error> {
    text.map(|text| {
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| conversion(index, e))
    })
    .transpose()
}

fn json(text: Option<String>, index: usize) -> Result<Option<Value>, rusqlite::Error> {
    text.map(|text| serde_json::from_str(&text).map_err(|e| conversion(index, e)))
        .transpose()
}

#[derive(Debug, thiserror::Error)]
#[error("unknown {0} {1:?} in the jobs table")]
struct UnknownValue(&'static str, String);

fn read_job(row: &rusqlite::Row<'_>) -> Result<Job, rusqlite::Error> {
    let id: String = row.get(0)?;
    let kind: String = row.get(1)?;
    let state: String = row.get(2)?;
    let error_code: Option<String> = row.get(9)?;
    let error_message: Option<String> = row.get(10)?;
    Ok(Job {
        job_id: Uuid::parse_str(&id).map_err(|e| conversion(0, e))?,
        kind: JobKind::parse(&kind).ok_or_else(|| conversion(1, UnknownValue("kind", kind)))?,
        state: JobState::parse(&state)
            .ok_or_else(|| conversion(2, UnknownValue("state", state)))?,
        parameters: json(row.get(3)?, 3)?.unwrap_or(Value::Null),
        username: row.get(4)?,
        created_at: time(row.get(5)?, 5)?.unwrap_or_default(),
        started_at: time(row.get(6)?, 6)?,
        finished_at: time(row.get(7)?, 7)?,
        summary: json(row.get(8)?, 8)?,
        error: error_code.map(|code| JobError {
            code,
            message: error_message.unwrap_or_default(),
        }),
    })
}

fn select(
    connection: &Connection,
    condition: &str,
    arguments: &[&dyn rusqlite::ToSql],
) -> Result<Option<Job>, rusqlite::Error> {
    connection
        .query_row(
            &format!("SELECT {COLUMNS} FROM jobs WHERE {condition} ORDER BY created_at LIMIT 1"),
            arguments,
            read_job,
        )
        .optional()
}

/// Ends an active job. A late result also replaces a `timed_out` failure: the work did
/// finish, after all.
fn finish(
    connection: &Connection,
    job_id: Uuid,
    state: JobState,
    summary: Option<String>,
    error: Option<&JobError>,
) -> Result<usize, rusqlite::Error> {
    connection.execute(
        "UPDATE jobs SET state = ?2, finished_at = ?3, summary = ?4, error_code = ?5, \
         error_message = ?6 WHERE job_id = ?1 \
         AND (state IN ('queued', 'running') OR error_code = 'timed_out')",
        params![
            job_id.to_string(),
            state.as_str(),
            Utc::now().to_rfc3339(),
            summary,
            error.map(|e| e.code.as_str()),
            error.map(|e| e.message.as_str()),
        ],
    )
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn create_job(&self, job: &Job, timeout: Duration) -> Result<JobCreated, StoreError> {
        let job = job.clone();
        self.with_connection("create_job", move |connection| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = Utc::now();
            while let Some(active) = select(&transaction, "state IN ('queued', 'running')", &[])? {
                if !active.is_stale(now, timeout) {
                    return Ok(JobCreated::Busy(active));
                }
                finish(&transaction, active.job_id, JobState::Failed, None, Some(&timed_out_error(active.state, timeout)))?;
            }
            transaction.execute(
                &format!("INSERT INTO jobs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL, NULL, NULL, NULL)"),
                params![
                    job.job_id.to_string(),
                    job.kind.as_str(),
                    JobState::Queued.as_str(),
                    job.parameters.to_string(),
                    job.username,
                    job.created_at.to_rfc3339(),
                ],
            )?;
            transaction.commit()?;
            Ok(JobCreated::Queued(job))
        })
        .await
    }

    async fn mark_job_running(&self, job_id: Uuid) -> Result<Option<Job>, StoreError> {
        self.with_connection("mark_job_running", move |connection| {
            let changed = connection.execute(
                "UPDATE jobs SET state = 'running', started_at = ?2 WHERE job_id = ?1 AND state = 'queued'",
                params![job_id.to_string(), Utc::now().to_rfc3339()],
            )?;
            if changed == 0 {
                return Ok(None);
            }
            select(connection, "job_id = ?1", &[&job_id.to_string()])
        })
        .await
    }

    async fn mark_job_succeeded(&self, job_id: Uuid, summary: &Value) -> Result<(), StoreError> {
        let summary = summary.to_string();
        self.with_connection("mark_job_succeeded", move |connection| {
            finish(connection, job_id, JobState::Succeeded, Some(summary), None).map(drop)
        })
        .await
    }

    async fn mark_job_failed(&self, job_id: Uuid, error: &JobError) -> Result<(), StoreError> {
        let error = error.clone();
        self.with_connection("mark_job_failed", move |connection| {
            finish(connection, job_id, JobState::Failed, None, Some(&error)).map(drop)
        })
        .await
    }

    async fn job(&self, job_id: Uuid) -> Result<Option<Job>, StoreError> {
        self.with_connection("job", move |connection| {
            select(connection, "job_id = ?1", &[&job_id.to_string()])
        })
        .await
    }
}
