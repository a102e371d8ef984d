//! Training settings from the environment: the cost matrix the decision threshold minimises,
//! the optional review band below it, and the optional recalibration of the probabilities.

use super::{ConfigError, Settings};
use crate::model::{CalibrationMethod, CostMatrix};

/// Variable: the cost of a missed fraud (default 5).
pub const ENV_COST_FALSE_NEGATIVE: &str = "FRAUDRISK_COST_FALSE_NEGATIVE";
/// Variable: the cost of a false alarm (default 1).
pub const ENV_COST_FALSE_POSITIVE: &str = "FRAUDRISK_COST_FALSE_POSITIVE";

/// Variable: the lower end of the review band (unset: no band).
pub const ENV_REVIEW_BELOW: &str = "FRAUDRISK_REVIEW_BELOW";

/// Variable: `none` (default) or `platt`, the recalibration of the probabilities.
pub const ENV_CALIBRATION: &str = "FRAUDRISK_CALIBRATION";

/// Variable: the row cap of model selection (default 200,000; at least 1,000).
pub const ENV_MODEL_SELECTION_ROWS: &str = "FRAUDRISK_MODEL_SELECTION_ROWS";

/// Model selection's row cap ([`crate::model::TrainConfig::selection_rows`]): the default when
/// unset, else a whole number of at least [`crate::model::MIN_SELECTION_ROWS`].
pub fn selection_rows(settings: &Settings) -> Result<usize, ConfigError> {
    let Some(text) = settings.get(ENV_MODEL_SELECTION_ROWS) else {
        return Ok(crate::model::DEFAULT_SELECTION_ROWS);
    };
    match text.trim().replace('_', "").parse::<usize>() {
        Ok(rows) if rows >= crate::model::MIN_SELECTION_ROWS => Ok(rows),
        _ => Err(ConfigError::invalid(
            ENV_MODEL_SELECTION_ROWS,
            format!(
                "must be a whole number of rows, at least {} (got {text:?})",
                crate::model::MIN_SELECTION_ROWS
            ),
        )),
    }
}

/// The calibration method: `none` when unset, else `none` or `platt` (any case).
pub fn calibration(settings: &Settings) -> Result<CalibrationMethod, ConfigError> {
    match settings.get(ENV_CALIBRATION) {
        None => Ok(CalibrationMethod::default()),
        Some(text) => text
            .parse()
            .map_err(|message: String| ConfigError::invalid(ENV_CALIBRATION, message)),
    }
}

/// The review band's lower end: applicants with P(fraud) from it up to the threshold are
/// decided `review`. `None` when unset; a probability strictly between 0 and 1 otherwise.
pub fn review_below(settings: &Settings) -> Result<Option<f64>, ConfigError> {
    let Some(text) = settings.get(ENV_REVIEW_BELOW) else {
        return Ok(None);
    };
    match text.trim().parse::<f64>() {
        Ok(value) if value > 0.0 && value < 1.0 => Ok(Some(value)),
        _ => Err(ConfigError::invalid(
            ENV_REVIEW_BELOW,
            format!("must be a probability strictly between 0 and 1 (got {text:?})"),
        )),
    }
}

/// The cost matrix: each variable when set (a finite number > 0), else its default.
pub fn cost_matrix(settings: &Settings) -> Result<CostMatrix, ConfigError> {
    let defaults = CostMatrix::default();
    Ok(CostMatrix {
        false_negative: cost(settings, ENV_COST_FALSE_NEGATIVE, defaults.false_negative)?,
        false_positive: cost(settings, ENV_COST_FALSE_POSITIVE, defaults.false_positive)?,
    })
}

fn cost(settings: &Settings, variable: &'static str, default: f64) -> Result<f64, ConfigError> {
    let Some(text) = settings.get(variable) else {
        return Ok(default);
    };
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        Ok(_) => Err(ConfigError::invalid(
            variable,
            format!("must be a finite number > 0 (got {text:?})"),
        )),
        Err(e) => Err(ConfigError::Invalid {
            variable,
            message: format!("must be a finite number > 0 (got {text:?})"),
            source: Some(Box::new(e)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_five_to_one_and_values_are_read() {
        assert_eq!(
            cost_matrix(&Settings::from_pairs::<&str, &str>([])).unwrap(),
            CostMatrix::default()
        );
        let read = cost_matrix(&Settings::from_pairs([
            (ENV_COST_FALSE_NEGATIVE, "10"),
            (ENV_COST_FALSE_POSITIVE, " 2.5 "),
        ]))
        .unwrap();
        assert_eq!((read.false_negative, read.false_positive), (10.0, 2.5));
    }

    #[test]
    fn the_review_band_is_off_unless_set_to_a_probability() {
        assert_eq!(
            review_below(&Settings::from_pairs::<&str, &str>([])).unwrap(),
            None
        );
        let set = Settings::from_pairs([(ENV_REVIEW_BELOW, "0.1")]);
        assert_eq!(review_below(&set).unwrap(), Some(0.1));
        for bad in ["0", "1", "-0.2", "NaN", "often"] {
            let error = review_below(&Settings::from_pairs([(ENV_REVIEW_BELOW, bad)])).unwrap_err();
            assert!(error.to_string().contains(ENV_REVIEW_BELOW), "{error}");
        }
    }

    #[test]
    fn calibration_is_none_unless_set_to_platt() {
        assert_eq!(
            calibration(&Settings::from_pairs::<&str, &str>([])).unwrap(),
            CalibrationMethod::None
        );
        let set = Settings::from_pairs([(ENV_CALIBRATION, "Platt")]);
        assert_eq!(calibration(&set).unwrap(), CalibrationMethod::Platt);
        let error = calibration(&Settings::from_pairs([(ENV_CALIBRATION, "isotonic")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(ENV_CALIBRATION) && error.contains("none, platt"),
            "{error}"
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (variable, value) in [
            (ENV_COST_FALSE_NEGATIVE, "0"),
            (ENV_COST_FALSE_NEGATIVE, "-1"),
            (ENV_COST_FALSE_POSITIVE, "inf"),
            (ENV_COST_FALSE_POSITIVE, "NaN"),
            (ENV_COST_FALSE_POSITIVE, "cheap"),
        ] {
            let error = cost_matrix(&Settings::from_pairs([(variable, value)])).unwrap_err();
            let message = error.to_string();
            assert!(message.contains(variable), "{message}");
            assert!(message.contains("> 0"), "{message}");
        }
    }
}
