//! The promotion gate's settings from the environment: how much worse than the champion a
//! challenger may be on each criterion, and when the replay on served outcomes counts.

use super::{ConfigError, Settings};
use crate::pipeline::{GateMargins, PromotionGate};

/// Variable: how much lower the challenger's ROC AUC may be (default 0.005).
pub const ENV_MARGIN_ROC_AUC: &str = "FRAUDRISK_PROMOTION_MARGIN_ROC_AUC";
/// Variable: how much higher its expected cost per applicant may be (default 0.02).
pub const ENV_MARGIN_EXPECTED_COST: &str = "FRAUDRISK_PROMOTION_MARGIN_EXPECTED_COST";
/// Variable: how much higher its Brier score may be (default 0.005).
pub const ENV_MARGIN_BRIER: &str = "FRAUDRISK_PROMOTION_MARGIN_BRIER";
/// Variable: served outcomes needed before the replay counts (default 200).
pub const ENV_REPLAY_MIN_OUTCOMES: &str = "FRAUDRISK_REPLAY_MIN_OUTCOMES";
/// Variable: at most this many served outcomes are replayed, the most recent (default 200,000).
pub const ENV_REPLAY_MAX_ROWS: &str = "FRAUDRISK_REPLAY_MAX_ROWS";

/// The gate: each variable when set, else its default.
pub fn promotion_gate(settings: &Settings) -> Result<PromotionGate, ConfigError> {
    let defaults = PromotionGate::default();
    let replay_min_outcomes = count(
        settings,
        ENV_REPLAY_MIN_OUTCOMES,
        defaults.replay_min_outcomes,
        1,
    )?;
    let replay_max_rows = count(settings, ENV_REPLAY_MAX_ROWS, defaults.replay_max_rows, 1)?;
    if replay_max_rows < replay_min_outcomes {
        return Err(ConfigError::invalid(
            ENV_REPLAY_MAX_ROWS,
            format!(
                "must be at least {ENV_REPLAY_MIN_OUTCOMES} ({replay_min_outcomes}), got {replay_max_rows}"
            ),
        ));
    }
    Ok(PromotionGate {
        margins: GateMargins {
            roc_auc: margin(settings, ENV_MARGIN_ROC_AUC, defaults.margins.roc_auc)?,
            expected_cost: margin(
                settings,
                ENV_MARGIN_EXPECTED_COST,
                defaults.margins.expected_cost,
            )?,
            brier: margin(settings, ENV_MARGIN_BRIER, defaults.margins.brier)?,
        },
        replay_min_outcomes,
        replay_max_rows,
    })
}

fn margin(settings: &Settings, variable: &'static str, default: f64) -> Result<f64, ConfigError> {
    let Some(text) = settings.get(variable) else {
        return Ok(default);
    };
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(ConfigError::invalid(
            variable,
            format!("must be a finite number >= 0 (got {text:?})"),
        )),
    }
}

fn count(
    settings: &Settings,
    variable: &'static str,
    default: usize,
    least: usize,
) -> Result<usize, ConfigError> {
    let Some(text) = settings.get(variable) else {
        return Ok(default);
    };
    match text.trim().parse::<usize>() {
        Ok(value) if value >= least => Ok(value),
        _ => Err(ConfigError::invalid(
            variable,
            format!("must be a whole number >= {least} (got {text:?})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_values_are_read() {
        let none = Settings::from_pairs::<&str, &str>([]);
        assert_eq!(promotion_gate(&none).unwrap(), PromotionGate::default());
        let set = Settings::from_pairs([
            (ENV_MARGIN_ROC_AUC, "0"),
            (ENV_MARGIN_EXPECTED_COST, " 0.1 "),
            (ENV_MARGIN_BRIER, "0.01"),
            (ENV_REPLAY_MIN_OUTCOMES, "50"),
            (ENV_REPLAY_MAX_ROWS, "1000"),
        ]);
        let gate = promotion_gate(&set).unwrap();
        assert_eq!(
            gate.margins,
            GateMargins {
                roc_auc: 0.0,
                expected_cost: 0.1,
                brier: 0.01
            }
        );
        assert_eq!((gate.replay_min_outcomes, gate.replay_max_rows), (50, 1000));
    }

    #[test]
    fn bad_values_name_the_variable_and_rule() {
        for (variable, value, rule) in [
            (ENV_MARGIN_ROC_AUC, "-0.1", ">= 0"),
            (ENV_MARGIN_EXPECTED_COST, "inf", ">= 0"),
            (ENV_MARGIN_BRIER, "small", ">= 0"),
            (ENV_REPLAY_MIN_OUTCOMES, "0", ">= 1"),
            (ENV_REPLAY_MAX_ROWS, "1.5", ">= 1"),
            (ENV_REPLAY_MAX_ROWS, "100", "at least"),
        ] {
            let error = promotion_gate(&Settings::from_pairs([(variable, value)])).unwrap_err();
            let message = error.to_string();
            assert!(message.contains(variable), "{message}");
            assert!(message.contains(rule), "{message}");
        }
    }
}
