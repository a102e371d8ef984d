//! The promotion decisions, as pure functions: whether `initialtrain` may replace the
//! champion, and whether `retrain`'s challenger replaces it.

use serde::Serialize;

use crate::model::{Metrics, ModelError};

use super::{ChampionPointer, PipelineError, PROMOTED_BY_RETRAIN};

/// Challenger against champion on held-out recent rows.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Comparison {
    pub holdout_rows: usize,
    pub margin: f64,
    pub challenger: Metrics,
    pub champion: Metrics,
}

/// What retrain decides about its challenger, and why.
#[derive(Clone, Debug)]
pub struct Decision {
    /// Whether the challenger becomes champion.
    pub promote: bool,
    /// One sentence for the summary and the run's description.
    pub reason: String,
    /// Both models' figures, when both could be evaluated.
    pub comparison: Option<Comparison>,
}

impl Decision {
    /// The `decision` tag of the retrain run.
    pub fn tag(&self) -> &'static str {
        if self.promote {
            "promoted"
        } else {
            "rejected"
        }
    }
}

/// The challenger is promoted when its ROC AUC on the held-out new rows is at least the
/// champion's minus `margin` (not worse, within noise). When either model could not be
/// evaluated on those rows (e.g. they hold one class only), the champion stays.
pub fn decide(
    challenger: Result<Metrics, ModelError>,
    champion: Result<Metrics, ModelError>,
    holdout_rows: usize,
    margin: f64,
) -> Decision {
    match (challenger, champion) {
        (Ok(challenger), Ok(champion)) => {
            let promote = challenger.roc_auc >= champion.roc_auc - margin;
            let reason = format!(
                "on {holdout_rows} held-out new rows the challenger's ROC AUC is {:.4} and the champion's {:.4} (margin {margin}){}",
                challenger.roc_auc,
                champion.roc_auc,
                if promote { ": promoted" } else { ": the champion stays" }
            );
            Decision {
                promote,
                reason,
                comparison: Some(Comparison {
                    holdout_rows,
                    margin,
                    challenger,
                    champion,
                }),
            }
        }
        (Err(e), _) | (_, Err(e)) => Decision {
            promote: false,
            reason: format!(
                "challenger and champion could not be compared on the held-out new rows ({e}): the champion stays"
            ),
            comparison: None,
        },
    }
}

/// Whether `initialtrain` may replace the current champion: always when there is none or
/// `initialtrain` made it, or with `force`; a champion retrain promoted won a comparison,
/// and a model trained on the reference rows alone would replace it untested.
pub fn initialtrain_may_replace(
    current: Option<&ChampionPointer>,
    force: bool,
) -> Result<(), PipelineError> {
    match current {
        Some(champion)
            if !force && champion.promoted_by.as_deref() == Some(PROMOTED_BY_RETRAIN) =>
        {
            Err(PipelineError::ChampionFromRetrain {
                version: champion.version,
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ConfusionMatrix;
    use crate::pipeline::PROMOTED_BY_INITIALTRAIN;

    fn metrics(roc_auc: f64) -> Metrics {
        Metrics {
            roc_auc,
            accuracy: 0.7,
            precision: 0.5,
            recall: 0.5,
            f1: 0.5,
            brier: 0.2,
            log_loss: 0.6,
            threshold: 0.5,
            support: 600,
            confusion: ConfusionMatrix {
                true_positive: 90,
                false_positive: 90,
                true_negative: 330,
                false_negative: 90,
            },
            expected_cost: None,
            expected_cost_at_0_5: None,
        }
    }

    #[test]
    fn a_better_challenger_is_promoted() {
        let decision = decide(Ok(metrics(0.80)), Ok(metrics(0.75)), 600, 0.005);
        assert!(decision.promote);
        assert_eq!(decision.tag(), "promoted");
        assert_eq!(
            decision.reason,
            "on 600 held-out new rows the challenger's ROC AUC is 0.8000 and the champion's \
             0.7500 (margin 0.005): promoted"
        );
        let comparison = decision.comparison.expect("both were evaluated");
        assert_eq!((comparison.holdout_rows, comparison.margin), (600, 0.005));
        assert_eq!(comparison.challenger.roc_auc, 0.80);
        assert_eq!(comparison.champion.roc_auc, 0.75);
    }

    #[test]
    fn a_challenger_within_the_margin_is_promoted() {
        // Worse, but by less than the margin: not worse beyond noise.
        assert!(decide(Ok(metrics(0.748)), Ok(metrics(0.75)), 600, 0.005).promote);
        // Exactly at the margin still counts (binary fractions: 0.5 - 0.25 = 0.25).
        assert!(decide(Ok(metrics(0.25)), Ok(metrics(0.5)), 600, 0.25).promote);
        // Equal figures.
        assert!(decide(Ok(metrics(0.75)), Ok(metrics(0.75)), 600, 0.0).promote);
    }

    #[test]
    fn a_challenger_worse_beyond_the_margin_is_rejected() {
        let decision = decide(Ok(metrics(0.70)), Ok(metrics(0.75)), 600, 0.005);
        assert!(!decision.promote);
        assert_eq!(decision.tag(), "rejected");
        assert!(
            decision.reason.ends_with(": the champion stays"),
            "{}",
            decision.reason
        );
        assert!(decision.comparison.is_some());
    }

    fn one_class() -> ModelError {
        ModelError::OneClass {
            context: "ROC AUC",
            count: 10,
            only: "not_fraud",
        }
    }

    #[test]
    fn without_figures_for_both_the_champion_stays() {
        for (challenger, champion) in [
            (Err(one_class()), Ok(metrics(0.75))),
            (Ok(metrics(0.99)), Err(one_class())),
        ] {
            let decision = decide(challenger, champion, 10, 0.005);
            assert!(!decision.promote);
            assert!(decision.comparison.is_none());
            assert!(
                decision.reason.starts_with(
                    "challenger and champion could not be compared on the held-out new rows ("
                ),
                "{}",
                decision.reason
            );
        }
    }

    fn pointer(promoted_by: Option<&str>) -> ChampionPointer {
        ChampionPointer {
            version: 3,
            model_key: "models/v3/model.json".into(),
            sha256: "00".into(),
            run_id: "r".into(),
            promoted_at: chrono::Utc::now(),
            promoted_by: promoted_by.map(str::to_string),
        }
    }

    #[test]
    fn initialtrain_replaces_only_what_retrain_did_not_promote() {
        assert!(initialtrain_may_replace(None, false).is_ok());
        assert!(initialtrain_may_replace(Some(&pointer(None)), false).is_ok());
        assert!(
            initialtrain_may_replace(Some(&pointer(Some(PROMOTED_BY_INITIALTRAIN))), false).is_ok()
        );
        let retrained = pointer(Some(PROMOTED_BY_RETRAIN));
        assert!(matches!(
            initialtrain_may_replace(Some(&retrained), false),
            Err(PipelineError::ChampionFromRetrain { version: 3 })
        ));
        assert!(initialtrain_may_replace(Some(&retrained), true).is_ok());
    }
}
