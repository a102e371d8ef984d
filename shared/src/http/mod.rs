//! The HTTP API: one axum [`Router`](router::router) over the endpoints, served by the
//! Lambda functions (see [`lambda`]) and by `fraudctl serve` alike.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /hello` | `{"message": "hello", "champion_version": N or null}` |
//! | `POST /initialtrain` | 202 with a job id (`?wait=true`: 200 with the training summary) |
//! | `POST /retrain` | 202 with a job id (`?wait=true`: 200 with the retrain summary); `mode` = `always` (default) or `if-drift`, in the query or a JSON body |
//! | `GET /jobs/{job_id}` | a training job: `queued`, `running`, `succeeded` with the summary, `failed` with the error |
//! | `GET /predict?<20 fields>` | one prediction; an HTML page for browsers (`Accept: text/html`) |
//! | `POST /predict` | one prediction for a JSON object, `{"predictions": [...]}` for `{"records": [...]}` |
//! | `POST /outcomes` | what became of each reported outcome (`recorded`, `unchanged`, `conflict`, ...) |
//!
//! Every route needs HTTP Basic credentials of a user in the store. Requests are checked in
//! this order, so the cheapest refusal comes first and nothing is stored for a refused
//! request: protocol limits (414, 431), credentials (401, 429, 503; before the body is
//! read), body size (413), route (404), method (405), content type (415), JSON syntax (400),
//! fields (422, all at once), model (503), then the work (408 past its timeout).
//!
//! The state of a container ([`App`]) is built once: the services, the authenticator with its
//! credential cache and hashing pool, the failed-login limiter, the pipeline settings and the
//! champion cache.

mod answer;
pub mod champion;
pub mod error;
mod handlers;
pub mod html;
pub mod jobs;
mod jobs_openapi;
pub mod lambda;
pub mod lambda_authorizer;
pub mod lambda_jobs;
pub mod lambda_monitor;
pub mod login;
mod monitor;
pub mod openapi;
mod openapi_responses;
mod outcomes;
pub mod prediction_log;
pub mod router;
mod strict_json;

use std::path::PathBuf;
use std::time::Duration;

use http::HeaderMap;

use crate::auth::{
    parse_basic_authorization, AuthError, Authenticator, HashPool, VerifyError, DEFAULT_CACHE_TTL,
};
use crate::config::ConfigError;
use crate::pipeline::PipelineSettings;
use crate::ports::StoreError;
use crate::services::Services;

pub use champion::ChampionCache;
pub use error::{ApiError, BROKEN_CHAMPION_HINT, NO_MODEL_HINT, REALM};
pub use login::{LoginKey, LoginLimiter};
pub use prediction_log::PredictionSink;
pub use router::{router, User};

/// Largest request body accepted (413 above it): room for a full batch of
/// [`crate::request::MAX_BATCH`] applicants, pretty-printed (about 700 bytes each).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How many feature contributions an answer explains.
pub const TOP_CONTRIBUTIONS: usize = 5;
/// How long reading a request body may take (408 beyond it).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a login waits for a free hashing thread before 503.
pub const LOGIN_QUEUE_WAIT: Duration = Duration::from_secs(2);
/// How often a container re-reads the champion pointer.
pub const DEFAULT_CHAMPION_RECHECK: Duration = Duration::from_secs(30);

// The environment variables this layer reads (through `config`, the one place that reads
// the environment).
pub use crate::config::{ENV_AUTH_CACHE, ENV_CHAMPION_RECHECK, ENV_STATE_DIR};

/// The four endpoints of the seed, and the outcomes and monitor routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /hello`.
    Hello,
    /// `POST /initialtrain`.
    InitialTrain,
    /// `POST /retrain`.
    Retrain,
    /// `GET /predict` and `POST /predict`.
    Predict,
    /// `POST /outcomes`.
    Outcomes,
    /// `POST /monitor`.
    Monitor,
    /// `GET /jobs/{job_id}`.
    Jobs,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 7] = [
        Endpoint::Hello,
        Endpoint::InitialTrain,
        Endpoint::Retrain,
        Endpoint::Predict,
        Endpoint::Outcomes,
        Endpoint::Monitor,
        Endpoint::Jobs,
    ];

    /// The route's path as the router and the OpenAPI document write it.
    pub fn route(self) -> &'static str {
        match self {
            Endpoint::Jobs => "/jobs/{job_id}",
            Endpoint::Hello => "/hello",
            Endpoint::InitialTrain => "/initialtrain",
            Endpoint::Retrain => "/retrain",
            Endpoint::Predict => "/predict",
            Endpoint::Outcomes => "/outcomes",
            Endpoint::Monitor => "/monitor",
        }
    }

    /// The route's name: its first path segment, and for all but `jobs` (served by the
    /// `hello` function) the Lambda function's name.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Hello => "hello",
            Endpoint::InitialTrain => "initialtrain",
            Endpoint::Retrain => "retrain",
            Endpoint::Predict => "predict",
            Endpoint::Outcomes => "outcomes",
            Endpoint::Monitor => "monitor",
            Endpoint::Jobs => "jobs",
        }
    }

    /// The value of the `Allow` header.
    pub fn allow(self) -> &'static str {
        match self {
            Endpoint::Hello | Endpoint::Jobs => "GET",
            Endpoint::InitialTrain | Endpoint::Retrain | Endpoint::Outcomes | Endpoint::Monitor => {
                "POST"
            }
            Endpoint::Predict => "GET, POST",
        }
    }
}

