//! Labelled rows: bulk loads (binary `COPY` into a temporary table, then `INSERT ... ON
//! CONFLICT DO NOTHING`, in one transaction, keyed by source, key and content hash), reads
//! by state, absorption. The [`RecordStore`] impl also hands migrations and the training
//! lock to their modules.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use crate::dataset::{row_hash, RecordSource, SourceRow};
use crate::outcomes::{refuse_outcome_source, OUTCOME_SOURCE};
use crate::ports::{
    LoadSummary, LockOwner, RecordCounts, RecordRole, RecordStore, StoreError, StoredRecord,
    TrainingLock,
};
use crate::progress::{Step, Unit};
use crate::schema::{Applicant, LabeledRecord, FEATURES, FEATURE_COUNT};

use super::outcomes::OUTCOMES_LOCK_KEY;
use super::{lock, migrations, PostgresStore};

/// The rows the loads' content key covers (migration 0012 makes it a partial index): every
/// source but outcomes'. Queries by that key repeat the predicate for their alias, so the
/// planner may use the index whatever source the parameter holds.
pub(super) fn loaded_sources(alias: &str) -> String {
    format!("{alias}.source <> '{OUTCOME_SOURCE}'")
}

pub(super) fn feature_list() -> String {
    FEATURES
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rows meeting `condition`, each with the version that absorbed it (`a.version`, NULL
/// while it waits); `r` is the records table, `a` its absorptions.
pub(super) fn select_sql(condition: &str) -> String {
    let columns: String = FEATURES.iter().map(|f| format!(", r.{}", f.name)).collect();
    format!(
        "SELECT r.id, r.creditability, a.version, r.loaded_at{columns} \
         FROM records r LEFT JOIN absorptions a ON a.record_id = r.id \
         WHERE {condition} ORDER BY r.id"
    )
}

/// Absorptions live in a narrow table of their own: marking a million rows absorbed is then
/// a million small inserts (seconds) instead of a new version of a million wide records rows
/// and of every index on them (half a minute). The advisory lock is the outcome reports' one:
/// a report reads whether a row was absorbed and relabels it in one transaction, so an
/// absorption waits for it rather than slipping in between.
const MARK_ABSORBED_SQL: &str = "INSERT INTO absorptions (record_id, version) \
     SELECT unnest($2::BIGINT[]), $1 ON CONFLICT (record_id) DO NOTHING";

pub(super) fn read_stored(
    row: &tokio_postgres::Row,
) -> Result<StoredRecord, tokio_postgres::Error> {
    let id: i64 = row.try_get(0)?;
    let creditability: i16 = row.try_get(1)?;
    let absorbed_by: Option<i64> = row.try_get(2)?;
    let loaded_at = row.try_get(3)?;
    let mut values = [0.0; FEATURE_COUNT];
    for (index, value) in values.iter_mut().enumerate() {
        *value = f64::from(row.try_get::<_, i32>(4 + index)?);
    }
    Ok(StoredRecord {
        id,
        record: LabeledRecord {
            applicant: Applicant(values),
            // The CHECK constraint keeps it 0 or 1.
            creditability: u8::from(creditability == 1),
        },
        // Versions are written from u32 values, so they fit.
        absorbed_by: absorbed_by.and_then(|v| u32::try_from(v).ok()),
        loaded_at,
    })
}

impl PostgresStore {
    async fn select_records(
        &self,
        operation: &'static str,
        condition: &'static str,
        role: Option<&'static str>,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let sql = select_sql(condition);
        self.run(operation, &(sql, role), |client, (sql, role)| {
            Box::pin(async move {
                // Each row is converted as it arrives: a million driver rows held at once
                // (with their per-column offsets) would take several times the records' size.
                let rows = match role {
                    Some(role) => client.query_raw(sql.as_str(), [role]).await?,
                    None => {
                        client
                            .query_raw(sql.as_str(), std::iter::empty::<&str>())
                            .await?
                    }
                };
                let mut rows = std::pin::pin!(rows);
                let mut records = Vec::new();
                while let Some(row) = rows.try_next().await? {
                    records.push(read_stored(&row)?);
                }
                Ok(records)
            })
        })
        .await
    }
}

/// Converts the loaded rows' features to the INTEGER columns, refusing what is not an integer.
fn integer_features(row: &SourceRow) -> Result<[i32; FEATURE_COUNT], StoreError> {
    let mut out = [0i32; FEATURE_COUNT];
    for ((slot, value), feature) in out
        .iter_mut()
        .zip(row.record.applicant.0.iter())
        .zip(FEATURES.iter())
    {
        if value.fract() != 0.0 || *value < f64::from(i32::MIN) || *value > f64::from(i32::MAX) {
            return Err(StoreError::backend(
                "load_records",
                format!(
                    "row {}: {} = {value} is not an integer code",
                    row.key, feature.name
                ),
            ));
        }
        *slot = *value as i32;
    }
    Ok(out)
}

struct LoadArguments<'a> {
    source: &'a str,
    role: &'static str,
    keys: Vec<&'a str>,
    labels: Vec<i16>,
    features: Vec<[i32; FEATURE_COUNT]>,
    hashes: Vec<String>,
    insert_sql: String,
    replace_sql: String,
    create_sql: String,
    copy_sql: String,
}

/// Counts the loaded rows by kind before anything is written: unchanged (same source, key
/// and hash stored), changed (the key stored with other values only), new.
fn load_counts_sql() -> String {
    let r = loaded_sources("r");
    format!(
        "SELECT \
         COUNT(*) FILTER (WHERE EXISTS (SELECT 1 FROM records r WHERE r.source = $1 AND {r} \
           AND r.source_key = l.source_key AND r.content_hash = l.content_hash)), \
         COUNT(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.source = $1 \
           AND {r} AND r.source_key = l.source_key AND r.content_hash = l.content_hash) \
           AND EXISTS (SELECT 1 FROM records r WHERE r.source = $1 AND {r} \
             AND r.source_key = l.source_key)) \
         FROM records_load l"
    )
}

async fn load_in_transaction(
    client: &mut deadpool_postgres::Object,
    args: &LoadArguments<'_>,
) -> Result<LoadSummary, tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    transaction.batch_execute(&args.create_sql).await?;
    let sink = transaction.copy_in(args.copy_sql.as_str()).await?;
    let mut types = vec![Type::INT8, Type::TEXT, Type::TEXT, Type::INT2];
    types.extend(std::iter::repeat_n(Type::INT4, FEATURE_COUNT));
    let writer = BinaryCopyInWriter::new(sink, &types);
    let mut writer = std::pin::pin!(writer);
    let progress = Step::start(
        format!("insert {} rows", args.source),
        Unit::Rows,
        args.keys.len() as u64,
    );
    for (index, (((key, hash), label), features)) in args
        .keys
        .iter()
        .zip(args.hashes.iter())
        .zip(args.labels.iter())
        .zip(args.features.iter())
        .enumerate()
    {
        let ordinal = index as i64;
        let mut values: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(4 + FEATURE_COUNT);
        values.push(&ordinal);
        values.push(key);
        values.push(hash);
        values.push(label);
        values.extend(features.iter().map(|v| v as &(dyn ToSql + Sync)));
        writer.as_mut().write(&values).await?;
        progress.advance(1);
    }
    writer.as_mut().finish().await?;
    let counts = transaction
        .query_one(load_counts_sql().as_str(), &[&args.source])
        .await?;
    let count = |i: usize| counts.try_get::<_, i64>(i).map(|n| n.max(0) as usize);
    let (unchanged, changed) = (count(0)?, count(1)?);
    // Replacing first: a replaced row then carries the new hash and is not inserted again.
    let replaced = transaction
        .execute(args.replace_sql.as_str(), &[&args.source, &args.role])
        .await? as usize;
    let inserted = transaction
        .execute(args.insert_sql.as_str(), &[&args.source, &args.role])
        .await? as usize;
    transaction.commit().await?;
    let offered = args.keys.len();
    Ok(LoadSummary {
        offered,
        inserted,
        already_present: unchanged,
        new: offered.saturating_sub(unchanged + changed),
        changed,
        replaced,
    })
}

