//! The S3 artifact store and Secrets Manager against moto's real server.

mod it_common;

use std::time::{Duration, Instant};

use fraudrisk::adapters::postgres::{PostgresSettings, PostgresStore};
use fraudrisk::adapters::s3::{s3_client, S3ArtifactStore};
use fraudrisk::adapters::secrets::SecretsClient;
use fraudrisk::config::{DatabaseConfig, DatabaseSource, MlflowCredentials};
use fraudrisk::ports::{ArtifactStore, RunStatus};
use fraudrisk::services::Services;

#[tokio::test]
#[ignore = "needs services"]
async fn objects_round_trip_below_the_prefix() {
    it_common::start();
    let aws = it_common::env_config().aws;
    let bucket = it_common::env("FRAUDRISK_BUCKET");
    let prefix = it_common::unique("it/s3");
    let store = S3ArtifactStore::new(s3_client(&aws).await, &bucket, &format!("/{prefix}/"));
    assert_eq!(store.location(), format!("s3://{bucket}/{prefix}/"));

    assert_eq!(
        store.get("champion.json").await.unwrap(),
        None,
        "missing is None"
    );
    store
        .put(
            "models/v1/model.json",
            b"{\"v\":1}".to_vec(),
            "application/json",
        )
        .await
        .unwrap();
    store
        .put("champion.json", b"{}".to_vec(), "application/json")
        .await
        .unwrap();
    store
        .put(
            "champion.json",
            b"{\"version\":1}".to_vec(),
            "application/json",
        )
        .await
        .unwrap();
    assert_eq!(
        store.get("champion.json").await.unwrap().as_deref(),
        Some(&b"{\"version\":1}"[..]),
        "an overwrite replaces the object"
    );
    assert_eq!(
        store.list().await.unwrap(),
        ["champion.json", "models/v1/model.json"]
    );
    // Seen from outside with boto3.
    assert_eq!(
        it_common::s3_keys(&prefix),
        [
            format!("{prefix}/champion.json"),
            format!("{prefix}/models/v1/model.json")
        ]
    );
    for key in ["../escape", "/abs", "a//b", ""] {
        let error = store.put(key, vec![], "text/plain").await.unwrap_err();
        assert_eq!(error.operation, "put");
    }
}

#[tokio::test]
#[ignore = "needs services"]
async fn a_missing_bucket_or_endpoint_gives_errors_naming_operation_and_key() {
    it_common::start();
    let aws = it_common::env_config().aws;
    let bucket = it_common::unique("fraudrisk-no-such-bucket");
    let store = S3ArtifactStore::new(s3_client(&aws).await, &bucket, "p");
    let error = store.get("champion.json").await.unwrap_err();
    let text = error.to_string();
    assert_eq!(error.operation, "get");
    assert!(
        text.contains(&format!("s3://{bucket}/p/champion.json")),
        "{text}"
    );
    assert!(text.contains("NoSuchBucket"), "{text}");
    let text = store
        .put("models/v1/model.json", b"x".to_vec(), "application/json")
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("during put of s3://"), "{text}");
    assert!(text.contains("NoSuchBucket"), "{text}");

    // Nothing listening: a refused connection, reported after the SDK's bounded retries.
    let mut unreachable = aws.clone();
    unreachable.endpoint_url = Some(format!("http://127.0.0.1:{}", it_common::closed_port()));
    unreachable.s3_endpoint_url = None;
    let store = S3ArtifactStore::new(
        s3_client(&unreachable).await,
        &it_common::env("FRAUDRISK_BUCKET"),
        "",
    );
    let started = Instant::now();
    let text = store.get("champion.json").await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(text.contains("champion.json"), "{text}");
    assert!(
        text.to_lowercase().contains("connect") || text.contains("dispatch failure"),
        "{text}"
    );
}

#[tokio::test]
#[ignore = "needs services"]
async fn secrets_give_the_database_and_mlflow_credentials() {
    it_common::start();
    let aws = it_common::env_config().aws;
    let secrets = SecretsClient::new(&aws).await;

    let db_secret = secrets
        .database_secret(&it_common::env("FRAUDRISK_DB_SECRET_ID"))
        .await
        .unwrap();
    assert_eq!(db_secret.host, "127.0.0.1");
    let settings = PostgresSettings::from_secret(&db_secret, None);
    // Connecting opens (and checks) a first connection.
    PostgresStore::connect(&settings).await.unwrap();

    let mlflow = secrets
        .basic_credentials(&it_common::env("FRAUDRISK_MLFLOW_SECRET_ID"))
        .await
        .unwrap();
    assert_eq!(mlflow.username, it_common::env("MLFLOW_TRACKING_USERNAME"));
    assert_eq!(
        mlflow.password.expose(),
        it_common::env("MLFLOW_TRACKING_PASSWORD")
    );
    assert!(!format!("{mlflow:?}").contains(mlflow.password.expose()));

    let missing = it_common::unique("fraudrisk/missing");
    let text = secrets
        .secret_string(&missing)
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains(&missing), "{text}");
    assert!(text.contains("ResourceNotFound"), "{text}");
}

#[tokio::test]
#[ignore = "needs services"]
async fn services_can_be_configured_by_secret_ids_alone() {
    it_common::start();
    let mut settings = it_common::settings().clone();
    for key in [
        "FRAUDRISK_DATABASE_URL",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
    ] {
        settings.unset(key);
    }
    settings.set("FRAUDRISK_ARTIFACT_PREFIX", it_common::unique("it/secrets"));
    let config = fraudrisk::config::Config::from_settings(&settings).unwrap();
    assert!(matches!(
        config.database,
        Some(DatabaseConfig {
            source: DatabaseSource::Secret(_),
            ..
        })
    ));
    assert!(matches!(
        config.mlflow.as_ref().map(|m| &m.credentials),
        Some(MlflowCredentials::Secret(_))
    ));
    let state = tempfile::tempdir().unwrap();
    let services = Services::production(&config, state.path()).await.unwrap();
    let described = format!("{:?}", services.description);
    assert!(
        described.contains("PostgreSQL postgres://postgres@127.0.0.1"),
        "{described}"
    );
    assert!(described.contains("S3 s3://"), "{described}");
    assert!(described.contains("MLflow http://"), "{described}");
    assert!(
        std::fs::read_dir(state.path()).unwrap().next().is_none(),
        "no local state is created when every port is remote"
    );
    services.records.record_counts().await.unwrap();
    // The MLflow credentials are fetched from the secret on the first call.
    let run = services
        .tracker
        .start_run(&it_common::unique("it-secret-auth"), "probe")
        .await
        .unwrap();
    services
        .tracker
        .end_run(&run, RunStatus::Finished)
        .await
        .unwrap();

    // RDS Proxy: FRAUDRISK_DB_HOST replaces the secret's host, keeping its credentials.
    settings.set("FRAUDRISK_DB_HOST", "localhost");
    let config = fraudrisk::config::Config::from_settings(&settings).unwrap();
    let proxied = Services::production(&config, state.path()).await.unwrap();
    let described = format!("{:?}", proxied.description);
    assert!(
        described.contains("PostgreSQL postgres://postgres@localhost"),
        "{described}"
    );
    proxied.records.record_counts().await.unwrap();
}
