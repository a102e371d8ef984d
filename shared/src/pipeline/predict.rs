//! Serving: score applicants with the champion and log every prediction.

use chrono::Utc;
use serde::Serialize;

use crate::model::Prediction;
use crate::ports::{PredictionLog, PredictionLogEntry};
use crate::schema::Applicant;

use super::{Champion, PipelineError};

/// A served prediction and the version that made it.
#[derive(Clone, Debug, Serialize)]
pub struct ServedPrediction {
    #[serde(flatten)]
    pub prediction: Prediction,
    pub model_version: u32,
}

/// Scores one applicant with the champion and logs it (never as a training label).
pub async fn predict_and_log(
    champion: &Champion,
    applicants: &[Applicant],
    log: &dyn PredictionLog,
    username: Option<&str>,
) -> Result<Vec<ServedPrediction>, PipelineError> {
    let now = Utc::now();
    let served: Vec<ServedPrediction> = applicants
        .iter()
        .map(|a| ServedPrediction {
            prediction: champion.model.predict(a),
            model_version: champion.pointer.version,
        })
        .collect();
    let entries: Vec<PredictionLogEntry> = applicants
        .iter()
        .zip(served.iter())
        .map(|(a, s)| PredictionLogEntry {
            created_at: now,
            model_version: s.model_version,
            probability_of_fraud: s.prediction.probability_of_fraud,
            fraud: s.prediction.decision == crate::model::Decision::Fraud,
            features: a.to_json(),
            username: username.map(str::to_string),
        })
        .collect();
    log.log_predictions(&entries).await?;
    Ok(served)
}
