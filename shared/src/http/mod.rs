//! The HTTP API: one implementation of each endpoint over `http::Request<Bytes>` and
//! `http::Response<Bytes>`, used by the Lambda binaries (see [`lambda`]) and by
//! `fraudctl serve` alike.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /hello` | `{"message": "hello", "champion_version": N or null}` |
//! | `POST /initialtrain` | the training summary |
//! | `POST /retrain` | the retrain summary; `mode` = `always` (default) or `if-drift`, in the query or a JSON body |
//! | `GET /predict?<20 fields>` | one prediction; an HTML page for browsers (`Accept: text/html`) |
//! | `POST /predict` | one prediction for a JSON object, `{"predictions": [...]}` for `{"records": [...]}` |
//!
//! Every route needs HTTP Basic credentials of a user in the store. Requests are checked in
//! this order, so the cheapest refusal comes first and nothing is stored for a refused
//! request: body size (413), credentials (401), route (404), method (405), content type
//! (415), JSON syntax (400), fields (422, all at once), model (503), then the work.
//!
//! The state of a container ([`App`]) is built once: the services, the authenticator with its
//! credential cache, the pipeline settings and the champion cache.

pub mod champion;
pub mod error;
mod handlers;
pub mod html;
pub mod lambda;
pub mod prediction_log;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response};

use crate::auth::{parse_basic_authorization, AuthError, Authenticator, DEFAULT_CACHE_TTL};
use crate::pipeline::PipelineSettings;
use crate::ports::StoreError;
use crate::services::Services;

pub use champion::ChampionCache;
pub use error::{ApiError, NO_MODEL_HINT, REALM};
pub use prediction_log::PredictionSink;

/// Largest request body accepted (413 above it): room for a full batch of
/// [`crate::request::MAX_BATCH`] applicants, pretty-printed (about 700 bytes each).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How many feature contributions an answer explains.
pub const TOP_CONTRIBUTIONS: usize = 5;
/// How often a container re-reads the champion pointer.
pub const DEFAULT_CHAMPION_RECHECK: Duration = Duration::from_secs(30);

/// Environment variable: local state folder.
pub const ENV_STATE_DIR: &str = "FRAUDRISK_STATE_DIR";
/// Environment variable: seconds between champion pointer checks.
pub const ENV_CHAMPION_RECHECK: &str = "FRAUDRISK_CHAMPION_RECHECK_SECS";
/// Environment variable: seconds a verified credential pair is trusted.
pub const ENV_AUTH_CACHE: &str = "FRAUDRISK_AUTH_CACHE_SECS";

/// The four endpoints of the seed.
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
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 4] = [
        Endpoint::Hello,
        Endpoint::InitialTrain,
        Endpoint::Retrain,
        Endpoint::Predict,
    ];

    /// The route's name: its path without the slash, and the Lambda function's name.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Hello => "hello",
            Endpoint::InitialTrain => "initialtrain",
            Endpoint::Retrain => "retrain",
            Endpoint::Predict => "predict",
        }
    }

    /// The value of the `Allow` header.
    pub fn allow(self) -> &'static str {
        match self {
            Endpoint::Hello => "GET",
            Endpoint::InitialTrain | Endpoint::Retrain => "POST",
            Endpoint::Predict => "GET, POST",
        }
    }

    /// The endpoint of an exact path (`/predict`; a trailing slash is tolerated).
    pub fn from_path(path: &str) -> Option<Self> {
        let name = path.strip_prefix('/')?;
        let name = name.strip_suffix('/').unwrap_or(name);
        Endpoint::ALL.into_iter().find(|e| e.name() == name)
    }

    /// True when the path's last segment names this endpoint. Used behind API Gateway,
    /// which has routed the request already and may put a stage (`/prod/predict`) or an API
    /// mapping before the route.
    pub fn matches_suffix(self, path: &str) -> bool {
        path.trim_end_matches('/').rsplit('/').next() == Some(self.name())
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
    /// Log predictions from a background writer (long-running servers) instead of within
    /// the request (Lambda).
    pub background_log: bool,
    /// The life-cycle settings used by the training endpoints.
    pub pipeline: PipelineSettings,
}

impl AppConfig {
    /// The defaults over a state folder.
    pub fn new(state_dir: PathBuf) -> Self {
        AppConfig {
            state_dir,
            auth_cache_ttl: DEFAULT_CACHE_TTL,
            champion_recheck: DEFAULT_CHAMPION_RECHECK,
            max_body_bytes: MAX_BODY_BYTES,
            background_log: false,
            pipeline: PipelineSettings::default(),
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
        Ok(config)
    }
}

fn env_seconds(name: &'static str) -> Result<Option<Duration>, AppError> {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .map(|s| Some(Duration::from_secs(s)))
            .map_err(|_| AppError::Config {
                name,
                message: format!("must be a whole number of seconds (got {text:?})"),
            }),
        Err(_) => Ok(None),
    }
}

