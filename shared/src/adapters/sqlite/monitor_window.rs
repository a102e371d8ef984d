//! The monitor's aggregates in the embedded store: the distinct logged values per feature
//! with SQLite's JSON functions and `GROUP BY`, then the window's scores streamed in P(fraud)
//! order, both in one read transaction (WAL: a snapshot), so memory does not grow with the log.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use crate::dataset::{DataQuality, QualityTally};
use crate::monitor::{
    checked_number, logged_applicant, FeatureValueCounts, ScoreReference, ServedScore,
    WindowAggregates, WindowScan,
};
use crate::schema::{feature_index, FEATURES};

/// The window as SQL parameters: `since` as RFC 3339 text ("" = from the start; stored times
/// are RFC 3339 in UTC, so text order is time order) and `until` (NULL = unbounded).
pub(super) fn window_parameters(
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> (String, Option<String>) {
    (
        since.map(|t| t.to_rfc3339()).unwrap_or_default(),
        until.map(|t| t.to_rfc3339()),
    )
}

/// Which predictions are in the window (with `?1` since, `?2` until).
const IN_WINDOW: &str = "p.prediction_id IS NOT NULL AND p.created_at >= ?1 \
                         AND (?2 IS NULL OR p.created_at < ?2)";

pub(super) fn window_aggregates(
    connection: &mut Connection,
    (since, until): (String, Option<String>),
    reference: &ScoreReference,
) -> Result<Result<WindowAggregates, String>, rusqlite::Error> {
    let transaction = connection.transaction()?;
    let feature_values = feature_value_counts(&transaction, &since, &until)?;
    let mut scan = WindowScan::new(reference);
    let number = |name: &str| {
        format!(
            "CASE WHEN json_type(p.features, '$.{name}') IN ('integer', 'real') \
             THEN json_extract(p.features, '$.{name}') END"
        )
    };
    let mut statement = transaction.prepare(&format!(
        "SELECT p.probability_of_fraud, p.fraud, o.fraud, p.model_version, p.created_at, \
           {age}, {sex_marital} \
         FROM predictions p LEFT JOIN outcomes o ON o.prediction_id = p.prediction_id \
         WHERE {IN_WINDOW} ORDER BY p.probability_of_fraud",
        age = number("age_years"),
        sex_marital = number("sex_marital_status"),
    ))?;
    let age = feature_index("age_years").unwrap_or(usize::MAX);
    let sex_marital = feature_index("sex_marital_status").unwrap_or(usize::MAX);
    let mut rows = statement.query(params![since, until])?;
    while let Some(row) = rows.next()? {
        let created_at: String = row.get(4)?;
        let created_at = DateTime::parse_from_rfc3339(&created_at)
            .map_err(|e| super::predictions::conversion_error(4, e))?
            .with_timezone(&Utc);
        let served = ServedScore {
            probability_of_fraud: row.get(0)?,
            fraud: row.get(1)?,
            outcome: row.get(2)?,
            model_version: row.get(3)?,
            created_at,
            age_years: checked_number(age, row.get(5)?),
            sex_marital_status: checked_number(sex_marital, row.get(6)?),
        };
        if let Err(error) = scan.add(&served) {
            return Ok(Err(error.to_string()));
        }
    }
    Ok(Ok(WindowAggregates {
        feature_values,
        scan: scan.finish(),
    }))
}

/// Per feature, the distinct values logged in the window with their counts: one pass of
/// `json_each` over the input objects, grouped by key, JSON type and value.
fn feature_value_counts(
    connection: &Connection,
    since: &str,
    until: &Option<String>,
) -> Result<FeatureValueCounts, rusqlite::Error> {
    let mut counts: FeatureValueCounts = vec![Vec::new(); FEATURES.len()];
    let mut statement = connection.prepare(&format!(
        "SELECT j.key, j.type, j.value, COUNT(*) \
         FROM predictions p, json_each(p.features) j \
         WHERE {IN_WINDOW} AND json_type(p.features) = 'object' \
         GROUP BY j.key, j.type, j.value"
    ))?;
    let mut rows = statement.query(params![since, until])?;
    while let Some(row) = rows.next()? {
        let key: String = row.get(0)?;
        let Some(j) = feature_index(&key) else {
            continue;
        };
        let kind: String = row.get(1)?;
        let value = match kind.as_str() {
            "integer" => serde_json::Value::from(row.get::<_, i64>(2)?),
            "real" => serde_json::Value::from(row.get::<_, f64>(2)?),
            "true" => serde_json::Value::Bool(true),
            "false" => serde_json::Value::Bool(false),
            "null" => serde_json::Value::Null,
            "text" => serde_json::Value::String(row.get(2)?),
            // Arrays and objects come as their JSON text.
            _ => {
                let text: String = row.get(2)?;
                serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
            }
        };
        let count: i64 = row.get(3)?;
        counts[j].push((value, count.max(0) as u64));
    }
    Ok(counts)
}

pub(super) fn window_data_quality(
    connection: &mut Connection,
    (since, until): (String, Option<String>),
) -> Result<DataQuality, rusqlite::Error> {
    let mut statement = connection.prepare(&format!(
        "SELECT p.prediction_id, p.features FROM predictions p \
         WHERE {IN_WINDOW} ORDER BY p.created_at, p.prediction_id"
    ))?;
    let mut rows = statement.query(params![since, until])?;
    let mut tally = QualityTally::new();
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let features: String = row.get(1)?;
        let id =
            uuid::Uuid::parse_str(&id).map_err(|e| super::predictions::conversion_error(0, e))?;
        let features: serde_json::Value = serde_json::from_str(&features)
            .map_err(|e| super::predictions::conversion_error(1, e))?;
        logged_applicant(&mut tally, id, &features);
    }
    Ok(tally.finish())
}
