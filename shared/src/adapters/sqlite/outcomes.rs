//! The embedded store's outcomes: one transaction per report (SQLite's write lock serialises
//! reporters), each outcome decided by [`outcomes::decide`] and its labelled row written
//! beside it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};
use uuid::Uuid;

use super::{feature_select_list, SqliteStore};
use crate::dataset::row_hash;
use crate::outcomes::{
    self, Decision, Outcome, OutcomeState, OutcomeWrite, StoredOutcome, OUTCOME_SOURCE,
};
use crate::ports::{OutcomeStore, StoreError};
use crate::schema::{LabeledRecord, FEATURE_COUNT};

/// The outcomes table: one row per prediction id; `record_id` is the labelled row it made,
/// `history` the outcomes it replaced (a JSON array, oldest first).
pub(super) const MIGRATION: &str = "CREATE TABLE outcomes (\n\
     prediction_id TEXT PRIMARY KEY,\n\
     fraud INTEGER NOT NULL,\n\
     observed_at TEXT NOT NULL,\n\
     recorded_at TEXT NOT NULL,\n\
     username TEXT,\n\
     record_id INTEGER REFERENCES records (id),\n\
     history TEXT NOT NULL DEFAULT '[]');";

fn time(text: &str, index: usize) -> Result<DateTime<Utc>, rusqlite::Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                index,
                rusqlite::types::Type::Text,
                Box::new(e),
            )
        })
}

/// What is stored for one id: the logged inputs, the outcome, the absorbing version.
fn state_of(
    transaction: &Transaction<'_>,
    id: &str,
) -> Result<(OutcomeState, Option<i64>), rusqlite::Error> {
    let features: Option<String> = transaction
        .query_row(
            "SELECT features FROM predictions WHERE prediction_id = ?1",
            [id],
            |row| row.get(0),
        )
        .optional()?;
    let features = match features {
        Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?),
        None => None,
    };
    let stored = transaction
        .query_row(
            "SELECT o.fraud, o.observed_at, o.record_id, r.absorbed_by FROM outcomes o \
             LEFT JOIN records r ON r.id = o.record_id WHERE o.prediction_id = ?1",
            [id],
            |row| {
                let observed: String = row.get(1)?;
                Ok((
                    StoredOutcome {
                        fraud: row.get(0)?,
                        observed_at: time(&observed, 1)?,
                    },
                    row.get::<_, Option<i64>>(2)?,
                    row.get::<_, Option<u32>>(3)?,
                ))
            },
        )
        .optional()?;
    let (stored, record_id, absorbed_by) = match stored {
        Some((stored, record_id, absorbed_by)) => (Some(stored), record_id, absorbed_by),
        None => (None, None, None),
    };
    Ok((
        OutcomeState {
            features,
            stored,
            absorbed_by,
        },
        record_id,
    ))
}

fn insert_record(
    transaction: &Transaction<'_>,
    key: &str,
    record: &LabeledRecord,
) -> Result<i64, rusqlite::Error> {
    let placeholders: String = (0..FEATURE_COUNT)
        .map(|i| format!(", ?{}", i + 5))
        .collect();
    let sql = format!(
        "INSERT INTO records (source, source_key, content_hash, role, creditability, loaded_at, {}) \
         VALUES ('{OUTCOME_SOURCE}', ?1, ?2, 'new', ?3, ?4{placeholders})",
        feature_select_list()
    );
    let mut values: Vec<Box<dyn rusqlite::ToSql>> = vec![
        Box::new(key.to_string()),
        Box::new(row_hash(record)),
        Box::new(record.creditability),
        Box::new(Utc::now().to_rfc3339()),
    ];
    values.extend(
        record
            .applicant
            .0
            .iter()
            .map(|v| Box::new(*v as i64) as Box<dyn rusqlite::ToSql>),
    );
    transaction
        .prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(values.iter()))?;
    Ok(transaction.last_insert_rowid())
}

