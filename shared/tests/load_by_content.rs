//! Loads keyed by content on the embedded store: a file reloaded under the same name with
//! changed rows loads those rows and reports them; an identical one adds nothing; a
//! database from before content keys is upgraded in place.

use fraudrisk::adapters::sqlite::SqliteStore;
use fraudrisk::dataset::{generated_rows, GeneratedKind, GeneratorConfig, SourceRow};
use fraudrisk::ports::{RecordRole, RecordStore};
use fraudrisk::schema::FEATURES;

fn rows(count: usize) -> Vec<SourceRow> {
    generated_rows(
        GeneratedKind::Reference,
        GeneratorConfig {
            seed: 11,
            reference_rows: count,
            shifted_rows: 0,
        },
    )
}

async fn store(dir: &std::path::Path) -> SqliteStore {
    let store = SqliteStore::open(&dir.join("db.sqlite3")).unwrap();
    store.migrate().await.unwrap();
    store
}

#[tokio::test]
async fn a_changed_file_under_the_same_name_loads_its_changed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let first = rows(20);
    let loaded = store
        .load_records("data.csv", RecordRole::New, &first)
        .await
        .unwrap();
    assert_eq!(
        (loaded.new, loaded.inserted, loaded.already_present),
        (20, 20, 0)
    );

    let again = store
        .load_records("data.csv", RecordRole::New, &first)
        .await
        .unwrap();
    assert_eq!(
        (
            again.new,
            again.changed,
            again.inserted,
            again.already_present
        ),
        (0, 0, 0, 20)
    );

    // Two rows change, one is added: the two replace their waiting old versions.
    let mut second = first.clone();
    second[0].record.applicant.0[4] += 1.0;
    second[7].record.creditability = 1 - second[7].record.creditability;
    let mut extra = rows(21).pop().unwrap();
    extra.key = "extra".to_string();
    second.push(extra);
    let changed = store
        .load_records("data.csv", RecordRole::New, &second)
        .await
        .unwrap();
    assert_eq!(
        (
            changed.new,
            changed.changed,
            changed.replaced,
            changed.inserted,
            changed.already_present
        ),
        (1, 2, 2, 1, 18)
    );
    let stored = store.records_by_role(RecordRole::New).await.unwrap();
    assert_eq!(stored.len(), 21);
    assert_eq!(
        stored[0].record, second[0].record,
        "the new values replaced the old"
    );

    // Absorbed by a model, the old version stays and the changed row is added beside it.
    let ids: Vec<i64> = stored.iter().map(|s| s.id).collect();
    store.mark_absorbed(&ids, 1).await.unwrap();
    let mut third = second.clone();
    third[0].record.applicant.0[4] += 1.0;
    let added = store
        .load_records("data.csv", RecordRole::New, &third)
        .await
        .unwrap();
    assert_eq!((added.changed, added.replaced, added.inserted), (1, 0, 1));
    let counts = store.record_counts().await.unwrap();
    assert_eq!((counts.new, counts.absorbed, counts.pending), (22, 21, 1));
}

#[tokio::test]
async fn a_database_from_before_content_keys_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let first = rows(5);
    {
        // The schema as migrations 0001..0005 left it, with one row loaded then.
        let connection = rusqlite::Connection::open(&path).unwrap();
        let columns: String = FEATURES
            .iter()
            .map(|f| format!("{} INTEGER NOT NULL,", f.name))
            .collect();
        let names: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
        let values: Vec<String> = first[0]
            .record
            .applicant
            .0
            .iter()
            .map(|v| (*v as i64).to_string())
            .collect();
        connection
            .execute_batch(&format!(
                "CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL);
                 INSERT INTO schema_migrations VALUES ('0001_records', 'x'), ('0002_users', 'x'),
                   ('0003_predictions', 'x'), ('0004_training_lock', 'x'),
                   ('0005_training_lock_owner', 'x');
                 CREATE TABLE records (id INTEGER PRIMARY KEY, source TEXT NOT NULL,
                   source_key TEXT NOT NULL, role TEXT NOT NULL, creditability INTEGER NOT NULL,
                   {columns} loaded_at TEXT NOT NULL, absorbed_by INTEGER,
                   UNIQUE (source, source_key));
                 INSERT INTO records (source, source_key, role, creditability, {}, loaded_at)
                   VALUES ('data.csv', '{}', 'new', {}, {}, 'x');
                 CREATE TABLE predictions (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL,
                   model_version INTEGER NOT NULL, probability_of_fraud REAL NOT NULL,
                   fraud INTEGER NOT NULL, features TEXT NOT NULL, username TEXT);",
                names.join(", "),
                first[0].key,
                first[0].record.creditability,
                values.join(", ")
            ))
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.migrate().await.unwrap(),
        [
            "0006_records_content_hash",
            "0007_prediction_ids",
            "0008_outcomes",
            "0009_prediction_reason_codes",
            "0010_jobs"
        ]
    );
    // The old row got its hash: reloading it is "unchanged", the others are new.
    let loaded = store
        .load_records("data.csv", RecordRole::New, &first)
        .await
        .unwrap();
    assert_eq!(
        (loaded.already_present, loaded.new, loaded.inserted),
        (1, 4, 4)
    );
}
