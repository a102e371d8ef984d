//! The training lock: `pg_try_advisory_lock` on a dedicated connection held until release,
//! so if the process dies the server drops the connection and the lock with it. Its owner
//! (pid, host, start) is written to `training_lock_owner` and believed only while that
//! session holds the lock.

use async_trait::async_trait;

use crate::ports::{LockOwner, StoreError, TrainingLock};

use super::pool::{pg_error, pg_message, reworded};
use super::PostgresStore;

/// Advisory lock key of the training lock ("fraudrisk" + 2). Advisory locks are per database.
const TRAINING_LOCK_KEY: i64 = 0x6672_6175_6472_6b02;

/// The session holding the training lock and its recorded owner: the advisory lock is the
/// truth, the owner row is only believed while its session holds the lock.
const LOCK_OWNER_SQL: &str = "SELECT l.pid, COALESCE(o.holder, a.application_name, 'unknown'), \
     o.pid, o.host, COALESCE(o.acquired_at, a.backend_start, now()) \
     FROM pg_locks l \
     LEFT JOIN training_lock_owner o ON o.backend_pid = l.pid \
     LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
       AND ((l.classid::text::bigint << 32) | l.objid::text::bigint) = $1";

fn read_lock_owner(row: &tokio_postgres::Row) -> Result<(i32, LockOwner), tokio_postgres::Error> {
    let pid: Option<i64> = row.try_get(2)?;
    Ok((
        row.try_get(0)?,
        LockOwner {
            holder: row.try_get(1)?,
            pid: pid.and_then(|p| u32::try_from(p).ok()),
            host: row.try_get(3)?,
            acquired_at: row.try_get(4)?,
        },
    ))
}

/// Takes the lock if nobody holds it, recording this process as its owner.
pub(super) async fn try_lock(
    store: &PostgresStore,
    holder: &str,
) -> Result<Option<Box<dyn TrainingLock>>, StoreError> {
    let operation = "try_lock_training";
    // A dedicated connection: the lock lives exactly as long as this session.
    let (client, connection) = store.config.connect(store.tls.clone()).await.map_err(|e| {
        let (pg, source) = reworded(e);
        let message = format!("cannot connect to {}: {pg}", store.description);
        StoreError::backend_source(operation, message, source)
    })?;
    let task = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(error = %pg_message(&error), "the training lock's connection ended");
        }
    });
    let label = format!("fraudrisk training lock: {holder}");
    let owner = LockOwner::this_process(holder);
    let taken = async {
        // Shows who holds the lock in pg_stat_activity.
        client
            .execute(
                "SELECT set_config('application_name', $1, false)",
                &[&label],
            )
            .await?;
        let taken = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&TRAINING_LOCK_KEY])
            .await?
            .try_get::<_, bool>(0)?;
        if taken {
            // Who holds it, for `fraudctl status`; a row left by a dead session is
            // ignored (see LOCK_OWNER_SQL) and overwritten here.
            client
                .execute(
                    "INSERT INTO training_lock_owner \
                     (id, holder, pid, host, acquired_at, backend_pid) \
                     VALUES (1, $1, $2, $3, $4, pg_backend_pid()) \
                     ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, \
                     pid = EXCLUDED.pid, host = EXCLUDED.host, \
                     acquired_at = EXCLUDED.acquired_at, backend_pid = EXCLUDED.backend_pid",
                    &[
                        &owner.holder,
                        &owner.pid.map(i64::from),
                        &owner.host,
                        &owner.acquired_at,
                    ],
                )
                .await?;
        }
        Ok::<_, tokio_postgres::Error>(taken)
    }
    .await
    .map_err(|e| pg_error(operation, e))?;
    if !taken {
        drop(client);
        task.abort();
        return Ok(None);
    }
    tracing::info!(holder, "took the training lock");
    Ok(Some(Box::new(PostgresTrainingLock { client, task })))
}

/// Who holds the lock now, if anyone.
pub(super) async fn owner(store: &PostgresStore) -> Result<Option<LockOwner>, StoreError> {
    store
        .run("training_lock_owner", &(), |client, _| {
            Box::pin(async move {
                match client
                    .query_opt(LOCK_OWNER_SQL, &[&TRAINING_LOCK_KEY])
                    .await?
                {
                    Some(row) => Ok(Some(read_lock_owner(&row)?.1)),
                    None => Ok(None),
                }
            })
        })
        .await
}

/// Ends the session holding the lock, whoever it is; returns the owner it removed.
pub(super) async fn force_unlock(store: &PostgresStore) -> Result<Option<LockOwner>, StoreError> {
    // An advisory lock belongs to its session: ending that session is the only way to
    // take it away (needs pg_signal_backend or the same role).
    store
        .run("force_unlock_training", &(), |client, _| {
            Box::pin(async move {
                let Some(row) = client
                    .query_opt(LOCK_OWNER_SQL, &[&TRAINING_LOCK_KEY])
                    .await?
                else {
                    return Ok(None);
                };
                let (backend_pid, owner) = read_lock_owner(&row)?;
                client
                    .execute("SELECT pg_terminate_backend($1)", &[&backend_pid])
                    .await?;
                client
                    .execute(
                        "DELETE FROM training_lock_owner WHERE backend_pid = $1",
                        &[&backend_pid],
                    )
                    .await?;
                Ok(Some(owner))
            })
        })
        .await
}

/// The training lock: an advisory lock held by a session of its own.
struct PostgresTrainingLock {
    client: tokio_postgres::Client,
    task: tokio::task::JoinHandle<()>,
}

#[async_trait]
impl TrainingLock for PostgresTrainingLock {
    async fn confirm_held(&self) -> Result<(), StoreError> {
        // A session-level advisory lock lasts as long as its session: a live session holds it.
        self.client
            .simple_query("SELECT 1")
            .await
            .map(|_| ())
            .map_err(|e| {
                let (pg, source) = reworded(e);
                let message = format!("the training lock's session was lost ({pg}); not promoting");
                StoreError::backend_source("confirm_training_lock", message, source)
            })
    }

    async fn release(self: Box<Self>) -> Result<(), StoreError> {
        let operation = "release_training_lock";
        // The owner row goes first, while the lock still keeps others from writing theirs.
        if let Err(error) = self
            .client
            .execute(
                "DELETE FROM training_lock_owner WHERE backend_pid = pg_backend_pid()",
                &[],
            )
            .await
        {
            tracing::warn!(error = %pg_message(&error), "could not clear the lock's owner row");
        }
        let result = self
            .client
            .query_one("SELECT pg_advisory_unlock($1)", &[&TRAINING_LOCK_KEY])
            .await;
        // Closing the session releases the lock in any case.
        drop(self.client);
        let _ = self.task.await;
        match result {
            Ok(row) => match row.try_get::<_, bool>(0) {
                Ok(true) => Ok(()),
                Ok(false) => Err(StoreError::backend(
                    operation,
                    "the lock was no longer held (its session was reset during training)",
                )),
                Err(e) => Err(pg_error(operation, e)),
            },
            Err(error) => {
                let (pg, source) = reworded(error);
                Err(StoreError::backend_source(
                    operation,
                    format!(
                        "the lock's connection was lost during training, so the lock lapsed \
                         early and another training may have overlapped: {pg}"
                    ),
                    source,
                ))
            }
        }
    }
}