/// Why the app state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// An environment setting is malformed.
    #[error("invalid setting {name}: {message}")]
    Config { name: &'static str, message: String },
    /// The store could not be opened or migrated.
    #[error("cannot open the services: {0}")]
    Store(#[from] StoreError),
    /// The authenticator's dummy hash could not be made.
    #[error("cannot set up authentication: {0}")]
    Auth(#[from] AuthError),
    /// The password-hashing threads could not be started.
    #[error("cannot start the password-hashing threads: {0}")]
    Threads(#[from] std::io::Error),
}

/// Settings of the HTTP layer.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// Local state folder (SQLite, artifacts, tracking) for the embedded adapters.
    pub state_dir: PathBuf,
    /// How long a verified credential pair is trusted without asking the store.
    pub auth_cache_ttl: Duration,
    /// How often the champion pointer is re-read.
    pub champion_recheck: Duration,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How long reading a request body may take.
    pub body_read_timeout: Duration,
    /// Threads verifying passwords (argon2id, 19 MiB each) at once.
    pub hash_threads: usize,
    /// How long a login waits for a hashing thread before 503.
    pub login_queue_wait: Duration,
    /// Log predictions from a background writer (long-running servers) instead of within
    /// the request (Lambda).
    pub background_log: bool,
    /// The life-cycle settings used by the training endpoints.
    pub pipeline: PipelineSettings,
    /// How long a training job may stay queued or running before it reads as failed.
    pub job_timeout: Duration,
    /// Take the user API Gateway's Lambda authorizer put in the request context instead of
    /// checking the password again (the Lambda functions; never `fraudctl serve`).
    pub trust_authorizer: bool,
}

impl AppConfig {
    /// The defaults over a state folder.
    pub fn new(state_dir: PathBuf) -> Self {
        AppConfig {
            state_dir,
            auth_cache_ttl: DEFAULT_CACHE_TTL,
            champion_recheck: DEFAULT_CHAMPION_RECHECK,
            max_body_bytes: MAX_BODY_BYTES,
            body_read_timeout: BODY_READ_TIMEOUT,
            hash_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            login_queue_wait: LOGIN_QUEUE_WAIT,
            background_log: false,
            pipeline: PipelineSettings::default(),
            job_timeout: crate::jobs::DEFAULT_JOB_TIMEOUT,
            trust_authorizer: false,
        }
    }

    /// The defaults, with the intervals overridden by [`ENV_CHAMPION_RECHECK`] and
    /// [`ENV_AUTH_CACHE`] when set.
    pub fn from_env(state_dir: PathBuf) -> Result<Self, AppError> {
        let mut config = AppConfig::new(state_dir);
        if let Some(seconds) = env_seconds(ENV_CHAMPION_RECHECK)? {
            config.champion_recheck = seconds;
        }
        if let Some(seconds) = env_seconds(ENV_AUTH_CACHE)? {
            config.auth_cache_ttl = seconds;
        }
        if let Some(seconds) = env_seconds(crate::config::ENV_JOB_TIMEOUT)? {
            config.job_timeout = seconds;
        }
        // The training endpoints' cost matrix, from the environment or credentials.env.
        let settings = crate::config::Settings::from_process()
            .map_err(|e| app_config_error(e, crate::config::CREDENTIALS_FILE_VAR))?;
        config.pipeline.training.costs = crate::config::cost_matrix(&settings)
            .map_err(|e| app_config_error(e, crate::config::ENV_COST_FALSE_NEGATIVE))?;
        config.pipeline.training.review_below = crate::config::review_below(&settings)
            .map_err(|e| app_config_error(e, crate::config::ENV_REVIEW_BELOW))?;
        config.pipeline.training.calibration = crate::config::calibration(&settings)
            .map_err(|e| app_config_error(e, crate::config::ENV_CALIBRATION))?;
        config.pipeline.training.selection_rows = crate::config::selection_rows(&settings)
            .map_err(|e| app_config_error(e, crate::config::ENV_MODEL_SELECTION_ROWS))?;
        config.pipeline.promotion = crate::config::promotion_gate(&settings)
            .map_err(|e| app_config_error(e, crate::config::ENV_MARGIN_ROC_AUC))?;
        config.pipeline.training_window = crate::config::training_window(&settings)
            .map_err(|e| app_config_error(e, crate::config::ENV_TRAINING_WINDOW_ROWS))?;
        Ok(config)
    }
}

fn env_seconds(name: &'static str) -> Result<Option<Duration>, AppError> {
    crate::config::process::seconds(name).map_err(|error| app_config_error(error, name))
}

/// A configuration error as the app reports it, naming the variable (`fallback` when the
/// error names none).
fn app_config_error(error: ConfigError, fallback: &'static str) -> AppError {
    match error {
        ConfigError::Invalid {
            variable, message, ..
        } => AppError::Config {
            name: variable,
            message,
        },
        other => AppError::Config {
            name: fallback,
            message: other.to_string(),
        },
    }
}

/// The state of one container: built once, shared by every request.
pub struct App {
    services: Services,
    auth: Authenticator,
    logins: LoginLimiter,
    settings: PipelineSettings,
    champion: ChampionCache,
    log: PredictionSink,
    max_body_bytes: usize,
    body_read_timeout: Duration,
    job_timeout: Duration,
    job_dispatch: jobs::JobDispatch,
    trust_authorizer: bool,
}

impl App {
    /// Builds the state over the given services.
    pub async fn new(services: Services, config: &AppConfig) -> Result<Self, AppError> {
        let pool = HashPool::new(config.hash_threads, config.login_queue_wait)?;
        let auth = Authenticator::new(services.users.clone(), config.auth_cache_ttl, pool);
        let log = if config.background_log {
            PredictionSink::background(services.predictions.clone())
        } else {
            PredictionSink::inline(services.predictions.clone())
        };
        Ok(App {
            champion: ChampionCache::new(services.artifacts.clone(), config.champion_recheck),
            services,
            auth,
            logins: LoginLimiter::default(),
            settings: config.pipeline.clone(),
            log,
            max_body_bytes: config.max_body_bytes,
            body_read_timeout: config.body_read_timeout,
            job_timeout: config.job_timeout,
            job_dispatch: jobs::JobDispatch::Background,
            trust_authorizer: config.trust_authorizer,
        })
    }

    /// Builds the state over the services the environment configures
    /// ([`Services::from_env`] below `config.state_dir`).
    pub async fn from_config(config: &AppConfig) -> Result<Self, AppError> {
        let services = Services::from_env(&config.state_dir).await?;
        App::new(services, config).await
    }

    /// Who runs the training jobs (a background task unless set).
    pub fn with_job_dispatch(mut self, dispatch: jobs::JobDispatch) -> Self {
        self.job_dispatch = dispatch;
        self
    }

    /// The services behind the app.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Largest accepted request body; a server should stop reading beyond it.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// How long reading a request body may take.
    pub fn body_read_timeout(&self) -> Duration {
        self.body_read_timeout
    }

    /// True when the user named by API Gateway's Lambda authorizer is taken without a
    /// password check (see [`lambda::authorizer_username`]).
    pub fn trusts_authorizer(&self) -> bool {
        self.trust_authorizer
    }

    /// How many argon2 password checks this container has started.
    pub fn password_checks(&self) -> u64 {
        self.auth.password_checks()
    }

    /// The champion cache.
    pub fn champion(&self) -> &ChampionCache {
        &self.champion
    }

    /// Loads the champion now, so the first prediction does not pay for it. Before the
    /// first training there is nothing to load, which is fine.
    pub async fn warm_up(&self) {
        if let Some(version) = self.champion.version().await {
            tracing::info!(version, "champion ready");
        }
    }

    /// Writes what the background prediction log still holds. Call before exiting.
    pub async fn shutdown(&self) {
        self.log.shutdown().await;
    }

    /// The username of valid Basic credentials. A pair verified recently is answered from
    /// the cache; otherwise the failed-login limits are checked (429) before any hashing,
    /// and hashing waits a bounded time for a thread (503).
    /// `address` gives the client's address, asked for only when the credentials are not
    /// cached.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        address: impl FnOnce() -> Option<String>,
    ) -> Result<String, ApiError> {
        let header = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let (username, password) =
            parse_basic_authorization(header).ok_or(ApiError::Unauthorized)?;
        if self.auth.is_cached(&username, &password) {
            return Ok(username);
        }
        let mut keys = vec![LoginKey::User(username.clone())];
        keys.extend(address().map(LoginKey::Address));
        if let Some(wait) = self.logins.retry_after(&keys) {
            return Err(ApiError::TooManyLogins {
                retry_after: wait.as_secs().max(1),
            });
        }
        match self.auth.verify(&username, &password).await {
            Ok(true) => Ok(username),
            Ok(false) => {
                self.logins.record_failure(&keys);
                Err(ApiError::Unauthorized)
            }
            Err(VerifyError::Busy) => Err(ApiError::LoginsBusy),
            Err(VerifyError::Store(error)) => Err(error.into()),
        }
    }
}
