//! Settings of the process itself, read from its environment alone (the credentials file is
//! for the ports): the local state folder, the HTTP layer's intervals, the mode of scheduled
//! retrains without one, and logging. Every read of the process environment in the crate
//! goes through this module or [`Settings::from_process`](super::Settings::from_process).

use std::path::PathBuf;
use std::time::Duration;

use super::ConfigError;

/// Environment variable: local state folder.
pub const ENV_STATE_DIR: &str = "FRAUDRISK_STATE_DIR";
/// Environment variable: seconds between champion pointer checks.
pub const ENV_CHAMPION_RECHECK: &str = "FRAUDRISK_CHAMPION_RECHECK_SECS";
/// Environment variable: seconds a verified credential pair is trusted.
pub const ENV_AUTH_CACHE: &str = "FRAUDRISK_AUTH_CACHE_SECS";
/// Environment variable: the mode of scheduled retrains without a mode in the event.
pub const ENV_RETRAIN_MODE: &str = "RETRAIN_MODE";
/// Environment variable: seconds a training job may stay queued or running before it reads
/// as failed (`timed_out`).
pub const ENV_JOB_TIMEOUT: &str = "FRAUDRISK_JOB_TIMEOUT_SECS";
/// Environment variable: the Lambda function a training job is sent to (asynchronous
/// invocation); the running function itself when unset.
pub const ENV_JOB_FUNCTION: &str = "FRAUDRISK_JOB_FUNCTION";
/// Environment variable: the Lambda API endpoint for job invocations (`cargo lambda watch`
/// locally); the general `AWS_ENDPOINT_URL`, else AWS, when unset.
pub const ENV_LAMBDA_ENDPOINT: &str = "AWS_ENDPOINT_URL_LAMBDA";
/// Environment variable: the `tracing` filter; wins over Lambda's log level.
pub const ENV_RUST_LOG: &str = "RUST_LOG";
/// Environment variable: Lambda's log level (advanced logging controls).
pub const ENV_LAMBDA_LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";
/// Environment variable: Lambda's log format, `JSON` or `Text` (advanced logging controls).
pub const ENV_LAMBDA_LOG_FORMAT: &str = "AWS_LAMBDA_LOG_FORMAT";

/// A variable's value; unset and non-Unicode values alike count as absent.
pub(super) fn var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The whole environment (non-Unicode entries left out), for [`super::Settings`].
pub(super) fn vars() -> impl Iterator<Item = (String, String)> {
    std::env::vars()
}

/// [`ENV_STATE_DIR`], when set (any bytes: it is a path).
pub fn state_dir() -> Option<PathBuf> {
    std::env::var_os(ENV_STATE_DIR).map(PathBuf::from)
}

/// A whole number of seconds from `name`, when set.
pub fn seconds(name: &'static str) -> Result<Option<Duration>, ConfigError> {
    match var(name) {
        Some(text) => text
            .trim()
            .parse::<u64>()
            .map(|s| Some(Duration::from_secs(s)))
            .map_err(|e| ConfigError::Invalid {
                variable: name,
                message: format!("must be a whole number of seconds (got {text:?})"),
                source: Some(Box::new(e)),
            }),
        None => Ok(None),
    }
}

/// Environment variable the Lambda runtime sets to the function's name.
pub const ENV_LAMBDA_FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// True inside AWS Lambda (or `cargo lambda watch`), where standard output is CloudWatch Logs.
pub fn running_in_lambda() -> bool {
    var(ENV_LAMBDA_FUNCTION_NAME).is_some()
}

/// [`ENV_RETRAIN_MODE`], unparsed (the pipeline decides what is valid), when set.
pub fn retrain_mode() -> Option<String> {
    var(ENV_RETRAIN_MODE)
}

/// What decides the log filter and format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogSettings {
    /// [`ENV_RUST_LOG`]: an `EnvFilter` directive string.
    pub rust_log: Option<String>,
    /// [`ENV_LAMBDA_LOG_LEVEL`]: TRACE, DEBUG, INFO, WARN, ERROR or FATAL.
    pub lambda_level: Option<String>,
    /// [`ENV_LAMBDA_LOG_FORMAT`]: JSON or Text.
    pub lambda_format: Option<String>,
}

impl LogSettings {
    /// From the process environment.
    pub fn from_env() -> Self {
        LogSettings {
            rust_log: var(ENV_RUST_LOG),
            lambda_level: var(ENV_LAMBDA_LOG_LEVEL),
            lambda_format: var(ENV_LAMBDA_LOG_FORMAT),
        }
    }
}

/// [`ENV_JOB_FUNCTION`], else [`ENV_LAMBDA_FUNCTION_NAME`] (the function invokes itself).
pub fn job_function() -> Option<String> {
    var(ENV_JOB_FUNCTION)
        .filter(|name| !name.trim().is_empty())
        .or_else(|| var(ENV_LAMBDA_FUNCTION_NAME))
}

/// [`ENV_LAMBDA_ENDPOINT`], when set.
pub fn lambda_endpoint() -> Option<String> {
    var(ENV_LAMBDA_ENDPOINT).filter(|url| !url.trim().is_empty())
}
