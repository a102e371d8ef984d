//! Training jobs in both stores, one scenario: one active job at a time, a stale one taken
//! over (marked `timed_out`), queued → running only once (a repeated delivery runs nothing),
//! the summary and the error stored, a late result replacing a `timed_out` failure.

mod it_common;

use std::time::Duration;

use chrono::Utc;
use fraudrisk::adapters::postgres::PostgresStore;
use fraudrisk::adapters::sqlite::SqliteStore;
use fraudrisk::jobs::TIMED_OUT;
use fraudrisk::ports::{Job, JobCreated, JobError, JobKind, JobState, JobStore, RecordStore};
use it_common::TestDatabase;
use serde_json::json;
use uuid::Uuid;

const HOUR: Duration = Duration::from_secs(3600);

async fn scenario(store: &dyn JobStore) {
    assert_eq!(store.job(Uuid::new_v4()).await.unwrap(), None);

    let first = Job::queued(
        JobKind::Retrain,
        json!({"mode": "if-drift"}),
        Some("merlin"),
    );
    assert_eq!(
        store.create_job(&first, HOUR).await.unwrap(),
        JobCreated::Queued(first.clone())
    );
    let stored = store.job(first.job_id).await.unwrap().expect("stored");
    assert_eq!(stored.state, JobState::Queued);
    assert_eq!(stored.kind, JobKind::Retrain);
    assert_eq!(stored.parameters, json!({"mode": "if-drift"}));
    assert_eq!(stored.username.as_deref(), Some("merlin"));
    assert_eq!(
        stored.created_at.timestamp_micros(),
        first.created_at.timestamp_micros()
    );

    // One active job at a time, whatever its kind: the second is refused, naming the first.
    let second = Job::queued(JobKind::Initialtrain, json!({"force": false}), None);
    match store.create_job(&second, HOUR).await.unwrap() {
        JobCreated::Busy(active) => assert_eq!(active.job_id, first.job_id),
        other => panic!("expected busy, got {other:?}"),
    }
    assert_eq!(store.job(second.job_id).await.unwrap(), None);

    // Queued → running once; a second delivery gets nothing to run.
    let running = store
        .mark_job_running(first.job_id)
        .await
        .unwrap()
        .expect("ran");
    assert_eq!(running.state, JobState::Running);
    assert!(running.started_at.is_some());
    assert_eq!(store.mark_job_running(first.job_id).await.unwrap(), None);
    assert_eq!(store.mark_job_running(Uuid::new_v4()).await.unwrap(), None);

    // Still active while running.
    assert!(matches!(
        store.create_job(&second, HOUR).await.unwrap(),
        JobCreated::Busy(_)
    ));

    let summary = json!({"mode": "if-drift", "outcome": "waiting_for_rows"});
    store
        .mark_job_succeeded(first.job_id, &summary)
        .await
        .unwrap();
    let done = store.job(first.job_id).await.unwrap().expect("stored");
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.summary, Some(summary));
    assert!(done.finished_at.is_some());
    assert_eq!(done.error, None);
    // A finished job stays finished.
    let error = JobError {
        code: "internal".to_string(),
        message: "late".to_string(),
    };
    store.mark_job_failed(first.job_id, &error).await.unwrap();
    assert_eq!(
        store.job(first.job_id).await.unwrap().map(|j| j.state),
        Some(JobState::Succeeded)
    );

    // Nothing active now: the second job is stored; it fails with its error.
    assert!(matches!(
        store.create_job(&second, HOUR).await.unwrap(),
        JobCreated::Queued(_)
    ));
    store
        .mark_job_running(second.job_id)
        .await
        .unwrap()
        .expect("ran");
    let conflict = JobError {
        code: "conflict".to_string(),
        message: "initialtrain would replace a retrain champion".to_string(),
    };
    store
        .mark_job_failed(second.job_id, &conflict)
        .await
        .unwrap();
    let failed = store.job(second.job_id).await.unwrap().expect("stored");
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.error, Some(conflict));

    // A job queued two hours ago is stale under a one-hour timeout: the next job takes over
    // and the stale one is stored as failed, timed out.
    let mut stale = Job::queued(JobKind::Retrain, json!({"mode": "always"}), None);
    stale.created_at = Utc::now() - chrono::Duration::hours(2);
    assert!(matches!(
        store.create_job(&stale, HOUR).await.unwrap(),
        JobCreated::Queued(_)
    ));
    let next = Job::queued(JobKind::Retrain, json!({"mode": "always"}), None);
    assert!(matches!(
        store.create_job(&next, HOUR).await.unwrap(),
        JobCreated::Queued(_)
    ));
    let timed_out = store.job(stale.job_id).await.unwrap().expect("stored");
    assert_eq!(timed_out.state, JobState::Failed);
    assert_eq!(timed_out.error.map(|e| e.code), Some(TIMED_OUT.to_string()));
    // A timed-out job is not run any more; but a late result of its worker is kept.
    assert_eq!(store.mark_job_running(stale.job_id).await.unwrap(), None);
    store
        .mark_job_succeeded(stale.job_id, &json!({"late": true}))
        .await
        .unwrap();
    let late = store.job(stale.job_id).await.unwrap().expect("stored");
    assert_eq!(late.state, JobState::Succeeded);
    assert_eq!(late.summary, Some(json!({"late": true})));
    assert_eq!(late.error, None);
}

#[tokio::test]
async fn sqlite_store_keeps_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("jobs.sqlite3")).unwrap();
    store.migrate().await.unwrap();
    scenario(&store).await;
}

#[tokio::test]
#[ignore = "needs services"]
async fn postgres_store_keeps_jobs() {
    it_common::start();
    let database = TestDatabase::create("jobs").await;
    let store = PostgresStore::connect(&database.settings()).await.unwrap();
    store.migrate().await.unwrap();
    scenario(&store).await;
}
