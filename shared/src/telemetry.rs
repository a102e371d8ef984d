//! Tracing set-up, in one place for the Lambda functions, `fraudctl` and the tests.
//!
//! - [`init_lambda`]: what the Lambda runtime's own set-up does with its advanced logging
//!   controls: the level from `AWS_LAMBDA_LOG_LEVEL` (TRACE, DEBUG, INFO, WARN, ERROR; FATAL
//!   counts as ERROR, which is `tracing`'s highest), the format from `AWS_LAMBDA_LOG_FORMAT`
//!   (`JSON` or `Text`); `RUST_LOG` still wins over the level. Without a format, JSON lines
//!   (this project's choice for CloudWatch, kept from before the controls existed).
//! - [`init_cli`]: readable lines on standard error, `RUST_LOG` else a default level, plus
//!   the caller's own layer (`fraudctl`'s progress bars).
//! - [`init_test`]: lines captured with each test's output.
//!
//! A second call keeps the first subscriber (several tests, or a binary calling twice).

use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::config::LogSettings;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object a line, with the request span's fields (its request id) in each.
    Json,
    /// `tracing`'s readable lines, without time (CloudWatch stamps each line) or colours.
    Text,
}

/// The filter and format of a Lambda function.
#[derive(Debug)]
pub struct LambdaLogging {
    pub filter: EnvFilter,
    pub format: LogFormat,
}

impl LambdaLogging {
    /// `RUST_LOG` when it parses, else Lambda's level, else `info`; Lambda's format, else
    /// JSON.
    pub fn from_settings(settings: &LogSettings) -> Self {
        let filter = settings
            .rust_log
            .as_deref()
            .and_then(|directives| EnvFilter::try_new(directives).ok())
            .or_else(|| {
                settings
                    .lambda_level
                    .as_deref()
                    .and_then(lambda_level_directive)
                    .and_then(|level| EnvFilter::try_new(level).ok())
            })
            .unwrap_or_else(|| EnvFilter::new("info"));
        let format = match settings.lambda_format.as_deref() {
            Some(format) if format.trim().eq_ignore_ascii_case("text") => LogFormat::Text,
            _ => LogFormat::Json,
        };
        LambdaLogging { filter, format }
    }
}

/// Lambda's level name as a `tracing` level (FATAL has no equivalent: ERROR).
fn lambda_level_directive(level: &str) -> Option<&'static str> {
    match level.trim().to_ascii_lowercase().as_str() {
        "trace" => Some("trace"),
        "debug" => Some("debug"),
        "info" => Some("info"),
        "warn" => Some("warn"),
        "error" | "fatal" => Some("error"),
        _ => None,
    }
}

/// Logs of a Lambda function, on standard output (CloudWatch).
pub fn init_lambda() {
    let logging = LambdaLogging::from_settings(&LogSettings::from_env());
    let lines = match logging.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_target(false)
            // The request span carries the request id into every line of a request.
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_target(false)
            .without_time()
            .with_ansi(false)
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(lines.with_filter(logging.filter))
        .try_init();
}

/// Logs of a command-line tool on standard error (`RUST_LOG`, else `default_filter`), beside
/// `extra` (a layer with its own filter, e.g. progress bars; `None` for none).
pub fn init_cli<L>(default_filter: &str, extra: Option<L>)
where
    L: Layer<Registry> + Send + Sync + 'static,
{
    let filter = LogSettings::from_env()
        .rust_log
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new(default_filter));
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let _ = tracing_subscriber::registry()
        .with(extra)
        .with(lines)
        .try_init();
}

/// Logs of tests, captured with each test's output (`RUST_LOG`, else `warn`).
pub fn init_test() {
    let filter = LogSettings::from_env()
        .rust_log
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(filter)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logging(rust_log: Option<&str>, level: Option<&str>, format: Option<&str>) -> LambdaLogging {
        LambdaLogging::from_settings(&LogSettings {
            rust_log: rust_log.map(str::to_string),
            lambda_level: level.map(str::to_string),
            lambda_format: format.map(str::to_string),
        })
    }

    #[test]
    fn lambdas_level_and_format_are_honoured() {
        let chosen = logging(None, Some("DEBUG"), Some("Text"));
        assert_eq!(chosen.format, LogFormat::Text);
        assert_eq!(chosen.filter.to_string(), "debug");
        assert_eq!(
            logging(None, Some("FATAL"), None).filter.to_string(),
            "error"
        );
        assert_eq!(logging(None, Some("WARN"), None).filter.to_string(), "warn");
        assert_eq!(
            logging(None, Some("TRACE"), None).filter.to_string(),
            "trace"
        );
        assert_eq!(logging(None, None, Some("json")).format, LogFormat::Json);
    }

    #[test]
    fn rust_log_wins_and_defaults_are_info_and_json() {
        let chosen = logging(Some("fraudrisk=debug"), Some("ERROR"), None);
        assert_eq!(chosen.filter.to_string(), "fraudrisk=debug");
        assert_eq!(chosen.format, LogFormat::Json);
        let chosen = logging(None, None, None);
        assert_eq!(chosen.filter.to_string(), "info");
        assert_eq!(chosen.format, LogFormat::Json);
        // An unusable RUST_LOG falls back to Lambda's level, an unknown level to info.
        assert_eq!(
            logging(Some("[["), Some("ERROR"), None).filter.to_string(),
            "error"
        );
        assert_eq!(logging(None, Some("LOUD"), None).filter.to_string(), "info");
    }
}