/// The state of one container: built once, shared by every request.
pub struct App {
    services: Services,
    auth: Authenticator,
    settings: PipelineSettings,
    champion: ChampionCache,
    log: PredictionSink,
    max_body_bytes: usize,
}

impl App {
    /// Builds the state over the given services.
    pub async fn new(services: Services, config: &AppConfig) -> Result<Self, AppError> {
        let auth = Authenticator::new(services.users.clone(), config.auth_cache_ttl);
        let log = if config.background_log {
            PredictionSink::background(services.predictions.clone())
        } else {
            PredictionSink::inline(services.predictions.clone())
        };
        Ok(App {
            champion: ChampionCache::new(services.artifacts.clone(), config.champion_recheck),
            services,
            auth,
            settings: config.pipeline.clone(),
            log,
            max_body_bytes: config.max_body_bytes,
        })
    }

    /// Builds the state over the services the environment configures
    /// ([`Services::from_env`] below `config.state_dir`).
    pub async fn from_config(config: &AppConfig) -> Result<Self, AppError> {
        let services = Services::from_env(&config.state_dir).await?;
        App::new(services, config).await
    }

    /// The services behind the app.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Largest accepted request body; a server should stop reading beyond it.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
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

    /// Answers a request whose path is one of the exact routes (`/predict`, ...).
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let route = Endpoint::from_path(request.uri().path());
        self.respond(route, request).await
    }

    /// Answers a request routed to `endpoint` by API Gateway: the path only needs to end
    /// with the endpoint's name, whatever stage or mapping precedes it.
    pub async fn handle_endpoint(
        &self,
        endpoint: Endpoint,
        request: Request<Bytes>,
    ) -> Response<Bytes> {
        let route = endpoint
            .matches_suffix(request.uri().path())
            .then_some(endpoint);
        self.respond(route, request).await
    }

    async fn respond(&self, route: Option<Endpoint>, request: Request<Bytes>) -> Response<Bytes> {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let response = match self.dispatch(route, request).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        };
        tracing::info!(
            %method,
            path,
            status = response.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "request"
        );
        response
    }

    async fn dispatch(
        &self,
        route: Option<Endpoint>,
        request: Request<Bytes>,
    ) -> Result<Response<Bytes>, ApiError> {
        if request.body().len() > self.max_body_bytes {
            return Err(ApiError::PayloadTooLarge {
                limit: self.max_body_bytes,
            });
        }
        let user = self.authenticate(&request).await?;
        let endpoint = route.ok_or_else(|| ApiError::NotFound(request.uri().path().to_string()))?;
        match (endpoint, request.method()) {
            (Endpoint::Hello, &Method::GET) => Ok(handlers::hello(self).await),
            (Endpoint::InitialTrain, &Method::POST) => {
                handlers::initial_train(self, &request).await
            }
            (Endpoint::Retrain, &Method::POST) => handlers::retrain(self, &request).await,
            (Endpoint::Predict, &Method::GET) => handlers::predict_get(self, &request, &user).await,
            (Endpoint::Predict, &Method::POST) => {
                handlers::predict_post(self, &request, &user).await
            }
            (endpoint, method) => Err(ApiError::MethodNotAllowed {
                method: method.to_string(),
                allow: endpoint.allow(),
            }),
        }
    }

    /// The username of valid Basic credentials.
    async fn authenticate(&self, request: &Request<Bytes>) -> Result<String, ApiError> {
        let header = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let (username, password) =
            parse_basic_authorization(header).ok_or(ApiError::Unauthorized)?;
        if self.auth.verify(&username, &password).await? {
            Ok(username)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_routes_and_suffixes() {
        assert_eq!(Endpoint::from_path("/predict"), Some(Endpoint::Predict));
        assert_eq!(Endpoint::from_path("/predict/"), Some(Endpoint::Predict));
        assert_eq!(Endpoint::from_path("/prod/predict"), None);
        assert_eq!(Endpoint::from_path("/"), None);
        assert!(Endpoint::Predict.matches_suffix("/prod/predict"));
        assert!(Endpoint::Predict.matches_suffix("/predict"));
        assert!(!Endpoint::Predict.matches_suffix("/prod/predict/extra"));
        assert!(!Endpoint::Hello.matches_suffix("/prod/predict"));
    }
}
