//! The prediction log: batches written with one `INSERT ... SELECT FROM UNNEST`, the lookup
//! by id (the unique index on `prediction_id`), and the aggregates retrain logs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ports::{
    MonitoredPrediction, PredictionLog, PredictionLogEntry, PredictionStats, StoreError,
};

use super::monitor_window::{window_aggregates, window_data_quality};
use super::PostgresStore;
use crate::dataset::DataQuality;
use crate::monitor::{ScoreReference, WindowAggregates};

struct PredictionColumns {
    prediction_id: Vec<Uuid>,
    threshold: Vec<f64>,
    created_at: Vec<DateTime<Utc>>,
    model_version: Vec<i64>,
    probability: Vec<f64>,
    fraud: Vec<bool>,
    features: Vec<serde_json::Value>,
    username: Vec<Option<String>>,
    /// Each entry's codes as a JSON array (a JSONB element: UNNEST would flatten a TEXT[][]).
    reason_codes: Vec<serde_json::Value>,
}

#[async_trait]
impl PredictionLog for PostgresStore {
    async fn log_predictions(&self, entries: &[PredictionLogEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        // One statement for the whole batch: arrays unnested server-side.
        let columns = PredictionColumns {
            prediction_id: entries.iter().map(|e| e.prediction_id).collect(),
            threshold: entries.iter().map(|e| e.threshold).collect(),
            created_at: entries.iter().map(|e| e.created_at).collect(),
            model_version: entries.iter().map(|e| i64::from(e.model_version)).collect(),
            probability: entries.iter().map(|e| e.probability_of_fraud).collect(),
            fraud: entries.iter().map(|e| e.fraud).collect(),
            features: entries.iter().map(|e| e.features.clone()).collect(),
            username: entries.iter().map(|e| e.username.clone()).collect(),
            reason_codes: entries
                .iter()
                .map(|e| serde_json::Value::from(e.reason_codes.clone()))
                .collect(),
        };
        self.run("log_predictions", &columns, |client, c| {
            Box::pin(async move {
                client
                    .execute(
                        "INSERT INTO predictions \
                         (created_at, model_version, probability_of_fraud, fraud, features, username, \
                          prediction_id, threshold, reason_codes) \
                         SELECT * FROM UNNEST($1::TIMESTAMPTZ[], $2::BIGINT[], \
                           $3::DOUBLE PRECISION[], $4::BOOLEAN[], $5::JSONB[], $6::TEXT[], \
                           $7::UUID[], $8::DOUBLE PRECISION[], $9::JSONB[]) \
                         ON CONFLICT (prediction_id) DO NOTHING",
                        &[
                            &c.created_at,
                            &c.model_version,
                            &c.probability,
                            &c.fraud,
                            &c.features,
                            &c.username,
                            &c.prediction_id,
                            &c.threshold,
                            &c.reason_codes,
                        ],
                    )
                    .await
                    .map(|_| ())
            })
        })
        .await
    }

    async fn prediction_by_id(
        &self,
        prediction_id: Uuid,
    ) -> Result<Option<PredictionLogEntry>, StoreError> {
        self.run("prediction_by_id", &prediction_id, |client, id| {
            Box::pin(async move {
                let Some(row) = client
                    .query_opt(
                        "SELECT prediction_id, created_at, model_version, threshold, \
                           probability_of_fraud, fraud, features, username, reason_codes \
                         FROM predictions WHERE prediction_id = $1",
                        &[id],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                Ok(Some(read_entry(&row)?))
            })
        })
        .await
    }

    async fn prediction_stats(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<PredictionStats, StoreError> {
        self.run("prediction_stats", &since, |client, since| {
            Box::pin(async move {
                let row = client
                    .query_one(
                        "SELECT COUNT(*), COUNT(*) FILTER (WHERE fraud), \
                           COALESCE(AVG(probability_of_fraud), 0)::DOUBLE PRECISION \
                         FROM predictions \
                         WHERE $1::TIMESTAMPTZ IS NULL OR created_at >= $1::TIMESTAMPTZ",
                        &[since],
                    )
                    .await?;
                Ok(PredictionStats {
                    count: row.try_get::<_, i64>(0)?.max(0) as u64,
                    fraud_count: row.try_get::<_, i64>(1)?.max(0) as u64,
                    mean_probability_of_fraud: row.try_get(2)?,
                })
            })
        })
        .await
    }

    async fn predictions_in_window(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<MonitoredPrediction>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(
            "predictions_in_window",
            &(since, until, limit),
            |client, (since, until, limit)| {
                Box::pin(async move {
                    let rows = client
                        .query(
                            "SELECT p.prediction_id, p.created_at, p.model_version, p.threshold, \
                               p.probability_of_fraud, p.fraud, p.features, p.username, \
                               p.reason_codes, o.fraud \
                             FROM predictions p \
                             LEFT JOIN outcomes o ON o.prediction_id = p.prediction_id \
                             WHERE p.prediction_id IS NOT NULL \
                               AND ($1::TIMESTAMPTZ IS NULL OR p.created_at >= $1::TIMESTAMPTZ) \
                               AND ($2::TIMESTAMPTZ IS NULL OR p.created_at < $2::TIMESTAMPTZ) \
                             ORDER BY p.created_at, p.prediction_id LIMIT $3",
                            &[since, until, limit],
                        )
                        .await?;
                    rows.iter()
                        .map(|row| {
                            Ok(MonitoredPrediction {
                                entry: read_entry(row)?,
                                outcome: row.try_get(9)?,
                            })
                        })
                        .collect()
                })
            },
        )
        .await
    }

    async fn served_outcomes(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<MonitoredPrediction>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(
            "served_outcomes",
            &(since, limit),
            |client, (since, limit)| {
                Box::pin(async move {
                    let rows = client
                        .query(
                            "SELECT p.prediction_id, p.created_at, p.model_version, p.threshold, \
                               p.probability_of_fraud, p.fraud, p.features, p.username, \
                               p.reason_codes, o.fraud \
                             FROM predictions p \
                             JOIN outcomes o ON o.prediction_id = p.prediction_id \
                             WHERE p.created_at >= $1 \
                             ORDER BY p.created_at DESC, p.prediction_id DESC LIMIT $2",
                            &[since, limit],
                        )
                        .await?;
                    rows.iter()
                        .map(|row| {
                            Ok(MonitoredPrediction {
                                entry: read_entry(row)?,
                                outcome: row.try_get(9)?,
                            })
                        })
                        .collect()
                })
            },
        )
        .await
    }

    async fn window_aggregates(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        reference: &ScoreReference,
    ) -> Result<WindowAggregates, StoreError> {
        const OPERATION: &str = "window_aggregates";
        // Each attempt starts a fresh scan: a retry after a lost connection counts nothing twice.
        self.run(
            OPERATION,
            &(since, until, reference),
            |client, (since, until, reference)| {
                Box::pin(window_aggregates(client, since, until, reference))
            },
        )
        .await?
        .map_err(|message| StoreError::backend(OPERATION, message))
    }

    async fn window_data_quality(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<DataQuality, StoreError> {
        self.run(
            "window_data_quality",
            &(since, until),
            |client, (since, until)| Box::pin(window_data_quality(client, since, until)),
        )
        .await
    }
}

/// A log entry from the first nine columns of `prediction_id, created_at, model_version,
/// threshold, probability_of_fraud, fraud, features, username, reason_codes`.
fn read_entry(row: &tokio_postgres::Row) -> Result<PredictionLogEntry, tokio_postgres::Error> {
    Ok(PredictionLogEntry {
        prediction_id: row.try_get(0)?,
        created_at: row.try_get(1)?,
        // Written from a u32, so it fits; a hand-edited row saturates.
        model_version: u32::try_from(row.try_get::<_, i64>(2)?).unwrap_or(u32::MAX),
        threshold: row.try_get(3)?,
        probability_of_fraud: row.try_get(4)?,
        fraud: row.try_get(5)?,
        features: row.try_get(6)?,
        username: row.try_get(7)?,
        // NULL in rows logged before reason codes existed; a hand-edited non-array reads as none.
        reason_codes: row
            .try_get::<_, Option<serde_json::Value>>(8)?
            .and_then(|codes| serde_json::from_value(codes).ok())
            .unwrap_or_default(),
    })
}
