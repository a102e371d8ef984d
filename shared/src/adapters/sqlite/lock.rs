//! The embedded store's training lock: one row that records its owner (pid, host, time).
//!
//! A row left by a process that is gone (same host, pid not alive) is taken over by the
//! next training; one whose owner cannot be checked expires after two hours.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{parse_time, SqliteStore};
use crate::ports::{LockOwner, StoreError, TrainingLock};

/// A training lock whose owner cannot be checked (another host, or recorded before owners
/// were) is taken to belong to a crashed process after this long.
const STALE_LOCK_AFTER_HOURS: i64 = 2;

/// Takes the lock, first removing one its owner left behind (see [`lock_is_abandoned`]).
pub(super) async fn try_lock(
    store: &SqliteStore,
    holder: &str,
) -> Result<Option<Box<dyn TrainingLock>>, StoreError> {
    let owner = LockOwner::this_process(holder);
    let acquired_at = owner.acquired_at.to_rfc3339();
    let stamp = acquired_at.clone();
    let stale_before = owner.acquired_at - Duration::hours(STALE_LOCK_AFTER_HOURS);
    let taken = store
        .with_connection("try_lock_training", move |connection| {
            let transaction =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if let Some(current) = read_lock_owner(&transaction)? {
                if lock_is_abandoned(&current, stale_before) {
                    tracing::warn!(
                        owner = %current.describe(),
                        "taking over a training lock its owner left behind"
                    );
                    transaction.execute("DELETE FROM training_lock WHERE id = 1", [])?;
                }
            }
            let inserted = transaction.execute(
                "INSERT OR IGNORE INTO training_lock (id, holder, acquired_at, pid, host) \
                 VALUES (1, ?1, ?2, ?3, ?4)",
                params![owner.holder, stamp, owner.pid, owner.host],
            )?;
            transaction.commit()?;
            Ok(inserted == 1)
        })
        .await?;
    Ok(taken.then(|| {
        Box::new(SqliteTrainingLock {
            store: store.clone(),
            acquired_at,
        }) as Box<dyn TrainingLock>
    }))
}

pub(super) async fn owner(store: &SqliteStore) -> Result<Option<LockOwner>, StoreError> {
    store
        .with_connection("training_lock_owner", |connection| {
            read_lock_owner(connection)
        })
        .await
}

pub(super) async fn force_unlock(store: &SqliteStore) -> Result<Option<LockOwner>, StoreError> {
    store
        .with_connection("force_unlock_training", |connection| {
            let transaction =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let owner = read_lock_owner(&transaction)?;
            transaction.execute("DELETE FROM training_lock WHERE id = 1", [])?;
            transaction.commit()?;
            Ok(owner)
        })
        .await
}

/// A lock is abandoned when its owner ran on this host and is gone; an owner that cannot be
/// checked (another host, no pid recorded) keeps it for [`STALE_LOCK_AFTER_HOURS`].
fn lock_is_abandoned(owner: &LockOwner, stale_before: DateTime<Utc>) -> bool {
    let checkable = owner.pid.is_some()
        && owner.host.as_deref() == Some(crate::lock_owner::host_name().as_str());
    if checkable {
        owner.is_gone()
    } else {
        owner.acquired_at < stale_before
    }
}

fn read_lock_owner(connection: &Connection) -> Result<Option<LockOwner>, rusqlite::Error> {
    connection
        .query_row(
            "SELECT holder, acquired_at, pid, host FROM training_lock WHERE id = 1",
            [],
            |row| {
                let acquired_at: String = row.get(1)?;
                Ok(LockOwner {
                    holder: row.get(0)?,
                    acquired_at: parse_time(&acquired_at),
                    pid: row.get(2)?,
                    host: row.get(3)?,
                })
            },
        )
        .optional()
}

struct SqliteTrainingLock {
    store: SqliteStore,
    /// Identifies our row: a stale-lock takeover writes a new time.
    acquired_at: String,
}

#[async_trait]
impl TrainingLock for SqliteTrainingLock {
    async fn confirm_held(&self) -> Result<(), StoreError> {
        let acquired_at = self.acquired_at.clone();
        let held = self
            .store
            .with_connection("confirm_training_lock", move |connection| {
                connection
                    .query_row(
                        "SELECT COUNT(*) FROM training_lock WHERE id = 1 AND acquired_at = ?1",
                        [acquired_at],
                        |row| row.get::<_, i64>(0),
                    )
                    .map(|n| n == 1)
            })
            .await?;
        if held {
            Ok(())
        } else {
            Err(StoreError::Conflict(
                "the training lock was lost (removed by fraudctl unlock, or taken over as \
                 abandoned); not promoting"
                    .to_string(),
            ))
        }
    }

    async fn release(self: Box<Self>) -> Result<(), StoreError> {
        let acquired_at = self.acquired_at.clone();
        self.store
            .with_connection("release_training_lock", move |connection| {
                connection
                    .execute(
                        "DELETE FROM training_lock WHERE id = 1 AND acquired_at = ?1",
                        [acquired_at],
                    )
                    .map(|_| ())
            })
            .await
    }
}
