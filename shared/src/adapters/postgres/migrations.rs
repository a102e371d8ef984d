//! Embedded, versioned migrations, recorded in `schema_migrations` and applied under a
//! transaction-scoped advisory lock so concurrent cold starts do not race.

use crate::dataset::row_hash;
use crate::outcomes::OUTCOME_SOURCE;
use crate::ports::StoreError;
use crate::schema::FEATURES;

use super::records::{read_stored, select_sql};
use super::PostgresStore;

/// Advisory lock key serialising migrations ("fraudrisk" + 1).
const MIGRATION_LOCK_KEY: i64 = 0x6672_6175_6472_6b01;

/// The migrations, in order. Same names and tables as the SQLite store, except the lock: an
/// advisory lock replaces SQLite's `training_lock` table, and `training_lock_owner` only
/// says who holds it (a row counts while its session holds the advisory lock).
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
                 id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n\
                 source TEXT NOT NULL,\n\
                 source_key TEXT NOT NULL,\n\
                 role TEXT NOT NULL CHECK (role IN ('reference', 'new')),\n\
                 creditability SMALLINT NOT NULL CHECK (creditability IN (0, 1)),\n\
                 {feature_columns}\
                 loaded_at TIMESTAMPTZ NOT NULL,\n\
                 absorbed_by BIGINT,\n\
                 UNIQUE (source, source_key));\n\
                 CREATE INDEX records_absorbed_by ON records (absorbed_by);\n\
                 CREATE INDEX records_role ON records (role);"
            ),
        ),
        (
            "0002_users",
            "CREATE TABLE users (\n\
             username TEXT PRIMARY KEY,\n\
             password_hash TEXT NOT NULL,\n\
             created_at TIMESTAMPTZ NOT NULL);"
                .to_string(),
        ),
        (
            "0003_predictions",
            "CREATE TABLE predictions (\n\
             id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n\
             created_at TIMESTAMPTZ NOT NULL,\n\
             model_version BIGINT NOT NULL,\n\
             probability_of_fraud DOUBLE PRECISION NOT NULL,\n\
             fraud BOOLEAN NOT NULL,\n\
             features JSONB NOT NULL,\n\
             username TEXT);\n\
             CREATE INDEX predictions_created_at ON predictions (created_at);"
                .to_string(),
        ),
        (
            "0004_training_lock_owner",
            "CREATE TABLE training_lock_owner (\n\
             id SMALLINT PRIMARY KEY CHECK (id = 1),\n\
             holder TEXT NOT NULL,\n\
             pid BIGINT NOT NULL,\n\
             host TEXT NOT NULL,\n\
             acquired_at TIMESTAMPTZ NOT NULL,\n\
             backend_pid INTEGER NOT NULL);"
                .to_string(),
        ),
        (
            // Rows keyed by content; `migrate` then fills the hash of the rows stored before.
            "0005_records_content_hash",
            "ALTER TABLE records ADD COLUMN content_hash TEXT NOT NULL DEFAULT '';\n\
             ALTER TABLE records DROP CONSTRAINT records_source_source_key_key;\n\
             ALTER TABLE records ADD CONSTRAINT records_source_key_hash \
             UNIQUE (source, source_key, content_hash);"
                .to_string(),
        ),
        (
            // Prediction ids and the threshold applied; rows logged before keep NULLs
            // (a unique index allows any number of them). The index makes the lookup by id
            // an index scan, and is the conflict target that keeps retried writes single.
            "0006_prediction_ids",
            "ALTER TABLE predictions ADD COLUMN prediction_id UUID, \
             ADD COLUMN threshold DOUBLE PRECISION;\n\
             CREATE UNIQUE INDEX predictions_prediction_id ON predictions (prediction_id);"
                .to_string(),
        ),
        ("0007_outcomes", super::outcomes::MIGRATION.to_string()),
        (
            // Each prediction's reason codes as a JSON array of codes; NULL before.
            "0008_prediction_reason_codes",
            "ALTER TABLE predictions ADD COLUMN reason_codes JSONB;".to_string(),
        ),
        ("0009_jobs", super::jobs::MIGRATION.to_string()),
        (
            // Absorptions move to a narrow table (see records.rs, MARK_ABSORBED_SQL). No
            // foreign key: its ids come from rows just read, and checking one costs a lookup
            // per inserted row; records are never deleted.
            "0010_absorptions",
            "CREATE TABLE absorptions (\n\
             record_id BIGINT PRIMARY KEY,\n\
             version BIGINT NOT NULL);\n\
             INSERT INTO absorptions (record_id, version) \
             SELECT id, absorbed_by FROM records WHERE absorbed_by IS NOT NULL;\n\
             DROP INDEX records_absorbed_by;\n\
             ALTER TABLE records DROP COLUMN absorbed_by;"
                .to_string(),
        ),
        (
            // The outcomes' labelled rows are inserted in the same transaction just before
            // them and records are never deleted, so the foreign key only cost a check per
            // outcome (about 12 ms of a 1,000-outcome report at 10M predictions).
            "0011_outcomes_record_key",
            "ALTER TABLE outcomes DROP CONSTRAINT IF EXISTS outcomes_record_id_fkey;".to_string(),
        ),
        (
            // Rows made by outcomes leave the content key: their uniqueness is the outcomes'
            // primary key (one row per prediction id, relabelled in place), and inserting
            // 1,000 of them into this index read a random leaf each (16 ms of a report at
            // 10M predictions). Loads name the predicate in their ON CONFLICT and lookups
            // (records.rs) repeat it, so they still use the index.
            "0012_records_key_without_outcomes",
            format!(
                "ALTER TABLE records DROP CONSTRAINT records_source_key_hash;\n\
                 CREATE UNIQUE INDEX records_source_key_hash \
                 ON records (source, source_key, content_hash) WHERE source <> '{OUTCOME_SOURCE}';"
            ),
        ),
    ]
}

