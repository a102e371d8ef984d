//! Outcomes in PostgreSQL: a report is one transaction under an advisory lock (reporters of
//! the same id cannot both insert, and no absorption happens in between), the state of every
//! id read with one statement of key lookups, each outcome decided by [`outcomes::decide`],
//! and the writes done set-wise with `UNNEST` (new outcomes and their labelled rows in one
//! statement), so a report of 1,000 outcomes costs four statements, not thousands.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::types::{Json, ToSql};
use uuid::Uuid;

use super::records::feature_list;
use super::PostgresStore;
use crate::dataset::row_hash;
use crate::outcomes::{
    self, Decision, LoggedInputs, Outcome, OutcomeState, OutcomeWrite, StoredOutcome,
    UnusableInputs, OUTCOME_SOURCE,
};
use crate::ports::{OutcomeStore, StoreError};
use crate::schema::{FEATURES, FEATURE_COUNT};

/// Advisory lock key serialising outcome reports and absorptions ("fraudrisk" + 4; + 1 is
/// the migrations', + 2 the training lock's, + 3 the jobs').
pub(super) const OUTCOMES_LOCK_KEY: i64 = 0x6672_6175_6472_6b04;

/// The outcomes table: one row per prediction id (the primary key is the lookup the monitor
/// joins on); `record_id` is the labelled row it made, `history` the outcomes it replaced.
/// Migration 0011 drops the foreign key declared here (a check per inserted outcome).
pub(super) const MIGRATION: &str = "CREATE TABLE outcomes (\n\
     prediction_id UUID PRIMARY KEY,\n\
     fraud BOOLEAN NOT NULL,\n\
     observed_at TIMESTAMPTZ NOT NULL,\n\
     recorded_at TIMESTAMPTZ NOT NULL,\n\
     username TEXT,\n\
     record_id BIGINT REFERENCES records (id),\n\
     history JSONB NOT NULL DEFAULT '[]');\n\
     CREATE INDEX outcomes_observed_at ON outcomes (observed_at);";

/// Each id's prediction, outcome and absorption, in input order. Every join is a lateral
/// lookup by key (`LIMIT 1` keeps the planner from turning it into a hash join): with plain
/// joins it hashed a sequential scan of all of `outcomes` per report once the table's
/// statistics lagged behind its growth (85 ms at 80,000 outcomes, growing with the table).
/// Public for the test that checks its plan (and `scripts/bench-volume.sh` explains a copy).
pub const STATE_SQL: &str = "SELECT p.features, o.fraud, o.observed_at, o.record_id, a.version \
     FROM unnest($1::UUID[]) WITH ORDINALITY AS ids(id, ord) \
     LEFT JOIN LATERAL (SELECT features FROM predictions \
       WHERE prediction_id = ids.id LIMIT 1) p ON true \
     LEFT JOIN LATERAL (SELECT fraud, observed_at, record_id FROM outcomes \
       WHERE prediction_id = ids.id LIMIT 1) o ON true \
     LEFT JOIN LATERAL (SELECT version FROM absorptions \
       WHERE record_id = o.record_id LIMIT 1) a ON true \
     ORDER BY ids.ord";

const REPLACE_OUTCOMES_SQL: &str = "UPDATE outcomes o SET fraud = u.fraud, \
     observed_at = u.observed_at, recorded_at = now(), username = $4, \
     history = o.history || jsonb_build_array(jsonb_build_object(\
       'fraud', o.fraud, 'observed_at', o.observed_at, 'recorded_at', o.recorded_at, \
       'replaced_at', now(), 'replaced_by', $4::TEXT)) \
     FROM unnest($1::UUID[], $2::BOOLEAN[], $3::TIMESTAMPTZ[]) AS u(id, fraud, observed_at) \
     WHERE o.prediction_id = u.id";

const RELABEL_RECORDS_SQL: &str = "UPDATE records r SET creditability = u.creditability, \
     content_hash = u.content_hash \
     FROM unnest($1::BIGINT[], $2::SMALLINT[], $3::TEXT[]) AS u(id, creditability, content_hash) \
     WHERE r.id = u.id \
       AND NOT EXISTS (SELECT 1 FROM absorptions a WHERE a.record_id = r.id)";

