//! Training jobs in PostgreSQL: creating one is a transaction under an advisory lock, so two
//! API functions never both see "no active job" and insert; the state moves with guarded
//! `UPDATE`s (`WHERE state = 'queued'`), so a repeated asynchronous delivery runs nothing twice.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;

use super::PostgresStore;
use crate::jobs::{timed_out_error, Job, JobCreated, JobError, JobKind, JobState, JobStore};
use crate::ports::StoreError;

/// Advisory lock key serialising job creation ("fraudrisk" + 3).
const JOBS_LOCK_KEY: i64 = 0x6672_6175_6472_6b03;

/// The jobs table (same columns as the SQLite store's, in PostgreSQL types).
pub(super) const MIGRATION: &str = "CREATE TABLE jobs (\n\
     job_id UUID PRIMARY KEY,\n\
     kind TEXT NOT NULL CHECK (kind IN ('initialtrain', 'retrain')),\n\
     state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),\n\
     parameters JSONB NOT NULL,\n\
     username TEXT,\n\
     created_at TIMESTAMPTZ NOT NULL,\n\
     started_at TIMESTAMPTZ,\n\
     finished_at TIMESTAMPTZ,\n\
     summary JSONB,\n\
     error_code TEXT,\n\
     error_message TEXT);\n\
     CREATE INDEX jobs_state ON jobs (state);";

const COLUMNS: &str = "job_id, kind, state, parameters, username, created_at, started_at, \
     finished_at, summary, error_code, error_message";

/// Ends an active job. A late result also replaces a `timed_out` failure: the work did
/// finish, after all.
const FINISH_SQL: &str = "UPDATE jobs SET state = $2, finished_at = now(), summary = $3, \
     error_code = $4, error_message = $5 WHERE job_id = $1 \
     AND (state IN ('queued', 'running') OR error_code = 'timed_out')";

fn read_job(row: &tokio_postgres::Row) -> Result<Job, tokio_postgres::Error> {
    let kind: String = row.try_get(1)?;
    let state: String = row.try_get(2)?;
    let error_code: Option<String> = row.try_get(9)?;
    let error_message: Option<String> = row.try_get(10)?;
    // An unknown kind or state cannot pass the CHECK constraints; read it as failed.
    let state = JobState::parse(&state).unwrap_or(JobState::Failed);
    Ok(Job {
        job_id: row.try_get(0)?,
        kind: JobKind::parse(&kind).unwrap_or(JobKind::Retrain),
        state,
        parameters: row.try_get(3)?,
        username: row.try_get(4)?,
        created_at: row.try_get(5)?,
        started_at: row.try_get(6)?,
        finished_at: row.try_get(7)?,
        summary: row.try_get(8)?,
        error: error_code.map(|code| JobError {
            code,
            message: error_message.unwrap_or_default(),
        }),
    })
}

async fn create(
    client: &mut deadpool_postgres::Object,
    job: &Job,
    timeout: Duration,
) -> Result<JobCreated, tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&JOBS_LOCK_KEY])
        .await?;
    let active = transaction
        .query(
            &format!(
                "SELECT {COLUMNS} FROM jobs WHERE state IN ('queued', 'running') \
                 ORDER BY created_at"
            ),
            &[],
        )
        .await?;
    let now = Utc::now();
    for row in &active {
        let active = read_job(row)?;
        if !active.is_stale(now, timeout) {
            return Ok(JobCreated::Busy(active));
        }
        let error = timed_out_error(active.state, timeout);
        transaction
            .execute(
                FINISH_SQL,
                &[
                    &active.job_id,
                    &JobState::Failed.as_str(),
                    &None::<Value>,
                    &error.code,
                    &error.message,
                ],
            )
            .await?;
    }
    transaction
        .execute(
            "INSERT INTO jobs (job_id, kind, state, parameters, username, created_at) \
             VALUES ($1, $2, 'queued', $3, $4, $5)",
            &[
                &job.job_id,
                &job.kind.as_str(),
                &job.parameters,
                &job.username,
                &job.created_at,
            ],
        )
        .await?;
    transaction.commit().await?;
    Ok(JobCreated::Queued(job.clone()))
}

#[async_trait]
impl JobStore for PostgresStore {
    async fn create_job(&self, job: &Job, timeout: Duration) -> Result<JobCreated, StoreError> {
        self.run("create_job", job, |client, job| {
            Box::pin(create(client, job, timeout))
        })
        .await
    }

    async fn mark_job_running(&self, job_id: Uuid) -> Result<Option<Job>, StoreError> {
        self.run("mark_job_running", &job_id, |client, id| {
            Box::pin(async move {
                let row = client
                    .query_opt(
                        &format!(
                            "UPDATE jobs SET state = 'running', started_at = now() \
                             WHERE job_id = $1 AND state = 'queued' RETURNING {COLUMNS}"
                        ),
                        &[id],
                    )
                    .await?;
                row.as_ref().map(read_job).transpose()
            })
        })
        .await
    }

    async fn mark_job_succeeded(&self, job_id: Uuid, summary: &Value) -> Result<(), StoreError> {
        self.run(
            "mark_job_succeeded",
            &(job_id, summary),
            |client, (id, summary)| {
                Box::pin(async move {
                    client
                        .execute(
                            FINISH_SQL,
                            &[
                                id,
                                &JobState::Succeeded.as_str(),
                                summary,
                                &None::<String>,
                                &None::<String>,
                            ],
                        )
                        .await
                        .map(drop)
                })
            },
        )
        .await
    }

    async fn mark_job_failed(&self, job_id: Uuid, error: &JobError) -> Result<(), StoreError> {
        self.run(
            "mark_job_failed",
            &(job_id, error),
            |client, (id, error)| {
                Box::pin(async move {
                    client
                        .execute(
                            FINISH_SQL,
                            &[
                                id,
                                &JobState::Failed.as_str(),
                                &None::<Value>,
                                &error.code,
                                &error.message,
                            ],
                        )
                        .await
                        .map(drop)
                })
            },
        )
        .await
    }

    async fn job(&self, job_id: Uuid) -> Result<Option<Job>, StoreError> {
        self.run("job", &job_id, |client, id| {
            Box::pin(async move {
                let row = client
                    .query_opt(
                        &format!("SELECT {COLUMNS} FROM jobs WHERE job_id = $1"),
                        &[id],
                    )
                    .await?;
                row.as_ref().map(read_job).transpose()
            })
        })
        .await
    }
}
