//! The promotion decisions, as pure functions: whether `initialtrain` may replace the
//! champion, and whether `retrain`'s challenger replaces it (the gate: every criterion must
//! pass, each with its own margin).

use serde::{Deserialize, Serialize};

use crate::model::{Metrics, ModelError};

use super::{ChampionPointer, PipelineError, PROMOTED_BY_RETRAIN};

/// The gate's criteria, figures and verdicts among a retrain run's artifacts.
pub const PROMOTION_GATE_PATH: &str = "promotion_gate.json";

/// How much worse than the champion the challenger may be on each criterion and still be
/// promoted (noise is not a regression).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GateMargins {
    /// ROC AUC may be lower by this much.
    pub roc_auc: f64,
    /// Expected cost per applicant (under the training cost matrix) may be higher by this much.
    pub expected_cost: f64,
    /// Brier score may be higher by this much.
    pub brier: f64,
}

impl Default for GateMargins {
    fn default() -> Self {
        GateMargins {
            roc_auc: 0.005,
            expected_cost: 0.02,
            brier: 0.005,
        }
    }
}

/// The gate's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PromotionGate {
    pub margins: GateMargins,
    /// The offline replay on served outcomes counts once at least this many served
    /// predictions since the champion's promotion have outcomes (and inputs the challenger
    /// was not trained on).
    pub replay_min_outcomes: usize,
    /// At most this many served outcomes are replayed, the most recent ones (memory).
    pub replay_max_rows: usize,
}

impl Default for PromotionGate {
    fn default() -> Self {
        PromotionGate {
            margins: GateMargins::default(),
            replay_min_outcomes: 200,
            replay_max_rows: 200_000,
        }
    }
}

/// Which data a criterion was measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GateData {
    /// The slice of the new labelled rows held out from the challenger's training.
    HeldOutNewRows,
    /// Served predictions with outcomes, re-scored by both models from their logged inputs.
    ServedOutcomes,
}

impl GateData {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            GateData::HeldOutNewRows => "held-out new rows",
            GateData::ServedOutcomes => "served outcomes",
        }
    }
}

/// One criterion of the gate, its figures and its verdict.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Criterion {
    /// `roc_auc`, `expected_cost` or `brier`.
    pub metric: String,
    pub data: GateData,
    pub challenger: f64,
    pub champion: f64,
    pub margin: f64,
    /// True for ROC AUC; lower is better for cost and Brier score.
    pub higher_is_better: bool,
    /// Whether the challenger is not worse than the champion beyond the margin.
    pub passed: bool,
}

impl Criterion {
    fn new(metric: &str, data: GateData, challenger: f64, champion: f64, margin: f64) -> Self {
        let higher_is_better = metric == "roc_auc";
        let passed = if higher_is_better {
            challenger >= champion - margin
        } else {
            challenger <= champion + margin
        };
        Criterion {
            metric: metric.to_string(),
            data,
            challenger,
            champion,
            margin,
            higher_is_better,
            passed,
        }
    }

    /// E.g. "expected cost on held-out new rows 0.5833 against 0.5500 (margin 0.02)".
    fn describe(&self) -> String {
        format!(
            "{} on {} {:.4} against {:.4} (margin {})",
            self.metric.replace('_', " "),
            self.data.describe(),
            self.challenger,
            self.champion,
            self.margin
        )
    }
}

/// Both models' figures on one set of rows.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Evaluation {
    pub rows: usize,
    pub challenger: Metrics,
    pub champion: Metrics,
}

/// The offline replay: what happened to it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Replay {
    /// Served predictions since the champion's promotion with an outcome, read (at most
    /// [`PromotionGate::replay_max_rows`], the most recent).
    pub served_outcomes: usize,
    /// Of those, left out because the challenger was trained on the same inputs (outcomes
    /// become training rows), or their logged inputs are unusable.
    pub excluded: usize,
    /// Both models on the rest, when there were enough and both classes.
    pub evaluation: Option<Evaluation>,
    /// Why the replay does not count, when it does not.
    pub skipped: Option<String>,
}