/// The labelled rows and their outcomes in one statement: the rows' ids go from the `INSERT`
/// into `records` to the outcomes inside the server (no round trip, no id list sent back).
/// `$1` the prediction ids (each row's key is its id as text), `$2` fraud, `$3` observed_at,
/// `$4` the user, `$5` the row hashes, `$6` the labels, then one array per feature.
fn insert_outcomes_sql() -> String {
    let columns = feature_list();
    let arrays: String = (0..FEATURE_COUNT)
        .map(|i| format!(", ${}::INTEGER[]", i + 7))
        .collect();
    let names: String = FEATURES.iter().map(|f| format!(", {}", f.name)).collect();
    format!(
        "WITH u AS (SELECT * FROM unnest($1::UUID[], $2::BOOLEAN[], $3::TIMESTAMPTZ[], \
           $5::TEXT[], $6::SMALLINT[]{arrays}) \
           AS u(id, fraud, observed_at, content_hash, creditability{names})), \
         labelled AS (INSERT INTO records (source, source_key, content_hash, role, \
           creditability, loaded_at, {columns}) \
           SELECT '{OUTCOME_SOURCE}', u.id::TEXT, u.content_hash, 'new', u.creditability, now(), \
           {columns} FROM u \
           RETURNING id, source_key) \
         INSERT INTO outcomes (prediction_id, fraud, observed_at, recorded_at, username, \
           record_id) \
         SELECT u.id, u.fraud, u.observed_at, now(), $4, labelled.id \
         FROM u JOIN labelled ON labelled.source_key = u.id::TEXT"
    )
}

struct Report<'a> {
    outcomes: &'a [Outcome],
    overwrite: bool,
    username: Option<&'a str>,
    insert_outcomes_sql: String,
}

/// What is stored for each id, in input order, with the labelled row's id. The caller holds
/// the outcomes' advisory lock, which absorption takes too, so no retrain absorbs a row
/// between this read and its relabel.
async fn read_states(
    transaction: &tokio_postgres::Transaction<'_>,
    ids: &[Uuid],
) -> Result<Vec<(OutcomeState, Option<i64>)>, tokio_postgres::Error> {
    let rows = transaction.query(STATE_SQL, &[&ids]).await?;
    let mut states = Vec::with_capacity(rows.len());
    for row in &rows {
        let fraud: Option<bool> = row.try_get(1)?;
        let observed_at: Option<DateTime<Utc>> = row.try_get(2)?;
        let stored = match (fraud, observed_at) {
            (Some(fraud), Some(observed_at)) => Some(StoredOutcome { fraud, observed_at }),
            _ => None,
        };
        let absorbed_by: Option<i64> = row.try_get(4)?;
        states.push((
            OutcomeState {
                // Straight into the 20 values: no JSON tree per logged entry.
                features: row
                    .try_get::<_, Option<Json<LoggedInputs>>>(0)?
                    .map(|Json(inputs)| inputs),
                stored,
                absorbed_by: absorbed_by.and_then(|v| u32::try_from(v).ok()),
            },
            row.try_get::<_, Option<i64>>(3)?,
        ));
    }
    Ok(states)
}

