//! A version's model card, assembled from what its training produced, and where it is kept:
//! `models/v<N>/model_card.{md,html,json}` beside the model, and the same files in its run.

use std::collections::HashMap;

use chrono::Utc;

use crate::dataset::RecordSource;
use crate::drift::DriftReport;
use crate::model::ModelArtifact;
use crate::monitor::{
    age_band, reliability, segments, GroupedOutcome, ScoredOutcome, SegmentPerformance,
};
use crate::ports::{ArtifactStore, RunInfo, Tracker};
use crate::report::{
    HoldoutFigures, ModelCard, ModelChoices, PromotionRecord, SegmentFigures, TrainingData,
    HTML_CONTENT_TYPE, MODEL_CARD_HTML, MODEL_CARD_JSON, MODEL_CARD_MARKDOWN, SMALL_SEGMENT_ROWS,
};
use crate::schema::{feature_index, LabeledRecord};

use super::{json_bytes, PipelineError};

/// The key of a version's card in the artifact store.
pub fn model_card_key(version: u32, file: &str) -> String {
    format!("models/v{version}/{file}")
}

/// What a training knows for the card besides the model artifact.
pub(super) struct CardContext<'a> {
    /// `initialtrain`, `retrain (always)`, ...
    pub(super) trained_by: String,
    pub(super) holdout_description: String,
    pub(super) holdout: &'a [LabeledRecord],
    /// The model's P(fraud) of each held-out row, in the same order.
    pub(super) holdout_scores: &'a [f64],
    /// The sources of the rows it trained on.
    pub(super) sources: Vec<RecordSource>,
    /// Which rows the training window kept, in words (retrain).
    pub(super) training_window: Option<String>,
    pub(super) drift: Option<&'a DriftReport>,
    pub(super) promotion: PromotionRecord,
}

/// The card of `artifact`, registered as `version` in `run_id`.
pub(super) fn model_card(
    context: &CardContext<'_>,
    artifact: &ModelArtifact,
    model_name: &str,
    version: u32,
    run_id: &str,
) -> ModelCard {
    let threshold = artifact.threshold;
    let scored: Vec<ScoredOutcome> = context
        .holdout
        .iter()
        .zip(context.holdout_scores)
        .map(|(r, &p)| ScoredOutcome {
            probability_of_fraud: p,
            decided_fraud: p >= threshold,
            outcome: Some(r.is_fraud()),
        })
        .collect();
    let segments = segment_figures(context.holdout, &scored);
    let limitations = limitations(context, &segments);
    ModelCard {
        model_name: model_name.to_string(),
        version,
        run_id: run_id.to_string(),
        trained_at: artifact.provenance.trained_at,
        trained_by: context.trained_by.clone(),
        code_version: artifact.provenance.code_version.clone(),
        training_data: TrainingData {
            rows: artifact.provenance.training_rows,
            distinct_rows: artifact.provenance.distinct_rows,
            data_fingerprint: artifact.provenance.data_fingerprint.clone(),
            sources: context.sources.clone(),
            window: context.training_window.clone(),
        },
        choices: ModelChoices {
            alpha: artifact.alpha,
            cross_validation: artifact.cv.clone(),
            threshold,
            cost_matrix: artifact.cost_matrix.unwrap_or_default(),
            review_from: artifact.review_from,
            calibration: artifact.calibration,
        },
        holdout: HoldoutFigures {
            description: context.holdout_description.clone(),
            metrics: artifact.metrics.clone(),
            reliability: reliability(&scored),
        },
        segments,
        drift: context.drift.cloned(),
        promotion: context.promotion.clone(),
        limitations,
    }
}

