//! Shared helpers of the integration tests against the real services that
//! `scripts/services.sh` starts (PostgreSQL, moto's S3 and Secrets Manager, mlflow server).
//!
//! Every test isolates itself: a fresh randomly named database (dropped afterwards, even when
//! the test panics), a unique S3 prefix, unique MLflow experiment and model names.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use fraudrisk::adapters::postgres::PostgresSettings;
use fraudrisk::config::{
    Config, DatabaseConfig, DatabaseSource, Redacted, S3ArtifactsConfig, Settings,
};
use fraudrisk::pipeline::PipelineSettings;

/// The env file `scripts/services.sh start` writes (and `stop` removes).
pub fn services_env_file() -> PathBuf {
    let dir = std::env::var("FRAUDRISK_SERVICES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            std::env::var("FRAUDRISK_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|_| {
                    PathBuf::from(std::env::var("HOME").unwrap_or_default())
                        .join(".cache/fraudrisk")
                })
                .join("services")
        });
    dir.join("services.env")
}

/// The services' settings, read from their env file, not from the process environment:
/// `scripts/test.sh` exports only `FRAUDRISK_SERVICES_DIR`, so the other tests of the
/// workspace keep their local adapters.
pub fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let path = services_env_file();
        Settings::from_file(&path)
            .unwrap_or_else(|e| panic!("{e} (start the services: bash scripts/services.sh start)"))
    })
}

/// Call first in every integration test. The tests that use this module are
/// `#[ignore = "needs services"]`: `cargo test` reports them as ignored, and they run only when
/// asked (`bash scripts/test.sh` asks, with `--run-ignored all` once it has started the
/// services). So once running, a test never passes without its services: it fails here,
/// naming what to do, when their env file is missing.
pub fn start() {
    fraudrisk::telemetry::init_test();
    let test = std::thread::current()
        .name()
        .unwrap_or("integration test")
        .to_string();
    let path = services_env_file();
    if !path.is_file() {
        panic!(
            "{test}: the real services are not up ({} is missing). Run `bash scripts/test.sh`, \
             or `bash scripts/services.sh start` and then \
             `cargo test -p fraudrisk --test <name> -- --include-ignored`",
            path.display()
        );
    }
}

/// A name unique to this test run: `<label>-<12 hex digits>` (lower case, S3- and
/// MLflow-safe; `_` instead of `-` for database names).
pub fn unique(label: &str) -> String {
    format!("{label}-{:012x}", rand::random::<u64>() >> 16)
}

/// A setting of the services env file.
pub fn env(name: &str) -> String {
    settings().get(name).unwrap_or_else(|| {
        panic!(
            "{name} is not in {} (restart the services)",
            services_env_file().display()
        )
    })
}

/// The workspace root (scripts live there).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// `url` with its database name replaced.
pub fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let host_part = base.rsplit_once('/').map_or(base, |(h, _)| h);
    match query {
        Some(q) => format!("{host_part}/{database}?{q}"),
        None => format!("{host_part}/{database}"),
    }
}

/// An administrative connection to the server of `FRAUDRISK_DATABASE_URL` (its own database).
pub async fn admin_client() -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&env("FRAUDRISK_DATABASE_URL"), tokio_postgres::NoTls)
            .await
            .expect("admin connection to PostgreSQL");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A plain connection to a test database (for EXPLAIN and hand-made damage).
pub async fn client_for(database: &TestDatabase) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
        .await
        .expect("connection to the test database");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Ends every other session on `database`: what a failover or an idle timeout does.
pub async fn terminate_connections(database: &str) -> i64 {
    admin_client()
        .await
        .query_one(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&database],
        )
        .await
        .expect("pg_terminate_backend")
        .get(0)
}

