//! The `authorizer` function: an API Gateway HTTP API Lambda authorizer (payload format 2.0,
//! simple responses) that checks HTTP Basic credentials against the same argon2id users, with
//! the same verifier, credential cache and hashing pool as the API functions.
//!
//! API Gateway caches its answer per `Authorization` header (the template's
//! `AuthorizerCacheTtlSeconds`), for every container of every function behind it, and hands
//! the allowed user to the functions as `requestContext.authorizer.lambda.username`, which
//! they trust ([`super::lambda::authorizer_username`]): a warm API container hashes nothing.
//!
//! Answers: `{"isAuthorized": true, "context": {"username": ...}}` for a known user with that
//! password; `{"isAuthorized": false, "context": {}}` for a missing, malformed, unknown or
//! wrong credential (API Gateway then answers 403 itself) and, without hashing, once a
//! client address has used up its failed logins. A failing user store, or every hashing
//! thread busy, fails the invocation: API Gateway answers 500 and caches nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use serde_json::{json, Value};

use super::lambda::{state_dir, AUTHORIZER_USERNAME};
use super::{AppConfig, AppError, LoginKey, LoginLimiter};
use crate::auth::{parse_basic_authorization, Authenticator, HashPool, VerifyError};
use crate::ports::{StoreError, UserStore};
use crate::services::Services;

/// Why an authorizer invocation failed (API Gateway answers 500; nothing is cached).
#[derive(Debug, thiserror::Error)]
pub enum AuthorizerError {
    /// Not an HTTP API authorizer event of payload format 2.0.
    #[error("not an API Gateway HTTP API authorizer event (payload format 2.0): {0}")]
    BadEvent(String),
    /// The user store could not be read.
    #[error("the user store failed: {0}")]
    Store(#[from] StoreError),
    /// Every hashing thread stayed busy for the whole queue wait.
    #[error("every password-hashing thread stayed busy; retry in a moment")]
    Busy,
    /// The answer could not be serialised.
    #[error("cannot encode the answer: {0}")]
    Encode(String),
}

/// Why a request was refused (logged, never sent: API Gateway only sees `false`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization` header (API Gateway itself answers 401 before calling).
    Missing,
    /// Not `Basic base64(user:password)`.
    Malformed,
    /// Unknown user or wrong password (the same cost and answer for both).
    WrongCredentials,
    /// This client address used up its failed logins; nothing was hashed.
    TooManyFailures,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing credentials",
            Refusal::Malformed => "malformed credentials",
            Refusal::WrongCredentials => "wrong credentials",
            Refusal::TooManyFailures => "too many failed logins from this address",
        }
    }
}

/// The authorizer's decision on one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A known user with that password.
    Allow { username: String },
    /// Anything else.
    Deny(Refusal),
}

/// The state of one authorizer container: the verifier with its cache and hashing pool, and
/// the failed-login counts per client address.
pub struct Authorizer {
    auth: Authenticator,
    logins: LoginLimiter,
    invocations: AtomicU64,
}

impl Authorizer {
    /// Over a user store, with the cache lifetime, hashing threads and queue wait of `config`.
    pub fn new(users: Arc<dyn UserStore>, config: &AppConfig) -> Result<Self, AppError> {
        let pool = HashPool::new(config.hash_threads, config.login_queue_wait)?;
        Ok(Authorizer {
            auth: Authenticator::new(users, config.auth_cache_ttl, pool),
            logins: LoginLimiter::default(),
            invocations: AtomicU64::new(0),
        })
    }

    /// The container's authorizer: the user store the environment configures (PostgreSQL
    /// in AWS, as for the API functions; SQLite below the state folder otherwise) and
    /// `FRAUDRISK_AUTH_CACHE_SECS`.
    pub async fn from_env() -> Result<Self, AppError> {
        let config = AppConfig::from_env(state_dir())?;
        let services = Services::from_env(&config.state_dir).await?;
        Authorizer::new(services.users, &config)
    }

    /// How many argon2 checks this container has started (cache misses).
    pub fn password_checks(&self) -> u64 {
        self.auth.password_checks()
    }

    /// Decides on one request's `Authorization` value, from the client at `address`.
    ///
    /// Failed logins count per client address only: API Gateway caches a refusal under the
    /// header, so a per-user limit would let anyone lock a user out for the cache's lifetime.
    pub async fn decide(
        &self,
        authorization: Option<&str>,
        address: Option<&str>,
    ) -> Result<Decision, AuthorizerError> {
        let Some(header) = authorization else {
            return Ok(Decision::Deny(Refusal::Missing));
        };
        let Some((username, password)) = parse_basic_authorization(header) else {
            return Ok(Decision::Deny(Refusal::Malformed));
        };
        if self.auth.is_cached(&username, &password) {
            return Ok(Decision::Allow { username });
        }
        let keys: Vec<LoginKey> = address
            .map(|a| LoginKey::Address(a.to_string()))
            .into_iter()
            .collect();
        if self.logins.retry_after(&keys).is_some() {
            return Ok(Decision::Deny(Refusal::TooManyFailures));
        }
        match self.auth.verify(&username, &password).await {
            Ok(true) => Ok(Decision::Allow { username }),
            Ok(false) => {
                self.logins.record_failure(&keys);
                Ok(Decision::Deny(Refusal::WrongCredentials))
            }
            Err(VerifyError::Busy) => Err(AuthorizerError::Busy),
            Err(VerifyError::Store(error)) => Err(error.into()),
        }
    }

    /// One invocation: the event in, the simple response out. Logs the decision (never the
    /// password).
    pub async fn answer(&self, payload: Value) -> Result<Value, AuthorizerError> {
        let number = self.invocations.fetch_add(1, Ordering::Relaxed) + 1;
        let event: ApiGatewayV2CustomAuthorizerV2Request = serde_json::from_value(payload)
            .map_err(|e| AuthorizerError::BadEvent(e.to_string()))?;
        let authorization = authorization(&event);
        let address = event.request_context.http.source_ip.as_deref();
        let route = event.route_key.as_deref().unwrap_or("");
        let checks_before = self.password_checks();
        let decision = self
            .decide(authorization.as_deref(), address)
            .await
            .inspect_err(|error| tracing::error!(%error, route, "authorizer failed"))?;
        let hashed = self.password_checks() > checks_before;
        let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::<Value>::default();
        match &decision {
            Decision::Allow { username } => {
                tracing::info!(
                    username,
                    route,
                    hashed,
                    invocation = number,
                    "authorizer allowed"
                );
                response.is_authorized = true;
                response.context = json!({ AUTHORIZER_USERNAME: username });
            }
            Decision::Deny(refusal) => {
                tracing::info!(
                    reason = refusal.as_str(),
                    route,
                    hashed,
                    invocation = number,
                    "authorizer refused"
                );
                response.is_authorized = false;
                response.context = json!({});
            }
        }
        serde_json::to_value(&response).map_err(|e| AuthorizerError::Encode(e.to_string()))
    }
}

/// The request's `Authorization` header, else the first identity source (the template's
/// identity source is that header).
fn authorization(event: &ApiGatewayV2CustomAuthorizerV2Request) -> Option<String> {
    event
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            event
                .identity_source
                .as_ref()
                .and_then(|sources| sources.first().cloned())
        })
        .filter(|value| !value.trim().is_empty())
}
