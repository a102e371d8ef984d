//! The retrain's training window from the environment: how many rows, or how many months of
//! loaded rows, a retrain trains on (default: all).

use super::{ConfigError, Settings};
use crate::pipeline::TrainingWindow;

/// Variable: a retrain trains on at most this many rows, the most recently loaded.
pub const ENV_TRAINING_WINDOW_ROWS: &str = "FRAUDRISK_TRAINING_WINDOW_ROWS";
/// Variable: a retrain trains only on rows loaded in the last this many months.
pub const ENV_TRAINING_WINDOW_MONTHS: &str = "FRAUDRISK_TRAINING_WINDOW_MONTHS";

/// The window: each variable when set (a whole number >= 1, or `all`), else no limit.
pub fn training_window(settings: &Settings) -> Result<TrainingWindow, ConfigError> {
    Ok(TrainingWindow {
        rows: limit(settings, ENV_TRAINING_WINDOW_ROWS, 1_000)?,
        months: limit(settings, ENV_TRAINING_WINDOW_MONTHS, 1)?
            .map(|m| u32::try_from(m).unwrap_or(u32::MAX)),
    })
}

fn limit(
    settings: &Settings,
    variable: &'static str,
    least: usize,
) -> Result<Option<usize>, ConfigError> {
    let Some(text) = settings.get(variable) else {
        return Ok(None);
    };
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    match text.parse::<usize>() {
        Ok(value) if value >= least => Ok(Some(value)),
        _ => Err(ConfigError::invalid(
            variable,
            format!("must be `all` or a whole number >= {least} (got {text:?})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_or_all_is_no_limit_and_numbers_are_read() {
        let none = Settings::from_pairs::<&str, &str>([]);
        assert_eq!(training_window(&none).unwrap(), TrainingWindow::default());
        let all = Settings::from_pairs([
            (ENV_TRAINING_WINDOW_ROWS, "all"),
            (ENV_TRAINING_WINDOW_MONTHS, " ALL "),
        ]);
        assert_eq!(training_window(&all).unwrap(), TrainingWindow::default());
        let set = Settings::from_pairs([
            (ENV_TRAINING_WINDOW_ROWS, "200000"),
            (ENV_TRAINING_WINDOW_MONTHS, " 12 "),
        ]);
        assert_eq!(
            training_window(&set).unwrap(),
            TrainingWindow {
                rows: Some(200_000),
                months: Some(12)
            }
        );
    }

    #[test]
    fn bad_values_name_the_variable_and_rule() {
        for (variable, value, rule) in [
            (ENV_TRAINING_WINDOW_ROWS, "999", ">= 1000"),
            (ENV_TRAINING_WINDOW_ROWS, "-5", ">= 1000"),
            (ENV_TRAINING_WINDOW_MONTHS, "0", ">= 1"),
            (ENV_TRAINING_WINDOW_MONTHS, "1.5", ">= 1"),
        ] {
            let error = training_window(&Settings::from_pairs([(variable, value)])).unwrap_err();
            let message = error.to_string();
            assert!(message.contains(variable), "{message}");
            assert!(message.contains(rule), "{message}");
        }
    }
}
