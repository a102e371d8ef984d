//! The PostgreSQL store against the real server: migrations, COPY loads with the SQLite
//! store's semantics, users, the prediction log, reconnection, the training lock, TLS.

mod it_common;

use std::time::{Duration, Instant};

use chrono::{Duration as TimeDelta, SubsecRound, Utc};
use fraudrisk::adapters::postgres::{PostgresSettings, PostgresStore};
use fraudrisk::adapters::sqlite::SqliteStore;
use fraudrisk::config::SslMode;
use fraudrisk::dataset::{generated_rows, GeneratedKind, GeneratorConfig, SourceRow};
use fraudrisk::ports::{
    OutcomeStore, PredictionLog, PredictionLogEntry, RecordRole, RecordStore, StoreError, UserStore,
};
use it_common::TestDatabase;
use uuid::Uuid;

const ALL_MIGRATIONS: [&str; 12] = [
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
    "0012_records_key_without_outcomes",
];

async fn migrated_store(database: &TestDatabase) -> PostgresStore {
    let store = PostgresStore::connect(&database.settings())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn rows(kind: GeneratedKind, count: usize, seed: u64) -> Vec<SourceRow> {
    generated_rows(
        kind,
        GeneratorConfig {
            seed,
            reference_rows: count,
            shifted_rows: count,
        },
    )
}

#[tokio::test]
#[ignore = "needs services"]
async fn migrations_are_versioned_idempotent_and_safe_to_run_concurrently() {
    it_common::start();
    let database = TestDatabase::create("migrate").await;
    let store = PostgresStore::connect(&database.settings()).await.unwrap();
    let applied = store.migrate().await.unwrap();
    assert_eq!(applied, ALL_MIGRATIONS, "first run applies everything");
    assert!(
        store.migrate().await.unwrap().is_empty(),
        "second run applies nothing"
    );

    // Two cold starts at once on an empty database: each migration is applied exactly once.
    let other = TestDatabase::create("migrate_race").await;
    let (a, b) = (
        PostgresStore::connect(&other.settings()).await.unwrap(),
        PostgresStore::connect(&other.settings()).await.unwrap(),
    );
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    let (mut ra, rb) = (ra.unwrap(), rb.unwrap());
    ra.extend(rb);
    ra.sort();
    assert_eq!(ra, ALL_MIGRATIONS);
}

#[tokio::test]
#[ignore = "needs services"]
async fn copy_loads_behave_like_the_sqlite_store() {
    it_common::start();
    let database = TestDatabase::create("load").await;
    let store = migrated_store(&database).await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("parity.sqlite3")).unwrap();
    sqlite.migrate().await.unwrap();

    let reference = rows(GeneratedKind::Reference, 1500, 7);
    let shifted = rows(GeneratedKind::Shifted, 400, 7);
    // A batch that repeats a key inside itself and overlaps the first load.
    let mut overlapping: Vec<SourceRow> = reference[1000..].to_vec();
    overlapping.extend(
        rows(GeneratedKind::Reference, 1600, 7)[1500..]
            .iter()
            .cloned(),
    );
    overlapping.push(overlapping[0].clone());

    for (source, role, batch) in [
        ("reference.csv", RecordRole::Reference, &reference),
        ("reference.csv", RecordRole::Reference, &reference),
        ("reference.csv", RecordRole::Reference, &overlapping),
        ("shifted.csv", RecordRole::New, &shifted),
    ] {
        let pg = store.load_records(source, role, batch).await.unwrap();
        let lite = sqlite.load_records(source, role, batch).await.unwrap();
        assert_eq!(pg, lite, "load summary of {source} ({} rows)", batch.len());
    }
    assert_eq!(store.record_counts().await.unwrap().reference, 1600);

    for role in [RecordRole::Reference, RecordRole::New] {
        let pg = store.records_by_role(role).await.unwrap();
        let lite = sqlite.records_by_role(role).await.unwrap();
        assert_eq!(pg.len(), lite.len());
        let pg_records: Vec<_> = pg.iter().map(|s| s.record).collect();
        let lite_records: Vec<_> = lite.iter().map(|s| s.record).collect();
        assert_eq!(
            pg_records, lite_records,
            "same rows in the same (file) order"
        );
        assert!(pg.windows(2).all(|w| w[0].id < w[1].id));
    }

    // Absorbing: rows already absorbed keep their version.
    let reference_ids: Vec<i64> = store
        .records_by_role(RecordRole::Reference)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    store.mark_absorbed(&reference_ids, 1).await.unwrap();
    store.mark_absorbed(&reference_ids[..10], 2).await.unwrap();
    let absorbed = store.absorbed_records().await.unwrap();
    assert_eq!(absorbed.len(), 1600);
    assert!(absorbed.iter().all(|s| s.absorbed_by == Some(1)));
    let pending = store.pending_records().await.unwrap();
    assert_eq!(pending.len(), 400);
    let counts = store.record_counts().await.unwrap();
    assert_eq!(
        (
            counts.reference,
            counts.new,
            counts.absorbed,
            counts.pending
        ),
        (1600, 400, 1600, 400)
    );
    store.mark_absorbed(&[], 3).await.unwrap();
    assert_eq!(
        store
            .load_records("empty", RecordRole::New, &[])
            .await
            .unwrap()
            .offered,
        0
    );
}

