//! SQLite store: the local default for records, users and the prediction log.
//!
//! rusqlite is synchronous, so every call runs on tokio's blocking pool behind one
//! connection; WAL mode lets a `fraudctl` command and `fraudctl serve` share the file.

use crate::progress::{Step, Unit};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::dataset::{row_hash, RecordSource, SourceRow};
use crate::ports::{
    LoadSummary, LockOwner, RecordCounts, RecordRole, RecordStore, StoreError, StoredRecord,
    TrainingLock, UserStore, UserSummary,
};
use crate::schema::{Applicant, LabeledRecord, FEATURES, FEATURE_COUNT};

mod jobs;
mod lock;
mod monitor_window;
mod outcomes;
mod predictions;

/// Records, users and predictions in one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (or creates) the database file. Call `migrate` before use.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(|e| StoreError::from_source("open", e))?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
            )
            .map_err(|e| StoreError::from_source("open", e))?;
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
            work(&mut guard).map_err(|e| StoreError::from_source(operation, e))
        })
        .await
        .map_err(|e| StoreError::from_source(operation, e))?
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
        (
            // The owner, so a lock left by a killed process on this host can be taken over.
            "0005_training_lock_owner",
            "ALTER TABLE training_lock ADD COLUMN pid INTEGER;\n\
             ALTER TABLE training_lock ADD COLUMN host TEXT;"
                .to_string(),
        ),
        (
            // Rows keyed by content: SQLite cannot drop a UNIQUE constraint, so the table is
            // rebuilt; `migrate` then fills the hash of the rows copied over.
            "0006_records_content_hash",
            format!(
                "CREATE TABLE records_v6 (\n\
                 id INTEGER PRIMARY KEY,\n\
                 source TEXT NOT NULL,\n\
                 source_key TEXT NOT NULL,\n\
                 content_hash TEXT NOT NULL DEFAULT '',\n\
                 role TEXT NOT NULL CHECK (role IN ('reference', 'new')),\n\
                 creditability INTEGER NOT NULL CHECK (creditability IN (0, 1)),\n\
                 {feature_columns}\
                 loaded_at TEXT NOT NULL,\n\
                 absorbed_by INTEGER,\n\
                 UNIQUE (source, source_key, content_hash));\n\
                 INSERT INTO records_v6 (id, source, source_key, role, creditability, {features}, \
                 loaded_at, absorbed_by) SELECT id, source, source_key, role, creditability, \
                 {features}, loaded_at, absorbed_by FROM records;\n\
                 DROP TABLE records;\n\
                 ALTER TABLE records_v6 RENAME TO records;\n\
                 CREATE INDEX records_absorbed_by ON records (absorbed_by);",
                features = feature_select_list()
            ),
        ),
        (
            // Prediction ids (TEXT, the hyphenated UUID) and the threshold applied; rows
            // logged before keep NULLs, which the unique index allows any number of.
            "0007_prediction_ids",
            "ALTER TABLE predictions ADD COLUMN prediction_id TEXT;\n\
             ALTER TABLE predictions ADD COLUMN threshold REAL;\n\
             CREATE UNIQUE INDEX predictions_prediction_id ON predictions (prediction_id);"
                .to_string(),
        ),
        ("0008_outcomes", outcomes::MIGRATION.to_string()),
        (
            // Each prediction's reason codes as a JSON array of codes; NULL before.
            "0009_prediction_reason_codes",
            "ALTER TABLE predictions ADD COLUMN reason_codes TEXT;".to_string(),
        ),
        ("0010_jobs", jobs::MIGRATION.to_string()),
    ]
}

/// Fills `content_hash` of rows stored before loads were keyed by content.
fn backfill_content_hashes(transaction: &Connection) -> Result<(), rusqlite::Error> {
    let stored = select_records(transaction, "content_hash = ''", &[])?;
    let mut update = transaction.prepare("UPDATE records SET content_hash = ?1 WHERE id = ?2")?;
    for row in &stored {
        update.execute(params![row_hash(&row.record), row.id])?;
    }
    Ok(())
}

pub(super) fn feature_select_list() -> String {
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
    let loaded_at = parse_time(&row.get::<_, String>(3)?);
    let mut values = [0.0; FEATURE_COUNT];
    for (index, value) in values.iter_mut().enumerate() {
        *value = row.get::<_, i64>(4 + index)? as f64;
    }
    Ok(StoredRecord {
        id,
        record: LabeledRecord {
            applicant: Applicant(values),
            creditability,
        },
        absorbed_by,
        loaded_at,
    })
}