fn history_entry(
    previous: &StoredOutcome,
    recorded_at: &str,
    replaced_by: Option<&str>,
) -> serde_json::Value {
    serde_json::json!({
        "fraud": previous.fraud,
        "observed_at": previous.observed_at.to_rfc3339(),
        "recorded_at": recorded_at,
        "replaced_at": Utc::now().to_rfc3339(),
        "replaced_by": replaced_by,
    })
}

fn apply(
    transaction: &Transaction<'_>,
    outcome: &Outcome,
    overwrite: bool,
    username: Option<&str>,
) -> Result<Result<Decision, outcomes::UnusableInputs>, rusqlite::Error> {
    let id = outcome.prediction_id.hyphenated().to_string();
    let (state, record_id) = state_of(transaction, &id)?;
    let decision = match outcomes::decide(outcome, &state, overwrite) {
        Ok(decision) => decision,
        Err(unusable) => return Ok(Err(unusable)),
    };
    let now = Utc::now().to_rfc3339();
    match &decision.write {
        OutcomeWrite::Nothing => {}
        OutcomeWrite::Insert(record) => {
            let record_id = insert_record(transaction, &id, record)?;
            transaction.execute(
                "INSERT INTO outcomes (prediction_id, fraud, observed_at, recorded_at, username, record_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, outcome.fraud, outcome.observed_at.to_rfc3339(), now, username, record_id],
            )?;
        }
        OutcomeWrite::Replace { record, previous } => {
            let (history, recorded_at): (String, String) = transaction.query_row(
                "SELECT history, recorded_at FROM outcomes WHERE prediction_id = ?1",
                [&id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            let mut history: Vec<serde_json::Value> =
                serde_json::from_str(&history).unwrap_or_default();
            history.push(history_entry(previous, &recorded_at, username));
            transaction.execute(
                "UPDATE outcomes SET fraud = ?2, observed_at = ?3, recorded_at = ?4, username = ?5, \
                 history = ?6 WHERE prediction_id = ?1",
                params![
                    id,
                    outcome.fraud,
                    outcome.observed_at.to_rfc3339(),
                    now,
                    username,
                    serde_json::Value::Array(history).to_string()
                ],
            )?;
            // `decide` saw the row waiting; the write lock keeps it so until commit.
            transaction.execute(
                "UPDATE records SET creditability = ?2, content_hash = ?3 \
                 WHERE id = ?1 AND absorbed_by IS NULL",
                params![record_id, record.creditability, row_hash(record)],
            )?;
        }
    }
    Ok(Ok(decision))
}

#[async_trait]
impl OutcomeStore for SqliteStore {
    async fn record_outcomes(
        &self,
        outcomes: &[Outcome],
        overwrite: bool,
        username: Option<&str>,
    ) -> Result<Vec<Decision>, StoreError> {
        let outcomes = outcomes.to_vec();
        let username = username.map(str::to_string);
        let decided = self
            .with_connection("record_outcomes", move |connection| {
                // IMMEDIATE: the write lock first, so the state read is the state written over.
                let transaction = connection
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut decisions = Vec::with_capacity(outcomes.len());
                for outcome in &outcomes {
                    match apply(&transaction, outcome, overwrite, username.as_deref())? {
                        Ok(decision) => decisions.push(decision),
                        // Dropping the transaction rolls back what was written.
                        Err(unusable) => return Ok(Err(unusable)),
                    }
                }
                transaction.commit()?;
                Ok(Ok(decisions))
            })
            .await?;
        Ok(decided?)
    }

    async fn outcome_of(
        &self,
        prediction_id: Uuid,
    ) -> Result<Option<(StoredOutcome, Vec<StoredOutcome>)>, StoreError> {
        let id = prediction_id.hyphenated().to_string();
        self.with_connection("outcome_of", move |connection| {
            connection
                .query_row(
                    "SELECT fraud, observed_at, history FROM outcomes WHERE prediction_id = ?1",
                    [id],
                    |row| {
                        let observed: String = row.get(1)?;
                        let history: String = row.get(2)?;
                        let stored = StoredOutcome {
                            fraud: row.get(0)?,
                            observed_at: time(&observed, 1)?,
                        };
                        Ok((stored, outcomes::replaced_outcomes(&history)))
                    },
                )
                .optional()
        })
        .await
    }
}