/// A fresh database, dropped when this value is dropped.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// Creates `fraudrisk_it_<label>_<random>`.
    pub async fn create(label: &str) -> Self {
        let name = unique(&format!("fraudrisk_it_{label}")).replace('-', "_");
        admin_client()
            .await
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("CREATE DATABASE");
        TestDatabase {
            url: url_with_database(&env("FRAUDRISK_DATABASE_URL"), &name),
            name,
        }
    }

    /// Connection settings for it.
    pub fn settings(&self) -> PostgresSettings {
        PostgresSettings::from_url(&self.url).expect("test database URL")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop may run inside a runtime (or while panicking): use a thread with its own.
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                admin_client()
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// The configuration the services env file gives (all three production adapters).
pub fn env_config() -> Config {
    Config::from_settings(settings()).expect("configuration")
}

/// All production adapters, isolated: this test's database, an S3 prefix of its own.
pub fn isolated_config(database: &TestDatabase, prefix: &str) -> Config {
    let mut config = env_config();
    config.database = Some(DatabaseConfig {
        source: DatabaseSource::Url(Redacted::new(database.url.clone())),
        sslmode: None,
        default_dbname: None,
        host_override: None,
        ca_file: None,
        pool_size: 2,
        connect_timeout: Duration::from_secs(10),
    });
    config.artifacts = Some(S3ArtifactsConfig {
        bucket: env("FRAUDRISK_BUCKET"),
        prefix: prefix.to_string(),
    });
    config
}

/// Pipeline settings with this test's experiment and model names; `quick` trains a small
/// grid (2 strengths x 3 folds) for tests that are about faults, not about the model.
pub fn pipeline_settings(label: &str, quick: bool) -> PipelineSettings {
    let name = unique(&format!("it-{label}"));
    let mut settings = PipelineSettings {
        experiment: name.clone(),
        model_name: name,
        ..PipelineSettings::default()
    };
    if quick {
        settings.training.alphas = vec![1.0, 10.0];
        settings.training.folds = 3;
    }
    settings
}

/// A port nothing listens on (bound, then released): connecting there is refused.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// The project's Python venv interpreter.
pub fn python() -> PathBuf {
    let output = Command::new("bash")
        .arg(workspace_root().join("scripts/python-env.sh"))
        .output()
        .expect("scripts/python-env.sh");
    assert!(output.status.success(), "python-env.sh failed");
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join("bin/python")
}

/// Runs `scripts/mlflow_check.py` (MLflow's own client, boto3) and returns its JSON.
pub fn mlflow_check(args: &[&str]) -> serde_json::Value {
    let env_file = services_env_file();
    let output = Command::new(python())
        .arg(workspace_root().join("scripts/mlflow_check.py"))
        .arg("--env-file")
        .arg(&env_file)
        .args(args)
        .output()
        .expect("run mlflow_check.py");
    assert!(
        output.status.success(),
        "mlflow_check.py {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Python's json module writes NaN and Infinity bare, which strict JSON does not allow.
    let text = String::from_utf8_lossy(&output.stdout)
        .replace(": NaN", ": null")
        .replace(": -Infinity", ": null")
        .replace(": Infinity", ": null");
    serde_json::from_str(&text).expect("mlflow_check.py prints JSON")
}

/// The keys `mlflow_check.py s3-list` finds under a prefix.
pub fn s3_keys(prefix: &str) -> Vec<String> {
    mlflow_check(&["s3-list", "--prefix", prefix])["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The "no half promotion" check after a failed training: the champion pointer still holds
/// the same bytes, the registry's `champion` alias still names `champion_version`, and
/// `pending` new rows are still waiting for the next retrain.
pub async fn assert_champion_unchanged(
    services: &fraudrisk::services::Services,
    model_name: &str,
    pointer_before: &Option<Vec<u8>>,
    champion_version: u32,
    pending: usize,
) {
    use fraudrisk::pipeline::{CHAMPION_ALIAS, CHAMPION_POINTER_KEY};
    assert_eq!(
        &services.artifacts.get(CHAMPION_POINTER_KEY).await.unwrap(),
        pointer_before,
        "the champion pointer changed"
    );
    let alias = services
        .tracker
        .alias_version(model_name, CHAMPION_ALIAS)
        .await
        .unwrap()
        .expect("the champion alias is still set");
    assert_eq!(alias.version, champion_version, "the champion alias moved");
    assert_eq!(
        services.records.record_counts().await.unwrap().pending,
        pending,
        "waiting rows were lost or absorbed"
    );
}