/// The held-out rows' figures per age band and per `sex_marital_status` code, with the share
/// decided fraud in each (the monitor's segments, on the holdout).
fn segment_figures(holdout: &[LabeledRecord], scored: &[ScoredOutcome]) -> Vec<SegmentFigures> {
    let age = feature_index("age_years");
    let code = feature_index("sex_marital_status");
    let value = |r: &LabeledRecord, j: Option<usize>| {
        j.and_then(|j| r.applicant.0.get(j).copied())
            .unwrap_or(f64::NAN)
    };
    let grouped: Vec<GroupedOutcome> = holdout
        .iter()
        .zip(scored)
        .map(|(r, s)| GroupedOutcome {
            scored: *s,
            model_version: 0,
            created_at: Utc::now(),
            age_years: value(r, age),
            sex_marital_status: value(r, code),
        })
        .collect();
    let mut flagged: HashMap<(&str, String), usize> = HashMap::new();
    for g in grouped.iter().filter(|g| g.scored.decided_fraud) {
        if let Some(band) = age_band(g.age_years) {
            *flagged.entry(("age_band", band.to_string())).or_default() += 1;
        }
        if g.sex_marital_status.is_finite() {
            let key = (
                "sex_marital_status",
                (g.sex_marital_status as i64).to_string(),
            );
            *flagged.entry(key).or_default() += 1;
        }
    }
    segments(&grouped)
        .into_iter()
        .map(|s: SegmentPerformance| {
            let decided = flagged
                .get(&(s.segment.as_str(), s.value.clone()))
                .copied()
                .unwrap_or(0);
            let f = s.figures;
            SegmentFigures {
                rows: f.served,
                frauds: f.frauds,
                flagged_share: if f.served == 0 {
                    0.0
                } else {
                    decided as f64 / f.served as f64
                },
                roc_auc: f.roc_auc,
                precision: f.precision,
                recall: f.recall,
                brier: f.brier,
                segment: s.segment,
                value: s.value,
            }
        })
        .collect()
}

/// What the figures cannot tell: fixed caveats, and those this version's data raises.
fn limitations(context: &CardContext<'_>, segments: &[SegmentFigures]) -> Vec<String> {
    let mut out = vec![
        "Trained on the German credit data's features and labels (or data shaped like them): \
         the label is a bank's credit-risk judgement, not proven fraud, and carries that \
         bank's past decisions and biases."
            .to_string(),
        "A linear model on one-hot codes: interactions between features are not modelled."
            .to_string(),
        "The holdout figures are estimates with sampling error; on a few hundred rows, ROC AUC \
         moves by several hundredths from one split to another."
            .to_string(),
        "Outcomes arrive weeks after a decision: realized performance (the monitor's report) \
         lags behind what is served."
            .to_string(),
    ];
    let small: Vec<String> = segments
        .iter()
        .filter(|s| s.rows < SMALL_SEGMENT_ROWS)
        .map(|s| format!("{} {}", s.segment, s.value))
        .collect();
    if !small.is_empty() {
        out.push(format!(
            "Segments with fewer than {SMALL_SEGMENT_ROWS} held-out rows ({}): their figures \
             cannot show whether the model treats them differently.",
            small.join(", ")
        ));
    }
    if context
        .sources
        .iter()
        .any(|s| s.source.contains("generated"))
    {
        out.push(
            "Some training rows were generated (synthetic), not observed applicants.".to_string(),
        );
    }
    if let Some(drift) = context.drift.filter(|d| d.drift) {
        let drifted: Vec<&str> = drift
            .features
            .iter()
            .filter(|f| f.significant)
            .map(|f| f.feature.as_str())
            .collect();
        out.push(format!(
            "The new rows it was trained on had drifted from the earlier data ({}): the \
             population may still be changing.",
            drifted.join(", ")
        ));
    }
    out
}

/// Writes the card beside the model and into its run.
pub(super) async fn store_model_card(
    artifacts: &dyn ArtifactStore,
    tracker: &dyn Tracker,
    run: &RunInfo,
    card: &ModelCard,
) -> Result<(), PipelineError> {
    let files = [
        (
            MODEL_CARD_MARKDOWN,
            card.to_markdown().into_bytes(),
            "text/markdown",
        ),
        (
            MODEL_CARD_HTML,
            card.to_html().into_bytes(),
            HTML_CONTENT_TYPE,
        ),
        (MODEL_CARD_JSON, json_bytes(card)?, "application/json"),
    ];
    for (name, bytes, content_type) in files {
        tracker.log_artifact(run, name, bytes.clone()).await?;
        artifacts
            .put(&model_card_key(card.version, name), bytes, content_type)
            .await?;
    }
    Ok(())
}
