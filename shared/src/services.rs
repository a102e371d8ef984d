//! Wiring: which adapter serves which port.
//!
//! Each port is chosen on its own (see `credentials.env.example`):
//! - `FRAUDRISK_DATABASE_URL` or `FRAUDRISK_DB_SECRET_ID` → PostgreSQL, else SQLite;
//! - `FRAUDRISK_BUCKET` (+ `FRAUDRISK_ARTIFACT_PREFIX`) → S3, else a local folder;
//! - `MLFLOW_TRACKING_URI` → the MLflow server, else a local folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::adapters::local_artifacts::LocalArtifactStore;
use crate::adapters::local_tracker::LocalTracker;
use crate::adapters::mlflow::{MlflowAuth, MlflowTracker};
use crate::adapters::postgres::{PostgresSettings, PostgresStore};
use crate::adapters::s3::{s3_client, S3ArtifactStore};
use crate::adapters::secrets::{SecretError, SecretsClient};
use crate::adapters::sqlite::SqliteStore;
use crate::config::{Config, ConfigError, DatabaseConfig, DatabaseSource, MlflowCredentials};
use crate::monitor::{MonitorReport, MonitorSettings};
use crate::pipeline::{
    self, MonitorRequest, PipelineError, PipelineSettings, RetrainMode, RetrainSummary,
    TrainingSummary,
};
use crate::ports::{
    ArtifactStore, JobStore, OutcomeStore, PredictionLog, RecordStore, StoreError, Tracker,
    TrackerError, UserStore,
};

/// The default local state folder, relative to the working directory.
pub const DEFAULT_STATE_DIR: &str = ".fraudrisk";

/// Why the services could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Tracker(#[from] TrackerError),
}

impl From<ServicesError> for StoreError {
    fn from(error: ServicesError) -> Self {
        match error {
            ServicesError::Store(store) => store,
            other => StoreError::from_source("service setup", other),
        }
    }
}

/// One adapter per port.
#[derive(Clone)]
pub struct Services {
    pub records: Arc<dyn RecordStore>,
    pub users: Arc<dyn UserStore>,
    pub predictions: Arc<dyn PredictionLog>,
    pub outcomes: Arc<dyn OutcomeStore>,
    /// Training jobs (the same database as the records).
    pub jobs: Arc<dyn JobStore>,
    pub artifacts: Arc<dyn ArtifactStore>,
    pub tracker: Arc<dyn Tracker>,
    /// Where each port points, for humans.
    pub description: Vec<(&'static str, String)>,
}

impl Services {
    /// [`pipeline::initial_train`] over these services; refuses to replace a champion that
    /// retrain promoted ([`PipelineError::ChampionFromRetrain`]).
    pub async fn initial_train(
        &self,
        settings: &PipelineSettings,
    ) -> Result<TrainingSummary, PipelineError> {
        self.initial_train_with_force(settings, false).await
    }

    /// [`pipeline::initial_train`] over these services; `force` replaces even a champion
    /// that retrain promoted.
    pub async fn initial_train_with_force(
        &self,
        settings: &PipelineSettings,
        force: bool,
    ) -> Result<TrainingSummary, PipelineError> {
        pipeline::initial_train(
            self.records.as_ref(),
            self.artifacts.as_ref(),
            self.tracker.as_ref(),
            settings,
            force,
        )
        .await
    }

    /// [`pipeline::retrain`] over these services.
    pub async fn retrain(
        &self,
        settings: &PipelineSettings,
        mode: RetrainMode,
    ) -> Result<RetrainSummary, PipelineError> {
        pipeline::retrain(
            self.records.as_ref(),
            self.predictions.as_ref(),
            self.artifacts.as_ref(),
            self.tracker.as_ref(),
            settings,
            mode,
        )
        .await
    }

    /// [`pipeline::monitor`] over these services.
    pub async fn monitor(
        &self,
        request: MonitorRequest,
        settings: &MonitorSettings,
    ) -> Result<MonitorReport, PipelineError> {
        pipeline::monitor(
            self.records.as_ref(),
            self.predictions.as_ref(),
            self.artifacts.as_ref(),
            request,
            settings,
        )
        .await
    }

    /// The services the environment and `credentials.env` configure: production adapters
    /// for the ports that are configured, the embedded defaults below `state_dir` for the
    /// rest; the database is migrated.
    pub async fn from_env(state_dir: &Path) -> Result<Self, StoreError> {
        let config = Config::from_env().map_err(ServicesError::from)?;
        Ok(Self::production(&config, state_dir).await?)
    }