#[tokio::test]
#[ignore = "needs services"]
async fn a_database_from_before_the_absorptions_table_keeps_what_was_absorbed() {
    it_common::start();
    let database = TestDatabase::create("absorptions_upgrade").await;
    let store = migrated_store(&database).await;
    store
        .load_records(
            "reference.csv",
            RecordRole::Reference,
            &rows(GeneratedKind::Reference, 30, 5),
        )
        .await
        .unwrap();
    // Back to the schema before 0010: absorption in a column of `records`, rows 1 to 12
    // absorbed by version 4.
    let client = it_common::client_for(&database).await;
    client
        .batch_execute(
            "DROP TABLE absorptions;\n\
             ALTER TABLE records ADD COLUMN absorbed_by BIGINT;\n\
             CREATE INDEX records_absorbed_by ON records (absorbed_by);\n\
             UPDATE records SET absorbed_by = 4 WHERE id <= 12;\n\
             DELETE FROM schema_migrations WHERE name = '0010_absorptions';",
        )
        .await
        .unwrap();
    assert_eq!(
        store.migrate().await.unwrap(),
        ["0010_absorptions"],
        "only the undone migration runs"
    );
    let absorbed = store.absorbed_records().await.unwrap();
    assert_eq!(
        absorbed.iter().map(|s| s.id).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<i64>>()
    );
    assert!(absorbed.iter().all(|s| s.absorbed_by == Some(4)));
    assert_eq!(store.pending_records().await.unwrap().len(), 18);
    let column_left: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
             WHERE table_name = 'records' AND column_name = 'absorbed_by')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!column_left, "the old column is dropped");
}