#[async_trait]
impl RecordStore for PostgresStore {
    async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        migrations::migrate(self).await
    }

    async fn load_records(
        &self,
        source: &str,
        role: RecordRole,
        rows: &[SourceRow],
    ) -> Result<LoadSummary, StoreError> {
        refuse_outcome_source(source)?;
        if rows.is_empty() {
            return Ok(LoadSummary::default());
        }
        let features = rows
            .iter()
            .map(integer_features)
            .collect::<Result<Vec<_>, _>>()?;
        let feature_columns = feature_list();
        let feature_types: String = FEATURES
            .iter()
            .map(|f| format!(", {} INTEGER NOT NULL", f.name))
            .collect();
        let assignments: String = FEATURES
            .iter()
            .map(|f| format!(", {0} = l.{0}", f.name))
            .collect();
        let arguments = LoadArguments {
            source,
            role: role.as_str(),
            keys: rows.iter().map(|r| r.key.as_str()).collect(),
            hashes: rows.iter().map(|r| row_hash(&r.record)).collect(),
            labels: rows
                .iter()
                .map(|r| i16::from(r.record.creditability))
                .collect(),
            features,
            create_sql: format!(
                "CREATE TEMPORARY TABLE records_load (ord BIGINT NOT NULL, source_key TEXT NOT NULL, \
                 content_hash TEXT NOT NULL, creditability SMALLINT NOT NULL{feature_types}) \
                 ON COMMIT DROP"
            ),
            copy_sql: format!(
                "COPY records_load (ord, source_key, content_hash, creditability, {feature_columns}) \
                 FROM STDIN (FORMAT binary)"
            ),
            // A changed row whose old version no model absorbed yet replaces it in place.
            replace_sql: format!(
                "UPDATE records r SET content_hash = l.content_hash, role = $2, \
                 creditability = l.creditability, loaded_at = now(){assignments} \
                 FROM records_load l \
                 WHERE r.source = $1 AND {r} AND r.source_key = l.source_key \
                 AND NOT EXISTS (SELECT 1 FROM absorptions a WHERE a.record_id = r.id) \
                 AND r.content_hash <> l.content_hash \
                 AND NOT EXISTS (SELECT 1 FROM records s WHERE s.source = $1 AND {s} \
                   AND s.source_key = l.source_key AND s.content_hash = l.content_hash)",
                r = loaded_sources("r"),
                s = loaded_sources("s"),
            ),
            // ORDER BY keeps ids in file order, as the SQLite store assigns them.
            insert_sql: format!(
                "INSERT INTO records (source, source_key, content_hash, role, creditability, \
                 loaded_at, {feature_columns}) \
                 SELECT $1, source_key, content_hash, $2, creditability, now(), {feature_columns} \
                 FROM records_load ORDER BY ord \
                 ON CONFLICT (source, source_key, content_hash) \
                 WHERE source <> '{OUTCOME_SOURCE}' DO NOTHING"
            ),
        };
        self.run("load_records", &arguments, |client, args| {
            Box::pin(load_in_transaction(client, args))
        })
        .await
    }

    async fn records_by_role(&self, role: RecordRole) -> Result<Vec<StoredRecord>, StoreError> {
        self.select_records("records_by_role", "r.role = $1", Some(role.as_str()))
            .await
    }

    async fn absorbed_records(&self) -> Result<Vec<StoredRecord>, StoreError> {
        self.select_records("absorbed_records", "a.version IS NOT NULL", None)
            .await
    }

    async fn pending_records(&self) -> Result<Vec<StoredRecord>, StoreError> {
        self.select_records("pending_records", "a.version IS NULL", None)
            .await
    }

    async fn mark_absorbed(&self, ids: &[i64], version: u32) -> Result<(), StoreError> {
        let version = i64::from(version);
        self.run(
            "mark_absorbed",
            &(ids, version),
            |client, (ids, version)| {
                Box::pin(async move {
                    let transaction = client.transaction().await?;
                    transaction
                        .execute("SELECT pg_advisory_xact_lock($1)", &[&OUTCOMES_LOCK_KEY])
                        .await?;
                    transaction
                        .execute(MARK_ABSORBED_SQL, &[version, ids])
                        .await?;
                    transaction.commit().await
                })
            },
        )
        .await
    }

    async fn record_counts(&self) -> Result<RecordCounts, StoreError> {
        self.run("record_counts", &(), |client, _| {
            Box::pin(async move {
                let row = client
                    .query_one(
                        "SELECT \
                           COUNT(*) FILTER (WHERE r.role = 'reference'), \
                           COUNT(*) FILTER (WHERE r.role = 'new'), \
                           COUNT(a.record_id), \
                           COUNT(*) FILTER (WHERE a.record_id IS NULL) \
                         FROM records r LEFT JOIN absorptions a ON a.record_id = r.id",
                        &[],
                    )
                    .await?;
                let count = |i: usize| row.try_get::<_, i64>(i).map(|n| n.max(0) as usize);
                Ok(RecordCounts {
                    reference: count(0)?,
                    new: count(1)?,
                    absorbed: count(2)?,
                    pending: count(3)?,
                })
            })
        })
        .await
    }

    async fn pending_by_source(&self) -> Result<Vec<(String, usize)>, StoreError> {
        self.run("pending_by_source", &(), |client, _| {
            Box::pin(async move {
                let rows = client
                    .query(
                        "SELECT r.source, COUNT(*) FROM records r \
                         LEFT JOIN absorptions a ON a.record_id = r.id \
                         WHERE a.record_id IS NULL GROUP BY r.source ORDER BY r.source",
                        &[],
                    )
                    .await?;
                rows.iter()
                    .map(|row| Ok((row.try_get(0)?, row.try_get::<_, i64>(1)?.max(0) as usize)))
                    .collect()
            })
        })
        .await
    }

    async fn record_sources(&self) -> Result<Vec<RecordSource>, StoreError> {
        self.run("record_sources", &(), |client, _| {
            Box::pin(async move {
                let rows = client
                    .query(
                        "SELECT source, role, COUNT(*), MIN(loaded_at), MAX(loaded_at) \
                         FROM records GROUP BY source, role ORDER BY source, role",
                        &[],
                    )
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(RecordSource {
                            source: row.try_get(0)?,
                            role: row.try_get(1)?,
                            rows: row.try_get::<_, i64>(2)?.max(0) as usize,
                            first_loaded_at: row.try_get(3)?,
                            last_loaded_at: row.try_get(4)?,
                        })
                    })
                    .collect()
            })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_integer_features_are_refused() {
        let mut row = SourceRow {
            key: "k".into(),
            record: LabeledRecord {
                applicant: Applicant([1.0; FEATURE_COUNT]),
                creditability: 1,
            },
        };
        assert!(integer_features(&row).is_ok());
        row.record.applicant.0[3] = 1.5;
        let error = integer_features(&row).unwrap_err().to_string();
        assert!(error.contains(FEATURES[3].name), "{error}");
    }
}