async fn record_in_transaction(
    client: &mut deadpool_postgres::Object,
    report: &Report<'_>,
) -> Result<Result<Vec<Decision>, UnusableInputs>, tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&OUTCOMES_LOCK_KEY])
        .await?;
    let ids: Vec<Uuid> = report.outcomes.iter().map(|o| o.prediction_id).collect();
    let states = read_states(&transaction, &ids).await?;

    let mut decisions = Vec::with_capacity(states.len());
    let mut inserts = Vec::new();
    let mut replaces = Vec::new();
    for (outcome, (state, record_id)) in report.outcomes.iter().zip(&states) {
        let decision = match outcomes::decide(outcome, state, report.overwrite) {
            Ok(decision) => decision,
            // Dropping the transaction rolls back.
            Err(unusable) => return Ok(Err(unusable)),
        };
        match &decision.write {
            OutcomeWrite::Nothing => {}
            OutcomeWrite::Insert(record) => inserts.push((outcome, *record)),
            OutcomeWrite::Replace { record, .. } => {
                replaces.push((outcome, *record, record_id.unwrap_or_default()))
            }
        }
        decisions.push(decision);
    }

    if !inserts.is_empty() {
        let ids: Vec<Uuid> = inserts.iter().map(|(o, _)| o.prediction_id).collect();
        let frauds: Vec<bool> = inserts.iter().map(|(o, _)| o.fraud).collect();
        let observed: Vec<DateTime<Utc>> = inserts.iter().map(|(o, _)| o.observed_at).collect();
        let hashes: Vec<String> = inserts.iter().map(|(_, r)| row_hash(r)).collect();
        let labels: Vec<i16> = inserts
            .iter()
            .map(|(_, r)| i16::from(r.creditability))
            .collect();
        // Validated codes: small integers.
        let features: Vec<Vec<i32>> = (0..FEATURE_COUNT)
            .map(|f| {
                inserts
                    .iter()
                    .map(|(_, r)| r.applicant.0[f] as i32)
                    .collect()
            })
            .collect();
        let mut parameters: Vec<&(dyn ToSql + Sync)> =
            vec![&ids, &frauds, &observed, &report.username, &hashes, &labels];
        parameters.extend(features.iter().map(|c| c as &(dyn ToSql + Sync)));
        transaction
            .execute(report.insert_outcomes_sql.as_str(), &parameters)
            .await?;
    }
    if !replaces.is_empty() {
        let outcome_ids: Vec<Uuid> = replaces.iter().map(|(o, _, _)| o.prediction_id).collect();
        let frauds: Vec<bool> = replaces.iter().map(|(o, _, _)| o.fraud).collect();
        let observed: Vec<DateTime<Utc>> = replaces.iter().map(|(o, _, _)| o.observed_at).collect();
        transaction
            .execute(
                REPLACE_OUTCOMES_SQL,
                &[&outcome_ids, &frauds, &observed, &report.username],
            )
            .await?;
        let record_ids: Vec<i64> = replaces.iter().map(|(_, _, id)| *id).collect();
        let labels: Vec<i16> = replaces
            .iter()
            .map(|(_, r, _)| i16::from(r.creditability))
            .collect();
        let hashes: Vec<String> = replaces.iter().map(|(_, r, _)| row_hash(r)).collect();
        transaction
            .execute(RELABEL_RECORDS_SQL, &[&record_ids, &labels, &hashes])
            .await?;
    }
    transaction.commit().await?;
    Ok(Ok(decisions))
}

#[async_trait]
impl OutcomeStore for PostgresStore {
    async fn record_outcomes(
        &self,
        outcomes: &[Outcome],
        overwrite: bool,
        username: Option<&str>,
    ) -> Result<Vec<Decision>, StoreError> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let report = Report {
            outcomes,
            overwrite,
            username,
            insert_outcomes_sql: insert_outcomes_sql(),
        };
        let decided = self
            .run("record_outcomes", &report, |client, report| {
                Box::pin(record_in_transaction(client, report))
            })
            .await?;
        Ok(decided?)
    }

    async fn outcome_of(
        &self,
        prediction_id: Uuid,
    ) -> Result<Option<(StoredOutcome, Vec<StoredOutcome>)>, StoreError> {
        self.run("outcome_of", &prediction_id, |client, id| {
            Box::pin(async move {
                let Some(row) = client
                    .query_opt(
                        "SELECT fraud, observed_at, history::TEXT FROM outcomes \
                         WHERE prediction_id = $1",
                        &[id],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                let history: String = row.try_get(2)?;
                Ok(Some((
                    StoredOutcome {
                        fraud: row.try_get(0)?,
                        observed_at: row.try_get(1)?,
                    },
                    outcomes::replaced_outcomes(&history),
                )))
            })
        })
        .await
    }
}