fn select_records(
    connection: &Connection,
    condition: &str,
    arguments: &[&dyn rusqlite::ToSql],
) -> Result<Vec<StoredRecord>, rusqlite::Error> {
    let sql = format!(
        "SELECT id, creditability, absorbed_by, loaded_at, {} FROM records WHERE {condition} \
         ORDER BY id",
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
            // Only in the run that applies migrations (0006 added the column), as the
            // PostgreSQL store does: a cold start does not scan every record for it.
            if !applied.is_empty() {
                backfill_content_hashes(&transaction)?;
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
        crate::outcomes::refuse_outcome_source(source)?;
        let source = source.to_string();
        let rows = rows.to_vec();
        self.with_connection("load_records", move |connection| {
            let transaction = connection.transaction()?;
            let features = feature_select_list();
            let placeholders: String = (0..FEATURE_COUNT)
                .map(|i| format!(", ?{}", i + 7))
                .collect();
            let insert_sql = format!(
                "INSERT INTO records \
                 (source, source_key, content_hash, role, creditability, loaded_at, {features}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6{placeholders})"
            );
            let assignments: String = FEATURES
                .iter()
                .enumerate()
                .map(|(i, f)| format!(", {} = ?{}", f.name, i + 7))
                .collect();
            // ?2 is unused here, so both statements take the same parameter list.
            let replace_sql = format!(
                "UPDATE records SET content_hash = ?3, role = ?4, creditability = ?5, \
                 loaded_at = ?6{assignments} WHERE id = ?1 AND ?2 IS NOT NULL"
            );
            let loaded_at = Utc::now().to_rfc3339();
            let mut summary = LoadSummary {
                offered: rows.len(),
                ..LoadSummary::default()
            };
            {
                let mut versions = transaction.prepare(
                    "SELECT id, content_hash, absorbed_by IS NULL FROM records \
                     WHERE source = ?1 AND source_key = ?2",
                )?;
                let mut insert = transaction.prepare(&insert_sql)?;
                let mut replace = transaction.prepare(&replace_sql)?;
                let progress = Step::start(
                    format!("insert {source} rows"),
                    Unit::Rows,
                    rows.len() as u64,
                );
                for row in &rows {
                    progress.advance(1);
                    let hash = row_hash(&row.record);
                    let stored: Vec<(i64, String, bool)> = versions
                        .query_map(params![source, row.key], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })?
                        .collect::<Result<_, _>>()?;
                    if stored.iter().any(|(_, h, _)| *h == hash) {
                        summary.already_present += 1;
                        continue;
                    }
                    let waiting = stored.iter().find(|(_, _, pending)| *pending).map(|v| v.0);
                    if stored.is_empty() {
                        summary.new += 1;
                    } else {
                        summary.changed += 1;
                    }
                    let mut values: Vec<Box<dyn rusqlite::ToSql>> = vec![
                        match waiting {
                            Some(id) => Box::new(id) as Box<dyn rusqlite::ToSql>,
                            None => Box::new(source.clone()),
                        },
                        Box::new(row.key.clone()),
                        Box::new(hash),
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
                    let parameters = rusqlite::params_from_iter(values.iter());
                    if waiting.is_some() {
                        replace.execute(parameters)?;
                        summary.replaced += 1;
                    } else {
                        insert.execute(parameters)?;
                        summary.inserted += 1;
                    }
                }
            }
            transaction.commit()?;
            Ok(summary)
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

    async fn pending_by_source(&self) -> Result<Vec<(String, usize)>, StoreError> {
        self.with_connection("pending_by_source", |connection| {
            let mut statement = connection.prepare(
                "SELECT source, COUNT(*) FROM records WHERE absorbed_by IS NULL \
                 GROUP BY source ORDER BY source",
            )?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as usize))
            })?;
            rows.collect()
        })
        .await
    }

    async fn record_sources(&self) -> Result<Vec<RecordSource>, StoreError> {
        self.with_connection("record_sources", |connection| {
            // RFC 3339 texts in UTC sort as the times they name.
            let mut statement = connection.prepare(
                "SELECT source, role, COUNT(*), MIN(loaded_at), MAX(loaded_at) FROM records \
                 GROUP BY source, role ORDER BY source, role",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(RecordSource {
                    source: row.get(0)?,
                    role: row.get(1)?,
                    rows: row.get::<_, i64>(2)?.max(0) as usize,
                    first_loaded_at: parse_time(&row.get::<_, String>(3)?),
                    last_loaded_at: parse_time(&row.get::<_, String>(4)?),
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn try_lock_training(
        &self,
        holder: &str,
    ) -> Result<Option<Box<dyn TrainingLock>>, StoreError> {
        lock::try_lock(self, holder).await
    }

    async fn training_lock_owner(&self) -> Result<Option<LockOwner>, StoreError> {
        lock::owner(self).await
    }

    async fn force_unlock_training(&self) -> Result<Option<LockOwner>, StoreError> {
        lock::force_unlock(self).await
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
