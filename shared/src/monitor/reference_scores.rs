//! The score distribution a model's served scores are compared with: its P(fraud) on the rows
//! held out when it was trained, stored beside the model (`models/v<N>/reference_scores.json`)
//! and logged to its run. Held-out rows, not training rows: a fitted model is more confident on
//! the rows it saw, so in-sample scores would make honest traffic look drifted.

use serde::{Deserialize, Serialize};

/// The file's name in a model's folder and among its run's artifacts.
pub const REFERENCE_SCORES_FILE: &str = "reference_scores.json";

/// Which rows the reference scores come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScoreReferenceSource {
    /// `initialtrain`: the stratified holdout of the reference rows.
    Holdout,
    /// `retrain`: the slice of the new rows held out to compare challenger and champion.
    RecentHoldout,
    /// Models trained before reference scores were stored: the champion re-scores its own
    /// training rows at monitor time (in-sample, so slightly more confident than traffic).
    TrainingRows,
}

impl ScoreReferenceSource {
    /// How a report names it.
    pub fn describe(self) -> &'static str {
        match self {
            ScoreReferenceSource::Holdout => "the champion on its holdout rows",
            ScoreReferenceSource::RecentHoldout => "the champion on its held-out new rows",
            ScoreReferenceSource::TrainingRows => "the champion on its training rows",
        }
    }
}

/// A model's scores on its held-out rows, ascending.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferenceScores {
    pub source: ScoreReferenceSource,
    /// The model version, once registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// P(fraud) per held-out row, ascending.
    pub scores: Vec<f64>,
}

/// Why a stored reference-scores file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceScoresError {
    #[error("reference scores are not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("reference scores hold no score")]
    Empty,
    #[error("reference score {index} is {value}, outside [0, 1]")]
    OutOfRange { index: usize, value: f64 },
}

impl ReferenceScores {
    /// The scores sorted ascending.
    pub fn new(source: ScoreReferenceSource, mut scores: Vec<f64>) -> Self {
        scores.sort_by(f64::total_cmp);
        ReferenceScores {
            source,
            version: None,
            scores,
        }
    }

    /// The file's bytes (compact: a million-row holdout is 200,000 numbers).
    pub fn to_json_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Reads a stored file and checks that every score is a probability, so a damaged file is
    /// refused rather than compared with.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self, ReferenceScoresError> {
        let mut parsed: ReferenceScores = serde_json::from_slice(bytes)?;
        if parsed.scores.is_empty() {
            return Err(ReferenceScoresError::Empty);
        }
        if let Some((index, &value)) = parsed
            .scores
            .iter()
            .enumerate()
            .find(|(_, p)| !(0.0..=1.0).contains(*p))
        {
            return Err(ReferenceScoresError::OutOfRange { index, value });
        }
        parsed.scores.sort_by(f64::total_cmp);
        Ok(parsed)
    }
}

/// The key of a version's reference scores in the artifact store.
pub fn reference_scores_key(version: u32) -> String {
    format!("models/v{version}/{REFERENCE_SCORES_FILE}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_sorts_and_keeps_the_source() {
        let scores = ReferenceScores::new(ScoreReferenceSource::Holdout, vec![0.9, 0.1, 0.5]);
        assert_eq!(scores.scores, vec![0.1, 0.5, 0.9]);
        let bytes = scores.to_json_bytes().expect("serialises");
        let read = ReferenceScores::from_json_bytes(&bytes).expect("reads back");
        assert_eq!(read, scores);
        assert!(String::from_utf8_lossy(&bytes).contains("\"source\":\"holdout\""));
    }

    #[test]
    fn damaged_files_are_refused() {
        let empty = br#"{"source":"holdout","scores":[]}"#;
        assert!(matches!(
            ReferenceScores::from_json_bytes(empty),
            Err(ReferenceScoresError::Empty)
        ));
        let outside = br#"{"source":"recent_holdout","scores":[0.2,1.5]}"#;
        assert!(matches!(
            ReferenceScores::from_json_bytes(outside),
            Err(ReferenceScoresError::OutOfRange { index: 1, .. })
        ));
        assert!(matches!(
            ReferenceScores::from_json_bytes(b"[1,2]"),
            Err(ReferenceScoresError::Json(_))
        ));
    }
}
