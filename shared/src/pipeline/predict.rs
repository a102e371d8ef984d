//! Serving: score applicants with the champion and log every prediction.

use chrono::{SubsecRound, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::model::Prediction;
use crate::ports::{PredictionLog, PredictionLogEntry};
use crate::schema::Applicant;

use super::{Champion, PipelineError};

/// A served prediction and the version that made it.
#[derive(Clone, Debug, Serialize)]
pub struct ServedPrediction {
    /// The id it is logged under (UUID v7); `None` only for a prediction that was not
    /// logged (`fraudctl predict --model`), since an id names a logged prediction.
    pub prediction_id: Option<Uuid>,
    #[serde(flatten)]
    pub prediction: Prediction,
    pub model_version: u32,
}

/// Scores applicants with the champion and logs each under a new id (never as a training
/// label). The answer's ids are the logged ids.
pub async fn predict_and_log(
    champion: &Champion,
    applicants: &[Applicant],
    log: &dyn PredictionLog,
    username: Option<&str>,
) -> Result<Vec<ServedPrediction>, PipelineError> {
    // Microseconds: what PostgreSQL keeps, so an entry read back equals the one logged.
    let now = Utc::now().trunc_subsecs(6);
    let threshold = champion.model.threshold();
    let mut served = Vec::with_capacity(applicants.len());
    let mut entries = Vec::with_capacity(applicants.len());
    for applicant in applicants {
        let prediction = champion.model.predict(applicant);
        // v7: time-ordered, so ids of a batch are distinct and the unique index is
        // appended to rather than written at random places.
        let prediction_id = Uuid::now_v7();
        entries.push(PredictionLogEntry {
            prediction_id,
            created_at: now,
            model_version: champion.pointer.version,
            threshold,
            probability_of_fraud: prediction.probability_of_fraud,
            fraud: prediction.decision == crate::model::Decision::Fraud,
            features: applicant.to_json(),
            username: username.map(str::to_string),
            reason_codes: prediction
                .reason_codes
                .iter()
                .map(|r| r.code.to_string())
                .collect(),
        });
        served.push(ServedPrediction {
            prediction_id: Some(prediction_id),
            prediction,
            model_version: champion.pointer.version,
        });
    }
    log.log_owned_predictions(entries).await?;
    Ok(served)
}