/// Challenger against champion: every criterion with its figures.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Comparison {
    /// Rows of the held-out new data.
    pub holdout_rows: usize,
    pub margins: GateMargins,
    /// Both models on the held-out new rows.
    pub challenger: Metrics,
    pub champion: Metrics,
    /// Each criterion, in order: held-out new rows, then served outcomes when they count.
    pub criteria: Vec<Criterion>,
    pub replay: Replay,
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

/// The three criteria on one set of rows (expected cost only where both have it).
fn criteria_on(data: GateData, evaluation: &Evaluation, margins: &GateMargins) -> Vec<Criterion> {
    let (challenger, champion) = (&evaluation.challenger, &evaluation.champion);
    let mut criteria = vec![Criterion::new(
        "roc_auc",
        data,
        challenger.roc_auc,
        champion.roc_auc,
        margins.roc_auc,
    )];
    if let (Some(a), Some(b)) = (challenger.expected_cost, champion.expected_cost) {
        criteria.push(Criterion::new(
            "expected_cost",
            data,
            a,
            b,
            margins.expected_cost,
        ));
    }
    criteria.push(Criterion::new(
        "brier",
        data,
        challenger.brier,
        champion.brier,
        margins.brier,
    ));
    criteria
}

/// The challenger is promoted when, on the held-out new rows and (when the replay counts) on
/// the served outcomes, it is not worse than the champion beyond each margin in ROC AUC,
/// expected cost and Brier score. When the models could not be evaluated on the held-out
/// rows (e.g. one class only), the champion stays.
pub fn decide(
    holdout: Result<Evaluation, ModelError>,
    replay: Replay,
    margins: &GateMargins,
) -> Decision {
    let holdout = match holdout {
        Ok(holdout) => holdout,
        Err(e) => {
            return Decision {
                promote: false,
                reason: format!(
                    "challenger and champion could not be compared on the held-out new rows ({e}): the champion stays"
                ),
                comparison: None,
            }
        }
    };
    let mut criteria = criteria_on(GateData::HeldOutNewRows, &holdout, margins);
    if let Some(replayed) = &replay.evaluation {
        criteria.extend(criteria_on(GateData::ServedOutcomes, replayed, margins));
    }
    let failed: Vec<String> = criteria
        .iter()
        .filter(|c| !c.passed)
        .map(Criterion::describe)
        .collect();
    let promote = failed.is_empty();
    let mut data = format!("{} held-out new rows", holdout.rows);
    match (&replay.evaluation, &replay.skipped) {
        (Some(replayed), _) => data.push_str(&format!(" and {} served outcomes", replayed.rows)),
        (None, Some(why)) => data.push_str(&format!(" (no replay: {why})")),
        (None, None) => {}
    }
    let reason = if promote {
        format!(
            "on {data} the challenger is not worse than the champion beyond the margins in any of {} criteria (ROC AUC {:.4} against {:.4}): promoted",
            criteria.len(),
            holdout.challenger.roc_auc,
            holdout.champion.roc_auc
        )
    } else {
        format!(
            "on {data} the challenger is worse than the champion beyond the margin in {}: the champion stays",
            failed.join("; ")
        )
    };
    Decision {
        promote,
        reason,
        comparison: Some(Comparison {
            holdout_rows: holdout.rows,
            margins: *margins,
            challenger: holdout.challenger,
            champion: holdout.champion,
            criteria,
            replay,
        }),
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
            expected_calibration_error: 0.0,
            reliability: Vec::new(),
        }
    }

    fn with(roc_auc: f64, expected_cost: f64, brier: f64) -> Metrics {
        Metrics {
            expected_cost: Some(expected_cost),
            brier,
            ..metrics(roc_auc)
        }
    }

    fn evaluation(rows: usize, challenger: Metrics, champion: Metrics) -> Evaluation {
        Evaluation {
            rows,
            challenger,
            champion,
        }
    }

    fn no_replay() -> Replay {
        Replay {
            served_outcomes: 0,
            excluded: 0,
            evaluation: None,
            skipped: Some("0 served outcomes, fewer than 200".into()),
        }
    }

    #[test]
    fn a_challenger_better_everywhere_is_promoted_with_every_criterion_listed() {
        let holdout = evaluation(600, with(0.80, 0.50, 0.18), with(0.75, 0.55, 0.20));
        let decision = decide(Ok(holdout), no_replay(), &GateMargins::default());
        assert!(decision.promote);
        assert_eq!(decision.tag(), "promoted");
        assert_eq!(
            decision.reason,
            "on 600 held-out new rows (no replay: 0 served outcomes, fewer than 200) the \
             challenger is not worse than the champion beyond the margins in any of 3 criteria \
             (ROC AUC 0.8000 against 0.7500): promoted"
        );
        let comparison = decision.comparison.expect("both were evaluated");
        let metrics: Vec<&str> = comparison
            .criteria
            .iter()
            .map(|c| c.metric.as_str())
            .collect();
        assert_eq!(metrics, ["roc_auc", "expected_cost", "brier"]);
        assert!(comparison.criteria.iter().all(|c| c.passed));
        assert_eq!(comparison.criteria[1].challenger, 0.50);
        assert_eq!(comparison.criteria[1].champion, 0.55);
        assert_eq!(comparison.margins, GateMargins::default());
    }

    #[test]
    fn each_criterion_alone_can_keep_the_champion() {
        let champion = with(0.75, 0.55, 0.20);
        let margins = GateMargins::default();
        for (challenger, failing) in [
            (
                with(0.70, 0.50, 0.18),
                "roc auc on held-out new rows 0.7000 against 0.7500",
            ),
            (
                with(0.80, 0.60, 0.18),
                "expected cost on held-out new rows 0.6000 against 0.5500",
            ),
            (
                with(0.80, 0.50, 0.21),
                "brier on held-out new rows 0.2100 against 0.2000",
            ),
        ] {
            let decision = decide(
                Ok(evaluation(600, challenger, champion.clone())),
                no_replay(),
                &margins,
            );
            assert!(!decision.promote, "{}", decision.reason);
            assert!(decision.reason.contains(failing), "{}", decision.reason);
            assert!(decision.reason.ends_with(": the champion stays"));
            let failed: Vec<_> = decision
                .comparison
                .expect("compared")
                .criteria
                .into_iter()
                .filter(|c| !c.passed)
                .collect();
            assert_eq!(failed.len(), 1);
        }
    }

    #[test]
    fn margins_are_inclusive_and_point_the_right_way() {
        // Binary fractions, so the sums are exact: 0.5 - 0.25 = 0.25, 0.5 + 0.25 = 0.75.
        let margins = GateMargins {
            roc_auc: 0.25,
            expected_cost: 0.25,
            brier: 0.25,
        };
        let at_margin = decide(
            Ok(evaluation(10, with(0.25, 0.75, 0.75), with(0.5, 0.5, 0.5))),
            no_replay(),
            &margins,
        );
        assert!(at_margin.promote, "{}", at_margin.reason);
        let beyond = decide(
            Ok(evaluation(10, with(0.5, 0.875, 0.5), with(0.5, 0.5, 0.5))),
            no_replay(),
            &margins,
        );
        assert!(!beyond.promote);
    }

    #[test]
    fn a_counted_replay_adds_its_criteria_and_can_keep_the_champion() {
        let holdout = evaluation(600, with(0.80, 0.50, 0.18), with(0.75, 0.55, 0.20));
        let replay = Replay {
            served_outcomes: 900,
            excluded: 600,
            evaluation: Some(evaluation(
                300,
                with(0.70, 0.50, 0.18),
                with(0.78, 0.52, 0.19),
            )),
            skipped: None,
        };
        let decision = decide(Ok(holdout), replay, &GateMargins::default());
        assert!(!decision.promote);
        assert!(
            decision.reason.starts_with(
                "on 600 held-out new rows and 300 served outcomes the challenger is worse than \
                 the champion beyond the margin in roc auc on served outcomes 0.7000 against 0.7800"
            ),
            "{}",
            decision.reason
        );
        let comparison = decision.comparison.expect("compared");
        assert_eq!(comparison.criteria.len(), 6);
        assert_eq!(comparison.criteria[3].data, GateData::ServedOutcomes);
        assert_eq!(comparison.replay.excluded, 600);
    }

    fn one_class() -> ModelError {
        ModelError::OneClass {
            context: "ROC AUC",
            count: 10,
            only: "not_fraud",
        }
    }

    #[test]
    fn without_figures_on_the_held_out_rows_the_champion_stays() {
        let decision = decide(Err(one_class()), no_replay(), &GateMargins::default());
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
