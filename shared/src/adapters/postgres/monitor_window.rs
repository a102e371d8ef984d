//! The monitor's aggregates in PostgreSQL: the distinct logged values per feature with
//! `jsonb_each` and `GROUP BY`, then the window's scores read through a portal in batches in
//! P(fraud) order, both in one read-only REPEATABLE READ transaction (one snapshot). The
//! server sorts (spilling to disk past `work_mem`); this process holds one batch at a time.

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, Transaction};

use crate::dataset::{DataQuality, QualityTally};
use crate::monitor::{
    checked_number, logged_applicant, FeatureValueCounts, ScoreReference, ServedScore,
    WindowAggregates, WindowScan,
};
use crate::schema::{feature_index, FEATURES};

/// Rows fetched per round trip from the portal.
const BATCH_ROWS: i32 = 10_000;

/// Which predictions are in the window (with `$1` since and `$2` until, either NULL).
const IN_WINDOW: &str = "p.prediction_id IS NOT NULL \
                         AND ($1::TIMESTAMPTZ IS NULL OR p.created_at >= $1::TIMESTAMPTZ) \
                         AND ($2::TIMESTAMPTZ IS NULL OR p.created_at < $2::TIMESTAMPTZ)";

pub(super) async fn window_aggregates(
    client: &mut deadpool_postgres::Object,
    since: &Option<DateTime<Utc>>,
    until: &Option<DateTime<Utc>>,
    reference: &ScoreReference,
) -> Result<Result<WindowAggregates, String>, tokio_postgres::Error> {
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let window: [&(dyn ToSql + Sync); 2] = [since, until];
    let feature_values = feature_value_counts(&transaction, &window).await?;
    // A number of the domain's size becomes a float; anything else (a string, a number too
    // large for a float) is NULL, which the segments leave out as the row-level path does.
    let number = |name: &str| {
        format!(
            "CASE WHEN jsonb_typeof(p.features->'{name}') = 'number' THEN \
               CASE WHEN abs((p.features->>'{name}')::NUMERIC) < 1e15 \
               THEN (p.features->>'{name}')::DOUBLE PRECISION END END"
        )
    };
    let sql = format!(
        "SELECT p.probability_of_fraud, p.fraud, o.fraud, p.model_version, p.created_at, \
           {age}, {sex_marital} \
         FROM predictions p LEFT JOIN outcomes o ON o.prediction_id = p.prediction_id \
         WHERE {IN_WINDOW} ORDER BY p.probability_of_fraud",
        age = number("age_years"),
        sex_marital = number("sex_marital_status"),
    );
    let age = feature_index("age_years").unwrap_or(usize::MAX);
    let sex_marital = feature_index("sex_marital_status").unwrap_or(usize::MAX);
    let portal = transaction.bind(sql.as_str(), &window).await?;
    let mut scan = WindowScan::new(reference);
    loop {
        let rows = transaction.query_portal(&portal, BATCH_ROWS).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let served = ServedScore {
                probability_of_fraud: row.try_get(0)?,
                fraud: row.try_get(1)?,
                outcome: row.try_get(2)?,
                // Written from a u32, so it fits; a hand-edited row saturates.
                model_version: u32::try_from(row.try_get::<_, i64>(3)?).unwrap_or(u32::MAX),
                created_at: row.try_get(4)?,
                age_years: checked_number(age, row.try_get(5)?),
                sex_marital_status: checked_number(sex_marital, row.try_get(6)?),
            };
            if let Err(error) = scan.add(&served) {
                return Ok(Err(error.to_string()));
            }
        }
    }
    transaction.commit().await?;
    Ok(Ok(WindowAggregates {
        feature_values,
        scan: scan.finish(),
    }))
}

/// Per feature, the distinct values logged in the window with their counts: one pass of
/// `jsonb_each` over the input objects (jsonb equality groups 30 and 30.0 together, as the
/// row-level path reads both as 30).
async fn feature_value_counts(
    transaction: &Transaction<'_>,
    window: &[&(dyn ToSql + Sync); 2],
) -> Result<FeatureValueCounts, tokio_postgres::Error> {
    let rows = transaction
        .query(
            format!(
                "SELECT kv.key, kv.value, COUNT(*) FROM predictions p \
                 CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(p.features) = 'object' \
                   THEN p.features ELSE '{{}}'::JSONB END) kv \
                 WHERE {IN_WINDOW} GROUP BY kv.key, kv.value"
            )
            .as_str(),
            window,
        )
        .await?;
    let mut counts: FeatureValueCounts = vec![Vec::new(); FEATURES.len()];
    for row in &rows {
        let key: String = row.try_get(0)?;
        if let Some(j) = feature_index(&key) {
            let count: i64 = row.try_get(2)?;
            counts[j].push((row.try_get(1)?, count.max(0) as u64));
        }
    }
    Ok(counts)
}

pub(super) async fn window_data_quality(
    client: &mut deadpool_postgres::Object,
    since: &Option<DateTime<Utc>>,
    until: &Option<DateTime<Utc>>,
) -> Result<DataQuality, tokio_postgres::Error> {
    let transaction = client.build_transaction().read_only(true).start().await?;
    let window: [&(dyn ToSql + Sync); 2] = [since, until];
    let portal = transaction
        .bind(
            format!(
                "SELECT p.prediction_id, p.features FROM predictions p \
                 WHERE {IN_WINDOW} ORDER BY p.created_at, p.prediction_id"
            )
            .as_str(),
            &window,
        )
        .await?;
    let mut tally = QualityTally::new();
    loop {
        let rows = transaction.query_portal(&portal, BATCH_ROWS).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let features: serde_json::Value = row.try_get(1)?;
            logged_applicant(&mut tally, row.try_get(0)?, &features);
        }
    }
    transaction.commit().await?;
    Ok(tally.finish())
}