    /// The services a configuration names (what [`Services::from_env`] does after reading
    /// the configuration), with the richer error type.
    pub async fn production(config: &Config, state_dir: &Path) -> Result<Self, ServicesError> {
        let needs_secrets = matches!(
            config.database.as_ref().map(|d| &d.source),
            Some(DatabaseSource::Secret(_))
        ) || matches!(
            config.mlflow.as_ref().map(|m| &m.credentials),
            Some(MlflowCredentials::Secret(_))
        );
        let secrets = if needs_secrets {
            Some(SecretsClient::new(&config.aws).await)
        } else {
            None
        };
        // MLflow runs with an s3:// artifact root need S3 even when the artifact store is local.
        let s3 = if config.artifacts.is_some() || config.mlflow.is_some() {
            Some(s3_client(&config.aws).await)
        } else {
            None
        };
        let mut description = Vec::new();

        let database: DatabasePorts = match &config.database {
            Some(database) => {
                let settings = postgres_settings(database, secrets.as_ref()).await?;
                let store = Arc::new(PostgresStore::connect(&settings).await?);
                store.migrate().await?;
                description.push((
                    "records, users, predictions, outcomes, jobs",
                    format!(
                        "PostgreSQL {} (sslmode {})",
                        settings.description,
                        settings.sslmode.as_str()
                    ),
                ));
                DatabasePorts::of(store)
            }
            None => {
                let database = local_dir(state_dir)?.join("fraudrisk.sqlite3");
                let store = Arc::new(SqliteStore::open(&database)?);
                store.migrate().await?;
                description.push((
                    "records, users, predictions, outcomes, jobs",
                    format!("SQLite {}", database.display()),
                ));
                DatabasePorts::of(store)
            }
        };
        let DatabasePorts {
            records,
            users,
            predictions,
            outcomes,
            jobs,
        } = database;

        let artifacts: Arc<dyn ArtifactStore> = match (&config.artifacts, &s3) {
            (Some(settings), Some(client)) => {
                let store =
                    S3ArtifactStore::new(client.clone(), &settings.bucket, &settings.prefix);
                description.push(("artifacts", format!("S3 {}", store.location())));
                Arc::new(store)
            }
            _ => {
                let folder = local_dir(state_dir)?.join("artifacts");
                description.push(("artifacts", format!("folder {}", folder.display())));
                Arc::new(LocalArtifactStore::new(&folder))
            }
        };

        let tracker: Arc<dyn Tracker> = match &config.mlflow {
            Some(mlflow) => {
                let auth = match (&mlflow.credentials, &secrets) {
                    (MlflowCredentials::None, _) => MlflowAuth::None,
                    (MlflowCredentials::Basic { username, password }, _) => MlflowAuth::Basic {
                        username: username.clone(),
                        password: password.clone(),
                    },
                    (MlflowCredentials::Secret(id), Some(client)) => MlflowAuth::Secret {
                        client: client.clone(),
                        secret_id: id.clone(),
                    },
                    (MlflowCredentials::Secret(id), None) => {
                        return Err(SecretError::new(id, "no Secrets Manager client").into())
                    }
                };
                let tracker = MlflowTracker::new(mlflow, auth, s3.clone())?;
                description.push((
                    "tracking and registry",
                    format!("MLflow {}", tracker.tracking_uri()),
                ));
                Arc::new(tracker)
            }
            None => {
                let folder = local_dir(state_dir)?.join("tracking");
                description.push((
                    "tracking and registry",
                    format!("folder {}", folder.display()),
                ));
                Arc::new(LocalTracker::new(&folder))
            }
        };

        Ok(Services {
            records,
            users,
            predictions,
            outcomes,
            jobs,
            artifacts,
            tracker,
            description,
        })
    }

    /// The embedded defaults: SQLite and folders below `state_dir`, migrated and ready.
    pub async fn local(state_dir: &Path) -> Result<Self, StoreError> {
        Ok(Self::production(&Config::default(), state_dir).await?)
    }
}

/// The ports one database serves.
struct DatabasePorts {
    records: Arc<dyn RecordStore>,
    users: Arc<dyn UserStore>,
    predictions: Arc<dyn PredictionLog>,
    outcomes: Arc<dyn OutcomeStore>,
    jobs: Arc<dyn JobStore>,
}

impl DatabasePorts {
    fn of<S>(store: Arc<S>) -> Self
    where
        S: RecordStore + UserStore + PredictionLog + OutcomeStore + JobStore + 'static,
    {
        DatabasePorts {
            records: store.clone(),
            users: store.clone(),
            predictions: store.clone(),
            outcomes: store.clone(),
            jobs: store,
        }
    }
}

/// The state folder, created on first use (only when some port is local).
fn local_dir(state_dir: &Path) -> Result<PathBuf, StoreError> {
    std::fs::create_dir_all(state_dir)
        .map_err(|e| StoreError::from_source("create state folder", e))?;
    Ok(state_dir.to_path_buf())
}

/// Connection settings from the URL or the secret, with the explicit overrides applied.
pub async fn postgres_settings(
    database: &DatabaseConfig,
    secrets: Option<&SecretsClient>,
) -> Result<PostgresSettings, ServicesError> {
    let mut settings = match (&database.source, secrets) {
        (DatabaseSource::Url(url), _) => PostgresSettings::from_url(url.expose())?,
        (DatabaseSource::Secret(id), Some(client)) => {
            let mut secret = client.database_secret(id).await?;
            // RDS Proxy: the proxy's endpoint, the database's credentials.
            if let Some(host) = &database.host_override {
                secret.host = host.clone();
            }
            PostgresSettings::from_secret(&secret, database.default_dbname.as_deref())
        }
        (DatabaseSource::Secret(id), None) => {
            return Err(SecretError::new(id, "no Secrets Manager client").into())
        }
    };
    if let Some(mode) = database.sslmode {
        settings.sslmode = mode;
    }
    if database.ca_file.is_some() {
        settings.ca_file = database.ca_file.clone();
    }
    settings.pool_size = database.pool_size;
    if settings.config.get_connect_timeout().is_none() {
        settings.config.connect_timeout(database.connect_timeout);
    }
    Ok(settings)
}
