//! SQLite store: the local default for records, users and the prediction log.
//!
//! rusqlite is synchronous, so every call runs on tokio's blocking pool behind one
//! connection; WAL mode lets a `fraudctl` command and `fraudctl serve` share the file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::dataset::SourceRow;
use crate::ports::{
    LoadSummary, PredictionLog, PredictionLogEntry, PredictionStats, RecordCounts, RecordRole,
    RecordStore, StoreError, StoredRecord, TrainingLock, UserStore, UserSummary,
};
use crate::schema::{Applicant, LabeledRecord, FEATURES, FEATURE_COUNT};

/// A training lock older than this is taken to belong to a crashed process.
const STALE_LOCK_AFTER_HOURS: i64 = 2;

/// Records, users and predictions in one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (or creates) the database file. Call `migrate` before use.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(|e| StoreError::backend("open", e))?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
            )
            .map_err(|e| StoreError::backend("open", e))?;
        Ok(SqliteStore {
            connection: Arc::new(Mutex::new(connection)),
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` with the connection on the blocking pool.
    async fn with_connection<T, F>(&self, operation: &'static str, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let mut guard = connection
                .lock()
                .map_err(|_| StoreError::backend(operation, "connection mutex poisoned"))?;
            work(&mut guard).map_err(|e| StoreError::backend(operation, e))
        })
        .await
        .map_err(|e| StoreError::backend(operation, e))?
    }
}

/// The migrations, in order. Feature columns come from the schema.
fn migrations() -> Vec<(&'static str, String)> {
    let feature_columns: String = FEATURES
        .iter()
        .map(|f| format!("    {} INTEGER NOT NULL,\n", f.name))
        .collect();
    vec![
        (
            "0001_records",
            format!(
                "CREATE TABLE records (\n\
                 id INTEGER PRIMARY KEY,\n\
                 source TEXT NOT NULL,\n\
                 source_key TEXT NOT NULL,\n\
                 role TEXT NOT NULL CHECK (role IN ('reference', 'new')),\n\
                 creditability INTEGER NOT NULL CHECK (creditability IN (0, 1)),\n\
                 {feature_columns}\
                 loaded_at TEXT NOT NULL,\n\
                 absorbed_by INTEGER,\n\
                 UNIQUE (source, source_key));\n\
                 CREATE INDEX records_absorbed_by ON records (absorbed_by);"
            ),
        ),
        (
            "0002_users",
            "CREATE TABLE users (\n\
             username TEXT PRIMARY KEY,\n\
             password_hash TEXT NOT NULL,\n\
             created_at TEXT NOT NULL);"
                .to_string(),
        ),
        (
            "0003_predictions",
            "CREATE TABLE predictions (\n\
             id INTEGER PRIMARY KEY,\n\
             created_at TEXT NOT NULL,\n\
             model_version INTEGER NOT NULL,\n\
             probability_of_fraud REAL NOT NULL,\n\
             fraud INTEGER NOT NULL,\n\
             features TEXT NOT NULL,\n\
             username TEXT);\n\
             CREATE INDEX predictions_created_at ON predictions (created_at);"
                .to_string(),
        ),
        (
            "0004_training_lock",
            "CREATE TABLE training_lock (\n\
             id INTEGER PRIMARY KEY CHECK (id = 1),\n\
             holder TEXT NOT NULL,\n\
             acquired_at TEXT NOT NULL);"
                .to_string(),
        ),
    ]
}

fn feature_select_list() -> String {
    FEATURES
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_stored(row: &rusqlite::Row<'_>) -> Result<StoredRecord, rusqlite::Error> {
    let id: i64 = row.get(0)?;
    let creditability: u8 = row.get(1)?;
    let absorbed_by: Option<u32> = row.get(2)?;
    let mut values = [0.0; FEATURE_COUNT];
    for (index, value) in values.iter_mut().enumerate() {
        *value = row.get::<_, i64>(3 + index)? as f64;
    }
    Ok(StoredRecord {
        id,
        record: LabeledRecord {
            applicant: Applicant(values),
            creditability,
        },
        absorbed_by,
    })
}

fn select_records(
    connection: &Connection,
    condition: &str,
    arguments: &[&dyn rusqlite::ToSql],
) -> Result<Vec<StoredRecord>, rusqlite::Error> {
    let sql = format!(
        "SELECT id, creditability, absorbed_by, {} FROM records WHERE {condition} ORDER BY id",
        feature_select_list()
    );
    let mut statement = connection.prepare(&sql)?;
    let rows = statement.query_map(arguments, read_stored)?;
    rows.collect()
}

#[async_trait]
impl RecordStore for SqliteStore {
    async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        self.with_connection("migrate", |connection| {
            let transaction = connection.transaction()?;
            transaction.execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (\
                 name TEXT PRIMARY KEY, applied_at TEXT NOT NULL);",
            )?;
            let mut applied = Vec::new();
            for (name, sql) in migrations() {
                let done: Option<String> = transaction
                    .query_row(
                        "SELECT name FROM schema_migrations WHERE name = ?1",
                        [name],
                        |row| row.get(0),
                    )
                    .optional()?;
                if done.is_none() {
                    transaction.execute_batch(&sql)?;
                    transaction.execute(
                        "INSERT INTO schema_migrations (name, applied_at) VALUES (?1, ?2)",
                        params![name, Utc::now().to_rfc3339()],
                    )?;
                    applied.push(name.to_string());
                }
            }
            transaction.commit()?;
            Ok(applied)
        })
        .await
    }

    async fn load_records(
        &self,
        source: &str,
        role: RecordRole,
        rows: &[SourceRow],
    ) -> Result<LoadSummary, StoreError> {
        let source = source.to_string();
        let rows = rows.to_vec();
        self.with_connection("load_records", move |connection| {
            let transaction = connection.transaction()?;
            let placeholders: String = (0..FEATURE_COUNT)
                .map(|i| format!(", ?{}", i + 6))
                .collect();
            let sql = format!(
                "INSERT INTO records (source, source_key, role, creditability, loaded_at, {}) \
                 VALUES (?1, ?2, ?3, ?4, ?5{placeholders}) \
                 ON CONFLICT (source, source_key) DO NOTHING",
                feature_select_list()
            );
            let loaded_at = Utc::now().to_rfc3339();
            let mut inserted = 0;
            {
                let mut statement = transaction.prepare(&sql)?;
                for row in &rows {
                    let mut values: Vec<Box<dyn rusqlite::ToSql>> = vec![
                        Box::new(source.clone()),
                        Box::new(row.key.clone()),
                        Box::new(role.as_str()),
                        Box::new(row.record.creditability),
                        Box::new(loaded_at.clone()),
                    ];
                    values.extend(
                        row.record
                            .applicant
                            .0
                            .iter()
                            .map(|v| Box::new(*v as i64) as Box<dyn rusqlite::ToSql>),
                    );
                    inserted += statement.execute(rusqlite::params_from_iter(values.iter()))?;
                }
            }
            transaction.commit()?;
            Ok(LoadSummary {
                offered: rows.len(),
                inserted,
                already_present: rows.len() - inserted,
            })
        })
        .await
    }

    async fn records_by_role(&self, role: RecordRole) -> Result<Vec<StoredRecord>, StoreError> {
        self.with_connection("records_by_role", move |connection| {
            select_records(connection, "role = ?1", &[&role.as_str()])
        })
        .await
    }

    async fn absorbed_records(&self) -> Result<Vec<StoredRecord>, StoreError> {
        self.with_connection("absorbed_records", |connection| {
            select_records(connection, "absorbed_by IS NOT NULL", &[])
        })
        .await
    }

    async fn pending_records(&self) -> Result<Vec<StoredRecord>, StoreError> {
        self.with_connection("pending_records", |connection| {
            select_records(connection, "absorbed_by IS NULL", &[])
        })
        .await
    }

    async fn mark_absorbed(&self, ids: &[i64], version: u32) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        self.with_connection("mark_absorbed", move |connection| {
            let transaction = connection.transaction()?;
            {
                let mut statement = transaction.prepare(
                    "UPDATE records SET absorbed_by = ?1 WHERE id = ?2 AND absorbed_by IS NULL",
                )?;
                for id in &ids {
                    statement.execute(params![version, id])?;
                }
            }
            transaction.commit()
        })
        .await
    }

    async fn record_counts(&self) -> Result<RecordCounts, StoreError> {
        self.with_connection("record_counts", |connection| {
            connection.query_row(
                "SELECT \
                   COALESCE(SUM(role = 'reference'), 0), COALESCE(SUM(role = 'new'), 0), \
                   COALESCE(SUM(absorbed_by IS NOT NULL), 0), COALESCE(SUM(absorbed_by IS NULL), 0) \
                 FROM records",
                [],
                |row| {
                    Ok(RecordCounts {
                        reference: row.get::<_, i64>(0)? as usize,
                        new: row.get::<_, i64>(1)? as usize,
                        absorbed: row.get::<_, i64>(2)? as usize,
                        pending: row.get::<_, i64>(3)? as usize,
                    })
                },
            )
        })
        .await
    }

    async fn try_lock_training(
        &self,
        holder: &str,
    ) -> Result<Option<Box<dyn TrainingLock>>, StoreError> {
        let holder = holder.to_string();
        let now = Utc::now();
        let stale = (now - Duration::hours(STALE_LOCK_AFTER_HOURS)).to_rfc3339();
        let acquired_at = now.to_rfc3339();
        let stamp = acquired_at.clone();
        let taken = self
            .with_connection("try_lock_training", move |connection| {
                let transaction =
                    connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                transaction.execute(
                    "DELETE FROM training_lock WHERE acquired_at < ?1",
                    params![stale],
                )?;
                let inserted = transaction.execute(
                    "INSERT OR IGNORE INTO training_lock (id, holder, acquired_at) VALUES (1, ?1, ?2)",
                    params![holder, stamp],
                )?;
                transaction.commit()?;
                Ok(inserted == 1)
            })
            .await?;
        Ok(taken.then(|| {
            Box::new(SqliteTrainingLock {
                store: self.clone(),
                acquired_at,
            }) as Box<dyn TrainingLock>
        }))
    }
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
                "the training lock was lost (taken over as stale); not promoting".to_string(),
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

fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn add_user(&self, username: &str, password_hash: &str) -> Result<(), StoreError> {
        let username = username.to_string();
        let hash = password_hash.to_string();
        let inserted = self
            .with_connection("add_user", move |connection| {
                connection.execute(
                    "INSERT OR IGNORE INTO users (username, password_hash, created_at) \
                     VALUES (?1, ?2, ?3)",
                    params![username, hash, Utc::now().to_rfc3339()],
                )
            })
            .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict("the user exists already".to_string()));
        }
        Ok(())
    }

    async fn password_hash(&self, username: &str) -> Result<Option<String>, StoreError> {
        let username = username.to_string();
        self.with_connection("password_hash", move |connection| {
            connection
                .query_row(
                    "SELECT password_hash FROM users WHERE username = ?1",
                    [username],
                    |row| row.get(0),
                )
                .optional()
        })
        .await
    }

    async fn list_users(&self) -> Result<Vec<UserSummary>, StoreError> {
        self.with_connection("list_users", |connection| {
            let mut statement =
                connection.prepare("SELECT username, created_at FROM users ORDER BY username")?;
            let rows = statement.query_map([], |row| {
                let created: String = row.get(1)?;
                Ok(UserSummary {
                    username: row.get(0)?,
                    created_at: parse_time(&created),
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn remove_user(&self, username: &str) -> Result<bool, StoreError> {
        let username = username.to_string();
        self.with_connection("remove_user", move |connection| {
            connection
                .execute("DELETE FROM users WHERE username = ?1", [username])
                .map(|n| n > 0)
        })
        .await
    }
}

#[async_trait]
impl PredictionLog for SqliteStore {
    async fn log_predictions(&self, entries: &[PredictionLogEntry]) -> Result<(), StoreError> {
        let entries = entries.to_vec();
        self.with_connection("log_predictions", move |connection| {
            let transaction = connection.transaction()?;
            {
                let mut statement = transaction.prepare(
                    "INSERT INTO predictions \
                     (created_at, model_version, probability_of_fraud, fraud, features, username) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for entry in &entries {
                    statement.execute(params![
                        entry.created_at.to_rfc3339(),
                        entry.model_version,
                        entry.probability_of_fraud,
                        entry.fraud,
                        entry.features.to_string(),
                        entry.username,
                    ])?;
                }
            }
            transaction.commit()
        })
        .await
    }

    async fn prediction_stats(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<PredictionStats, StoreError> {
        let since = since.map(|t| t.to_rfc3339()).unwrap_or_default();
        self.with_connection("prediction_stats", move |connection| {
            connection.query_row(
                "SELECT COUNT(*), COALESCE(SUM(fraud), 0), COALESCE(AVG(probability_of_fraud), 0) \
                 FROM predictions WHERE created_at >= ?1",
                [since],
                |row| {
                    Ok(PredictionStats {
                        count: row.get::<_, i64>(0)? as u64,
                        fraud_count: row.get::<_, i64>(1)? as u64,
                        mean_probability_of_fraud: row.get(2)?,
                    })
                },
            )
        })
        .await
    }
}
