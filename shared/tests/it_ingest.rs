//! The `ingest` function's work against moto's S3 and PostgreSQL: files dropped under
//! `<prefix>/incoming/` become waiting rows or outcomes and move to `processed/`; a bad file
//! moves to `rejected/` with its `.error.json`; a retried event loads nothing twice; a
//! database that is down fails the invocation and leaves the file where it was.

mod it_common;

use chrono::Utc;
use fraudrisk::ingest::{ingest_event, IngestOutcome, IngestStores, IngestTarget};
use fraudrisk::outcomes::OUTCOME_SOURCE;
use fraudrisk::ports::PredictionLogEntry;
use fraudrisk::request::seed_example_corrected;
use fraudrisk::services::Services;
use it_common::{env, isolated_config, unique, TestDatabase};
use serde_json::{json, Value};
use uuid::Uuid;

const HEADER: &str = "creditability,account_balance,duration_of_credit_month,payment_status_of_previous_credit,purpose,credit_amount,value_savings_stocks,length_of_current_employment,instalment_per_cent,sex_marital_status,guarantors,duration_in_current_address,most_valuable_available_asset,age_years,concurrent_credits,type_of_apartment,no_of_credits_at_this_bank,occupation,no_of_dependents,telephone,foreign_worker";
const ROW: &str = "0,3,12,4,0,939,3,4,4,4,1,2,1,28,3,2,3,3,0,1,0";

fn object_created(bucket: &str, key: &str) -> Value {
    json!({
        "version": "0", "detail-type": "Object Created", "source": "aws.s3",
        "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1}, "reason": "PutObject"}
    })
}

fn files(outcomes: &[IngestOutcome]) -> Value {
    serde_json::to_value(outcomes).unwrap()
}

/// A fresh database and artifact prefix on the test services, and what an ingest needs of them.
struct Setup {
    database: TestDatabase,
    state: tempfile::TempDir,
    services: Services,
    target: IngestTarget,
    prefix: String,
    bucket: String,
}

impl Setup {
    async fn new(name: &str) -> Setup {
        it_common::start();
        let database = TestDatabase::create(name).await;
        let prefix = unique(&format!("it-{name}"));
        let config = isolated_config(&database, &prefix);
        let state = tempfile::tempdir().unwrap();
        let services = Services::production(&config, state.path()).await.unwrap();
        Setup {
            database,
            state,
            services,
            target: IngestTarget::from_config(&config),
            prefix,
            bucket: env("FRAUDRISK_BUCKET"),
        }
    }
}

fn stores(services: &Services) -> IngestStores<'_> {
    IngestStores {
        records: services.records.as_ref(),
        outcomes: services.outcomes.as_ref(),
        objects: services.artifacts.as_ref(),
    }
}