#[tokio::test]
#[ignore = "needs services"]
async fn users_and_predictions_take_hostile_input_as_data() {
    it_common::start();
    let database = TestDatabase::create("users").await;
    let store = migrated_store(&database).await;
    let hostile = "o'brien\"; DROP TABLE users; --";
    store.add_user(hostile, "$argon2id$hash").await.unwrap();
    store.add_user("merlin", "$argon2id$other").await.unwrap();
    assert!(matches!(
        store.add_user(hostile, "x").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.password_hash(hostile).await.unwrap().as_deref(),
        Some("$argon2id$hash")
    );
    assert_eq!(
        store.password_hash("nobody' OR '1'='1").await.unwrap(),
        None
    );
    let users: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(users, ["merlin", hostile]);
    assert!(store.remove_user(hostile).await.unwrap());
    assert!(!store.remove_user(hostile).await.unwrap());

    // Microseconds, as PostgreSQL stores them (and `predict_and_log` logs them).
    let now = Utc::now().trunc_subsecs(6);
    let entry = |minutes: i64, probability: f64, username: Option<&str>| PredictionLogEntry {
        prediction_id: Uuid::now_v7(),
        created_at: now - TimeDelta::minutes(minutes),
        model_version: 3,
        threshold: 0.5,
        probability_of_fraud: probability,
        fraud: probability >= 0.5,
        features: serde_json::json!({ "note": "'); DELETE FROM predictions; --" }),
        username: username.map(str::to_string),
        reason_codes: vec!["R01".to_string()],
    };
    let entries = [
        entry(60, 0.9, Some(hostile)),
        entry(1, 0.2, None),
        entry(0, 0.7, Some("merlin")),
    ];
    store.log_predictions(&entries).await.unwrap();
    store.log_predictions(&[]).await.unwrap();
    // Each entry comes back whole by its id; an unknown id finds nothing.
    for logged in &entries {
        let stored = store.prediction_by_id(logged.prediction_id).await.unwrap();
        assert_eq!(stored.as_ref(), Some(logged));
    }
    assert_eq!(store.prediction_by_id(Uuid::now_v7()).await.unwrap(), None);
    // A batch written again (a retry after an unconfirmed commit) is not stored twice.
    store.log_predictions(&entries[..1]).await.unwrap();
    let all = store.prediction_stats(None).await.unwrap();
    assert_eq!((all.count, all.fraud_count), (3, 2));
    assert!((all.mean_probability_of_fraud - 0.6).abs() < 1e-12);
    let recent = store
        .prediction_stats(Some(now - TimeDelta::minutes(5)))
        .await
        .unwrap();
    assert_eq!((recent.count, recent.fraud_count), (2, 1));
    let none = store
        .prediction_stats(Some(now + TimeDelta::minutes(5)))
        .await
        .unwrap();
    assert_eq!((none.count, none.mean_probability_of_fraud), (0, 0.0));

    // The monitor's window: oldest first, bounded on both sides and by the limit.
    let window = |since: Option<i64>, until: Option<i64>, limit: usize| {
        let store = &store;
        async move {
            store
                .predictions_in_window(
                    since.map(|m| now - TimeDelta::minutes(m)),
                    until.map(|m| now - TimeDelta::minutes(m)),
                    limit,
                )
                .await
                .unwrap()
                .into_iter()
                .map(|p| {
                    assert_eq!(p.outcome, None);
                    p.entry.prediction_id
                })
                .collect::<Vec<_>>()
        }
    };
    let ids: Vec<Uuid> = entries.iter().map(|e| e.prediction_id).collect();
    assert_eq!(window(None, None, 10).await, ids);
    assert_eq!(window(Some(5), None, 10).await, ids[1..]);
    assert_eq!(window(None, Some(0), 10).await, ids[..2]);
    assert_eq!(window(Some(5), Some(0), 10).await, ids[1..2]);
    assert_eq!(window(None, None, 1).await, ids[..1]);
}

#[tokio::test]
#[ignore = "needs services"]
async fn the_monitor_window_carries_each_prediction_s_outcome() {
    it_common::start();
    let database = TestDatabase::create("window").await;
    let store = migrated_store(&database).await;
    let now = Utc::now().trunc_subsecs(6);
    let entry = |seconds: i64| PredictionLogEntry {
        prediction_id: Uuid::now_v7(),
        created_at: now - TimeDelta::seconds(seconds),
        model_version: 1,
        threshold: 0.5,
        probability_of_fraud: 0.25,
        fraud: false,
        features: fraudrisk::request::seed_example_corrected(),
        username: None,
        reason_codes: vec!["R01".to_string()],
    };
    let entries = [entry(3), entry(2), entry(1)];
    store.log_predictions(&entries).await.unwrap();
    let outcome = |i: usize, fraud: bool| fraudrisk::outcomes::Outcome {
        prediction_id: entries[i].prediction_id,
        fraud,
        observed_at: now,
    };
    store
        .record_outcomes(&[outcome(0, true), outcome(2, false)], false, None)
        .await
        .unwrap();
    let window = store.predictions_in_window(None, None, 10).await.unwrap();
    let seen: Vec<(Uuid, Option<bool>)> = window
        .iter()
        .map(|p| (p.entry.prediction_id, p.outcome))
        .collect();
    assert_eq!(
        seen,
        [
            (entries[0].prediction_id, Some(true)),
            (entries[1].prediction_id, None),
            (entries[2].prediction_id, Some(false)),
        ]
    );
    assert_eq!(window[1].entry, entries[1]);
}

#[tokio::test]
#[ignore = "needs services"]
async fn a_dropped_connection_is_reestablished_on_the_next_call() {
    it_common::start();
    let database = TestDatabase::create("reconnect").await;
    let mut settings = database.settings();
    settings.pool_size = 1;
    let store = PostgresStore::connect(&settings).await.unwrap();
    store.migrate().await.unwrap();
    let batch = rows(GeneratedKind::Reference, 200, 3);
    store
        .load_records("a.csv", RecordRole::Reference, &batch)
        .await
        .unwrap();

    for round in 0..3 {
        let killed = it_common::terminate_connections(&database.name).await;
        assert!(
            killed >= 1,
            "round {round}: the pooled connection was terminated"
        );
        // Reads, a COPY load and a write, each right after its connection was killed.
        let counts = store.record_counts().await.unwrap();
        assert_eq!(counts.reference, 200);
        it_common::terminate_connections(&database.name).await;
        let summary = store
            .load_records("a.csv", RecordRole::Reference, &batch)
            .await
            .unwrap();
        assert_eq!(summary.already_present, 200, "nothing doubled by the retry");
        it_common::terminate_connections(&database.name).await;
        store
            .add_user(&format!("user{round}"), "hash")
            .await
            .unwrap();
    }
    assert_eq!(store.list_users().await.unwrap().len(), 3);
}

#[tokio::test]
#[ignore = "needs services"]
async fn the_training_lock_is_exclusive_across_processes_and_dies_with_its_session() {
    it_common::start();
    let database = TestDatabase::create("lock").await;
    // Two stores with their own pools: two Lambda containers.
    let a = migrated_store(&database).await;
    let b = PostgresStore::connect(&database.settings()).await.unwrap();

    assert_eq!(b.training_lock_owner().await.unwrap(), None);
    let held = a
        .try_lock_training("retrain A")
        .await
        .unwrap()
        .expect("free");
    // Any store sees who holds it: this process, on this host.
    let owner = b.training_lock_owner().await.unwrap().expect("held");
    assert_eq!(owner.holder, "retrain A");
    assert_eq!(owner.pid, Some(std::process::id()));
    assert_eq!(
        owner.host.as_deref(),
        Some(fraudrisk::lock_owner::host_name().as_str())
    );
    assert!(b.try_lock_training("retrain B").await.unwrap().is_none());
    assert!(a.try_lock_training("retrain A2").await.unwrap().is_none());
    // A training holding the lock does not hold up outcome reports or absorption (their
    // advisory lock once had the training lock's key, and a report waited for the training).
    let unknown = [fraudrisk::outcomes::Outcome {
        prediction_id: Uuid::now_v7(),
        fraud: true,
        observed_at: Utc::now(),
    }];
    let report = b.record_outcomes(&unknown, false, None);
    let decisions = tokio::time::timeout(Duration::from_secs(10), report)
        .await
        .expect("an outcome report during a training answers")
        .unwrap();
    assert!(matches!(
        decisions.as_slice(),
        [d] if d.result == fraudrisk::outcomes::OutcomeResult::UnknownPrediction
    ));
    tokio::time::timeout(Duration::from_secs(10), b.mark_absorbed(&[], 1))
        .await
        .expect("absorption during another store's training lock answers")
        .unwrap();
    held.release().await.unwrap();
    assert_eq!(b.training_lock_owner().await.unwrap(), None, "released");
    let held = b
        .try_lock_training("retrain B")
        .await
        .unwrap()
        .expect("released");

    // A holder that vanishes without releasing (a crashed Lambda) frees the lock with its session.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    let retaken = loop {
        if let Some(lock) = a.try_lock_training("after crash").await.unwrap() {
            break lock;
        }
        assert!(Instant::now() < deadline, "the lock outlived its session");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // If the lock's session is killed during training, the fencing check before promotion
    // fails, and release says so.
    retaken.confirm_held().await.unwrap();
    it_common::terminate_connections(&database.name).await;
    let fenced = retaken.confirm_held().await.unwrap_err().to_string();
    assert!(fenced.contains("not promoting"), "{fenced}");
    let error = retaken.release().await.unwrap_err().to_string();
    assert!(error.contains("release_training_lock"), "{error}");
    assert!(error.contains("lost"), "{error}");
    assert!(b.try_lock_training("next").await.unwrap().is_some());
}

#[tokio::test]
#[ignore = "needs services"]
async fn unlock_ends_the_holding_session_and_reports_its_owner() {
    it_common::start();
    let database = TestDatabase::create("unlock").await;
    let a = migrated_store(&database).await;
    let b = PostgresStore::connect(&database.settings()).await.unwrap();
    assert_eq!(b.force_unlock_training().await.unwrap(), None);
    let held = a.try_lock_training("initialtrain").await.unwrap().unwrap();
    let removed = b.force_unlock_training().await.unwrap().expect("held");
    assert_eq!(removed.holder, "initialtrain");
    let fenced = held.confirm_held().await.unwrap_err().to_string();
    assert!(fenced.contains("not promoting"), "{fenced}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.try_lock_training("after unlock").await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "the lock survived unlock");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
#[ignore = "needs services"]
async fn loads_are_keyed_by_content_like_the_sqlite_store() {
    it_common::start();
    let database = TestDatabase::create("content").await;
    let store = migrated_store(&database).await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("parity.sqlite3")).unwrap();
    sqlite.migrate().await.unwrap();

    let first = rows(GeneratedKind::Reference, 50, 3);
    let mut second = first.clone();
    second[4].record.creditability = 1 - second[4].record.creditability;
    let mut third = second.clone();
    third[9].record.creditability = 1 - third[9].record.creditability;
    let stores: [&dyn RecordStore; 2] = [&store, &sqlite];
    for records in stores {
        let load = |rows: Vec<SourceRow>| async move {
            records
                .load_records("data.csv", RecordRole::Reference, &rows)
                .await
                .unwrap()
        };
        let loaded = load(first.clone()).await;
        assert_eq!((loaded.new, loaded.inserted), (50, 50));
        let same = load(first.clone()).await;
        assert_eq!(
            (same.new, same.changed, same.already_present, same.inserted),
            (0, 0, 50, 0)
        );
        // One changed row, never absorbed: replaced in place.
        let changed = load(second.clone()).await;
        assert_eq!(
            (
                changed.changed,
                changed.replaced,
                changed.inserted,
                changed.already_present
            ),
            (1, 1, 0, 49)
        );
        assert_eq!(records.record_counts().await.unwrap().reference, 50);
        // Once absorbed, a changed row is added beside the old version.
        let ids: Vec<i64> = records
            .records_by_role(RecordRole::Reference)
            .await
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect();
        records.mark_absorbed(&ids, 1).await.unwrap();
        let added = load(third.clone()).await;
        assert_eq!(
            (
                added.changed,
                added.replaced,
                added.inserted,
                added.already_present
            ),
            (1, 0, 1, 49)
        );
        let counts = records.record_counts().await.unwrap();
        assert_eq!((counts.reference, counts.pending), (51, 1));
    }
}

#[tokio::test]
#[ignore = "needs services"]
async fn tls_follows_sslmode() {
    it_common::start();
    let database = TestDatabase::create("tls").await;
    let mut settings = database.settings();

    settings.sslmode = SslMode::Require;
    let store = PostgresStore::connect(&settings).await.unwrap();
    assert!(
        store.connection_uses_tls().await.unwrap(),
        "require encrypts"
    );

    settings.sslmode = SslMode::Disable;
    let store = PostgresStore::connect(&settings).await.unwrap();
    assert!(!store.connection_uses_tls().await.unwrap());

    // The local server's certificate is self-signed: full verification must refuse it.
    let url = format!("{}?sslmode=verify-full", database.url);
    let settings = PostgresSettings::from_url(&url).unwrap();
    assert_eq!(settings.sslmode, SslMode::VerifyFull);
    let error = PostgresStore::connect(&settings)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot connect"), "{error}");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
}

#[tokio::test]
#[ignore = "needs services"]
async fn connection_failures_are_reported_clearly() {
    it_common::start();
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/x",
        it_common::closed_port()
    );
    let mut settings = PostgresSettings::from_url(&url).unwrap();
    settings.config.connect_timeout(Duration::from_secs(2));
    let error = PostgresStore::connect(&settings)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("cannot connect to postgres://postgres@127.0.0.1"),
        "{error}"
    );
    assert!(error.to_lowercase().contains("refused"), "{error}");

    let url = it_common::url_with_database(
        &it_common::env("FRAUDRISK_DATABASE_URL"),
        "fraudrisk_no_such_database",
    );
    let error = PostgresStore::connect(&PostgresSettings::from_url(&url).unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("does not exist"), "{error}");
}
