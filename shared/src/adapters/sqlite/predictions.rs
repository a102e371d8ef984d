//! The embedded store's prediction log: entries written in one transaction, looked up by
//! id through the unique index on `prediction_id`, and the aggregates retrain logs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Type;
use rusqlite::{params, OptionalExtension};
use uuid::Uuid;

use super::monitor_window::{window_aggregates, window_data_quality, window_parameters};
use super::SqliteStore;
use crate::dataset::DataQuality;
use crate::monitor::{ScoreReference, WindowAggregates};
use crate::ports::{
    MonitoredPrediction, PredictionLog, PredictionLogEntry, PredictionStats, StoreError,
};

/// A column read as text that does not parse (only a hand-edited file could hold one).
pub(super) fn conversion_error(
    index: usize,
    error: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(error))
}

fn read_entry(row: &rusqlite::Row<'_>) -> Result<PredictionLogEntry, rusqlite::Error> {
    let id: String = row.get(0)?;
    let created_at: String = row.get(1)?;
    let features: String = row.get(6)?;
    let reason_codes: Option<String> = row.get(8)?;
    Ok(PredictionLogEntry {
        prediction_id: Uuid::parse_str(&id).map_err(|e| conversion_error(0, e))?,
        created_at: DateTime::parse_from_rfc3339(&created_at)
            .map_err(|e| conversion_error(1, e))?
            .with_timezone(&Utc),
        model_version: row.get(2)?,
        threshold: row.get(3)?,
        probability_of_fraud: row.get(4)?,
        fraud: row.get(5)?,
        features: serde_json::from_str(&features).map_err(|e| conversion_error(6, e))?,
        username: row.get(7)?,
        // NULL in rows logged before reason codes existed.
        reason_codes: reason_codes
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| conversion_error(8, e))?
            .unwrap_or_default(),
    })
}

/// One log entry as the columns it is stored in.
struct LoggedRow {
    prediction_id: String,
    created_at: String,
    model_version: u32,
    threshold: f64,
    probability_of_fraud: f64,
    fraud: bool,
    features: String,
    username: Option<String>,
    reason_codes: String,
}

impl From<&PredictionLogEntry> for LoggedRow {
    fn from(entry: &PredictionLogEntry) -> Self {
        LoggedRow {
            prediction_id: entry.prediction_id.hyphenated().to_string(),
            created_at: entry.created_at.to_rfc3339(),
            model_version: entry.model_version,
            threshold: entry.threshold,
            probability_of_fraud: entry.probability_of_fraud,
            fraud: entry.fraud,
            features: entry.features.to_string(),
            username: entry.username.clone(),
            // A JSON array of strings, as `serde_json::Value::from(Vec<String>)` renders it.
            reason_codes: serde_json::to_string(&entry.reason_codes)
                .unwrap_or_else(|_| "[]".to_string()),
        }
    }
}

#[async_trait]
impl PredictionLog for SqliteStore {
    async fn log_predictions(&self, entries: &[PredictionLogEntry]) -> Result<(), StoreError> {
        // Rendered here, on the caller's thread: the blocking closure owns plain columns
        // rather than a deep copy of every entry's JSON.
        let rows: Vec<LoggedRow> = entries.iter().map(LoggedRow::from).collect();
        self.with_connection("log_predictions", move |connection| {
            let transaction = connection.transaction()?;
            {
                // Cached: the serving writer runs this once per batch, thousands of times.
                let mut statement = transaction.prepare_cached(
                    "INSERT INTO predictions \
                     (prediction_id, created_at, model_version, threshold, probability_of_fraud, \
                      fraud, features, username, reason_codes) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                     ON CONFLICT (prediction_id) DO NOTHING",
                )?;
                for row in &rows {
                    statement.execute(params![
                        row.prediction_id,
                        row.created_at,
                        row.model_version,
                        row.threshold,
                        row.probability_of_fraud,
                        row.fraud,
                        row.features,
                        row.username,
                        row.reason_codes,
                    ])?;
                }
            }
            transaction.commit()
        })
        .await
    }

    async fn prediction_by_id(
        &self,
        prediction_id: Uuid,
    ) -> Result<Option<PredictionLogEntry>, StoreError> {
        let id = prediction_id.hyphenated().to_string();
        self.with_connection("prediction_by_id", move |connection| {
            connection
                .query_row(
                    "SELECT prediction_id, created_at, model_version, threshold, \
                       probability_of_fraud, fraud, features, username, reason_codes \
                     FROM predictions WHERE prediction_id = ?1",
                    [id],
                    read_entry,
                )
                .optional()
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

    async fn predictions_in_window(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<MonitoredPrediction>, StoreError> {
        // Times are stored as RFC 3339 text in UTC, so text order is time order.
        let since = since.map(|t| t.to_rfc3339()).unwrap_or_default();
        let until = until.map(|t| t.to_rfc3339());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_connection("predictions_in_window", move |connection| {
            let mut statement = connection.prepare(
                "SELECT p.prediction_id, p.created_at, p.model_version, p.threshold, \
                   p.probability_of_fraud, p.fraud, p.features, p.username, \
                               p.reason_codes, o.fraud \
                 FROM predictions p LEFT JOIN outcomes o ON o.prediction_id = p.prediction_id \
                 WHERE p.prediction_id IS NOT NULL AND p.created_at >= ?1 \
                   AND (?2 IS NULL OR p.created_at < ?2) \
                 ORDER BY p.created_at, p.prediction_id LIMIT ?3",
            )?;
            let rows = statement.query_map(params![since, until, limit], |row| {
                Ok(MonitoredPrediction {
                    entry: read_entry(row)?,
                    outcome: row.get(9)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn served_outcomes(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<MonitoredPrediction>, StoreError> {
        let since = since.to_rfc3339();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_connection("served_outcomes", move |connection| {
            let mut statement = connection.prepare(
                "SELECT p.prediction_id, p.created_at, p.model_version, p.threshold, \
                   p.probability_of_fraud, p.fraud, p.features, p.username, \
                   p.reason_codes, o.fraud \
                 FROM predictions p JOIN outcomes o ON o.prediction_id = p.prediction_id \
                 WHERE p.created_at >= ?1 \
                 ORDER BY p.created_at DESC, p.prediction_id DESC LIMIT ?2",
            )?;
            let rows = statement.query_map(params![since, limit], |row| {
                Ok(MonitoredPrediction {
                    entry: read_entry(row)?,
                    outcome: row.get(9)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn window_aggregates(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        reference: &ScoreReference,
    ) -> Result<WindowAggregates, StoreError> {
        const OPERATION: &str = "window_aggregates";
        let window = window_parameters(since, until);
        let reference = reference.clone();
        self.with_connection(OPERATION, move |connection| {
            window_aggregates(connection, window, &reference)
        })
        .await?
        .map_err(|message| StoreError::backend(OPERATION, message))
    }

    async fn window_data_quality(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<DataQuality, StoreError> {
        let window = window_parameters(since, until);
        self.with_connection("window_data_quality", move |connection| {
            window_data_quality(connection, window)
        })
        .await
    }
}