/// Fills `content_hash` of rows stored before loads were keyed by content.
async fn backfill_content_hashes(
    transaction: &tokio_postgres::Transaction<'_>,
) -> Result<(), tokio_postgres::Error> {
    let rows = transaction
        .query(select_sql("content_hash = ''").as_str(), &[])
        .await?;
    let mut ids = Vec::with_capacity(rows.len());
    let mut hashes = Vec::with_capacity(rows.len());
    for row in &rows {
        let stored = read_stored(row)?;
        ids.push(stored.id);
        hashes.push(row_hash(&stored.record));
    }
    if !ids.is_empty() {
        transaction
            .execute(
                "UPDATE records SET content_hash = h.hash \
                 FROM unnest($1::bigint[], $2::text[]) AS h(id, hash) WHERE records.id = h.id",
                &[&ids, &hashes],
            )
            .await?;
    }
    Ok(())
}

/// Applies the migrations not applied yet; returns the names of those applied now.
pub(super) async fn migrate(store: &PostgresStore) -> Result<Vec<String>, StoreError> {
    let all: Vec<(&'static str, String)> = migrations();
    store
        .run("migrate", &all, |client, all| {
            Box::pin(async move {
                // Fast path without DDL or locks: everything applied already (the usual
                // case on a cold start, and fine for a role without CREATE rights).
                let exists: bool = client
                    .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
                    .await?
                    .try_get(0)?;
                if exists {
                    let names: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
                    let done: i64 = client
                        .query_one(
                            "SELECT COUNT(*) FROM schema_migrations WHERE name = ANY($1)",
                            &[&names],
                        )
                        .await?
                        .try_get(0)?;
                    if done == names.len() as i64 {
                        return Ok(Vec::new());
                    }
                }
                let transaction = client.transaction().await?;
                transaction
                    .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
                    .await?;
                transaction
                    .batch_execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations (\
                     name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)",
                    )
                    .await?;
                let mut applied = Vec::new();
                for (name, sql) in all {
                    let done = transaction
                        .query_opt("SELECT 1 FROM schema_migrations WHERE name = $1", &[name])
                        .await?
                        .is_some();
                    if !done {
                        transaction.batch_execute(sql).await?;
                        transaction
                        .execute(
                            "INSERT INTO schema_migrations (name, applied_at) VALUES ($1, now())",
                            &[name],
                        )
                        .await?;
                        applied.push(name.to_string());
                    }
                }
                backfill_content_hashes(&transaction).await?;
                transaction.commit().await?;
                Ok(applied)
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_have_every_feature_column() {
        let all = migrations();
        for feature in FEATURES.iter() {
            assert!(all[0]
                .1
                .contains(&format!("{} INTEGER NOT NULL", feature.name)));
        }
        let names: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "0001_records",
                "0002_users",
                "0003_predictions",
                "0004_training_lock_owner",
                "0005_records_content_hash",
                "0006_prediction_ids",
                "0007_outcomes",
                "0008_prediction_reason_codes",
                "0009_jobs",
                "0010_absorptions",
                "0011_outcomes_record_key",
                "0012_records_key_without_outcomes"
            ]
        );
    }
}