#[tokio::test]
#[ignore = "needs services"]
async fn files_in_incoming_are_loaded_and_moved() {
    // The database and the state folder live until the end of the test.
    let Setup {
        database: _database,
        state: _state,
        services,
        target,
        prefix,
        bucket,
    } = Setup::new("ingest").await;
    let stores = stores(&services);

    // A logged prediction the outcomes file reports on.
    let logged = PredictionLogEntry {
        prediction_id: Uuid::now_v7(),
        created_at: Utc::now(),
        model_version: 1,
        threshold: 0.5,
        probability_of_fraud: 0.4,
        fraud: false,
        features: seed_example_corrected(),
        username: None,
        reason_codes: Vec::new(),
    };
    services
        .predictions
        .log_predictions(std::slice::from_ref(&logged))
        .await
        .unwrap();

    let uploads = [
        ("incoming/rows 2026-11.csv", format!("{HEADER}\n{ROW}\n")),
        (
            "incoming/outcomes.csv",
            format!(
                "prediction_id,fraud\n{},true\n{},false\n",
                logged.prediction_id,
                Uuid::now_v7()
            ),
        ),
        (
            "incoming/broken.csv",
            format!("{HEADER}\n{ROW}\n{}\n", ROW.replace(",939,", ",-5,")),
        ),
    ];
    for (key, content) in &uploads {
        services
            .artifacts
            .put(key, content.as_bytes().to_vec(), "text/csv")
            .await
            .unwrap();
    }
    // The S3 notification shape encodes the space as '+'.
    let notification = json!({"Records": [
        {"s3": {"bucket": {"name": bucket}, "object": {"key": format!("{prefix}/incoming/rows+2026-11.csv")}}}
    ]});
    let loaded = ingest_event(&stores, &target, &notification).await.unwrap();
    assert_eq!(files(&loaded)[0]["status"], "loaded", "{loaded:?}");
    assert_eq!(files(&loaded)[0]["summary"]["inserted"], 1);

    let recorded = ingest_event(
        &stores,
        &target,
        &object_created(&bucket, &format!("{prefix}/incoming/outcomes.csv")),
    )
    .await
    .unwrap();
    let recorded = files(&recorded);
    assert_eq!(recorded[0]["status"], "recorded");
    assert_eq!(recorded[0]["counts"]["recorded"], 1);
    assert_eq!(recorded[0]["counts"]["unknown_prediction"], 1);
    assert_eq!(
        recorded[0]["notable"][0]["index"], 3,
        "the unknown id's line"
    );

    let rejected = ingest_event(
        &stores,
        &target,
        &object_created(&bucket, &format!("{prefix}/incoming/broken.csv")),
    )
    .await
    .unwrap();
    let rejected = files(&rejected);
    assert_eq!(rejected[0]["status"], "rejected");
    assert_eq!(rejected[0]["line"], 3);
    assert_eq!(rejected[0]["column"], "credit_amount");

    // Where everything went.
    let keys = it_common::s3_keys(&format!("{prefix}/"));
    let expected = [
        "processed/rows 2026-11.csv",
        "processed/rows 2026-11.csv.report.json",
        "processed/outcomes.csv",
        "processed/outcomes.csv.report.json",
        "rejected/broken.csv",
        "rejected/broken.csv.error.json",
    ];
    for key in expected {
        assert!(
            keys.contains(&format!("{prefix}/{key}")),
            "{key} missing from {keys:?}"
        );
    }
    assert!(!keys.iter().any(|k| k.contains("/incoming/")), "{keys:?}");
    let error: Value = serde_json::from_slice(
        &services
            .artifacts
            .get("rejected/broken.csv.error.json")
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(error["line"], 3);
    assert_eq!(error["column"], "credit_amount");
    assert!(
        error["rule"].as_str().unwrap().contains("1000000"),
        "{error}"
    );

    // Rows wait by source; nothing of the rejected file was loaded.
    let waiting = services.records.pending_by_source().await.unwrap();
    assert!(
        waiting.contains(&("rows 2026-11.csv".to_string(), 1)),
        "{waiting:?}"
    );
    assert!(
        waiting.contains(&(OUTCOME_SOURCE.to_string(), 1)),
        "{waiting:?}"
    );
    assert!(
        !waiting.iter().any(|(s, _)| s == "broken.csv"),
        "{waiting:?}"
    );

    // A retried event: handled already, nothing loaded twice.
    let again = ingest_event(&stores, &target, &notification).await.unwrap();
    assert_eq!(files(&again)[0]["status"], "already_handled");
    // The same file dropped again: its rows are unchanged (keyed by content).
    services
        .artifacts
        .put(
            "incoming/rows 2026-11.csv",
            uploads[0].1.as_bytes().to_vec(),
            "text/csv",
        )
        .await
        .unwrap();
    let reloaded = ingest_event(&stores, &target, &notification).await.unwrap();
    assert_eq!(files(&reloaded)[0]["summary"]["already_present"], 1);
    assert_eq!(files(&reloaded)[0]["summary"]["inserted"], 0);

    // Labelled rows under the outcomes' reserved source name are set aside, not retried.
    services
        .artifacts
        .put(
            "incoming/outcome",
            uploads[0].1.as_bytes().to_vec(),
            "text/csv",
        )
        .await
        .unwrap();
    let reserved = ingest_event(
        &stores,
        &target,
        &object_created(&bucket, &format!("{prefix}/incoming/outcome")),
    )
    .await
    .unwrap();
    let reserved = files(&reserved);
    assert_eq!(reserved[0]["status"], "rejected", "{reserved}");
    assert!(
        reserved[0]["rule"].as_str().unwrap().contains("reserved"),
        "{reserved}"
    );
    assert!(services
        .artifacts
        .get("rejected/outcome.error.json")
        .await
        .unwrap()
        .is_some());

    // Another bucket or prefix is left alone.
    let other = ingest_event(
        &stores,
        &target,
        &object_created("other-bucket", &format!("{prefix}/incoming/x.csv")),
    )
    .await
    .unwrap();
    assert_eq!(files(&other)[0]["status"], "ignored");
}

#[tokio::test]
#[ignore = "needs services"]
async fn a_database_that_is_down_fails_the_invocation_and_keeps_the_file() {
    it_common::start();
    let database = TestDatabase::create("ingest_down").await;
    let prefix = unique("it-ingest-down");
    let config = isolated_config(&database, &prefix);
    let state = tempfile::tempdir().unwrap();
    let services = Services::production(&config, state.path()).await.unwrap();
    services
        .artifacts
        .put(
            "incoming/rows.csv",
            format!("{HEADER}\n{ROW}\n").into_bytes(),
            "text/csv",
        )
        .await
        .unwrap();
    // The outage: the database goes away (its sessions are ended) under the running store.
    drop(database);
    let stores = IngestStores {
        records: services.records.as_ref(),
        outcomes: services.outcomes.as_ref(),
        objects: services.artifacts.as_ref(),
    };
    let target = IngestTarget::from_config(&config);
    let error = ingest_event(
        &stores,
        &target,
        &object_created(
            &env("FRAUDRISK_BUCKET"),
            &format!("{prefix}/incoming/rows.csv"),
        ),
    )
    .await
    .expect_err("the database is gone");
    assert!(error.to_string().contains("rows.csv"), "{error}");
    assert!(
        services
            .artifacts
            .get("incoming/rows.csv")
            .await
            .unwrap()
            .is_some(),
        "the file stays in incoming/ for the retry"
    );
}

#[tokio::test]
#[ignore = "needs services"]
async fn a_file_over_the_limit_is_rejected_unread_and_moved_inside_s3() {
    use fraudrisk::ingest::MAX_INGEST_BYTES;
    use fraudrisk::ports::{BoundedObject, HEAD_BYTES};

    // The database and the state folder live until the end of the test.
    let Setup {
        database: _database,
        state: _state,
        services,
        target,
        prefix,
        bucket,
    } = Setup::new("ingest_large").await;
    let stores = stores(&services);

    // A labelled-rows file one byte over the limit.
    let mut large = format!("{HEADER}\n").into_bytes();
    while large.len() <= MAX_INGEST_BYTES {
        large.extend_from_slice(ROW.as_bytes());
        large.push(b'\n');
    }
    large.truncate(MAX_INGEST_BYTES + 1);
    let key = "incoming/big month.csv";
    services
        .artifacts
        .put(key, large.clone(), "text/csv")
        .await
        .unwrap();
    // The bounded read of S3 stops at the head.
    match services
        .artifacts
        .get_at_most(key, MAX_INGEST_BYTES)
        .await
        .unwrap()
    {
        Some(BoundedObject::TooLarge { size, head }) => {
            assert_eq!(size, large.len() as u64);
            assert!(head.len() <= HEAD_BYTES && head.starts_with(HEADER.as_bytes()));
        }
        other => panic!("expected TooLarge, got {:?}", other.map(|_| "an object")),
    }

    let outcome = ingest_event(
        &stores,
        &target,
        &object_created(&bucket, &format!("{prefix}/{key}")),
    )
    .await
    .unwrap();
    let outcome = files(&outcome);
    assert_eq!(outcome[0]["status"], "rejected", "{outcome}");
    assert_eq!(outcome[0]["kind"], "labelled_rows", "{outcome}");
    let rule = outcome[0]["rule"].as_str().unwrap();
    assert!(rule.contains(&MAX_INGEST_BYTES.to_string()), "{rule}");
    assert!(rule.contains(&large.len().to_string()), "{rule}");
    // Moved whole by a server-side copy, its note beside it, nothing loaded.
    assert_eq!(
        services
            .artifacts
            .get("rejected/big month.csv")
            .await
            .unwrap()
            .map(|b| b.len()),
        Some(large.len())
    );
    assert!(services
        .artifacts
        .get("rejected/big month.csv.error.json")
        .await
        .unwrap()
        .is_some());
    assert_eq!(services.artifacts.get(key).await.unwrap(), None);
    assert!(services
        .records
        .pending_by_source()
        .await
        .unwrap()
        .is_empty());
}
