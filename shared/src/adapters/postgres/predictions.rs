//! The prediction log: batches written with one `INSERT ... SELECT FROM UNNEST`, and the
//! aggregates retrain logs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ports::{PredictionLog, PredictionLogEntry, PredictionStats, StoreError};

use super::PostgresStore;

struct PredictionColumns {
    created_at: Vec<DateTime<Utc>>,
    model_version: Vec<i64>,
    probability: Vec<f64>,
    fraud: Vec<bool>,
    features: Vec<serde_json::Value>,
    username: Vec<Option<String>>,
}

#[async_trait]
impl PredictionLog for PostgresStore {
    async fn log_predictions(&self, entries: &[PredictionLogEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        // One statement for the whole batch: arrays unnested server-side.
        let columns = PredictionColumns {
            created_at: entries.iter().map(|e| e.created_at).collect(),
            model_version: entries.iter().map(|e| i64::from(e.model_version)).collect(),
            probability: entries.iter().map(|e| e.probability_of_fraud).collect(),
            fraud: entries.iter().map(|e| e.fraud).collect(),
            features: entries.iter().map(|e| e.features.clone()).collect(),
            username: entries.iter().map(|e| e.username.clone()).collect(),
        };
        self.run("log_predictions", &columns, |client, c| {
            Box::pin(async move {
                client
                    .execute(
                        "INSERT INTO predictions \
                         (created_at, model_version, probability_of_fraud, fraud, features, username) \
                         SELECT * FROM UNNEST($1::TIMESTAMPTZ[], $2::BIGINT[], \
                           $3::DOUBLE PRECISION[], $4::BOOLEAN[], $5::JSONB[], $6::TEXT[])",
                        &[
                            &c.created_at,
                            &c.model_version,
                            &c.probability,
                            &c.fraud,
                            &c.features,
                            &c.username,
                        ],
                    )
                    .await
                    .map(|_| ())
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
}
