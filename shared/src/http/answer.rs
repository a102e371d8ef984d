//! The JSON answer of a prediction: one applicant, or a batch.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::json_response;
use super::{ApiError, TOP_CONTRIBUTIONS};
use crate::model::{Contribution, Decision, ReasonCode};
use crate::pipeline::ServedPrediction;

/// The answer for one applicant: the seed's sentence first, then the numbers.
#[derive(Serialize, ToSchema)]
pub(crate) struct PredictionAnswer<'a> {
    /// The seed's sentence for the decision.
    message: &'static str,
    /// The prediction's id in the prediction log (a UUID v7), to report its outcome by.
    prediction_id: Uuid,
    /// P(fraud) from the champion.
    #[schema(minimum = 0.0, maximum = 1.0)]
    probability_of_fraud: f64,
    /// The threshold the decision used: the champion's, chosen to minimise the expected cost
    /// of wrong decisions (fraud when `probability_of_fraud` is at least this).
    #[schema(exclusive_minimum = 0.0, exclusive_maximum = 1.0)]
    threshold: f64,
    /// Present only when the champion has a review band: from this probability up to the
    /// threshold the decision is `review`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(exclusive_minimum = 0.0, exclusive_maximum = 1.0)]
    review_from: Option<f64>,
    decision: Decision,
    /// The champion's version that scored the applicant.
    model_version: u32,
    /// Up to four features that pushed toward fraud, largest push first (empty when none
    /// did): stable codes R01 … R20 with the feature and the applicant's value.
    reason_codes: &'a [ReasonCode],
    /// The five features that moved the log-odds most, largest first.
    contributions: &'a [Contribution],
}

/// The answer for a batch, in the order of the request's records.
#[derive(Serialize, ToSchema)]
pub(crate) struct BatchAnswer<'a> {
    pub(super) predictions: Vec<PredictionAnswer<'a>>,
}

impl<'a> TryFrom<&'a ServedPrediction> for PredictionAnswer<'a> {
    type Error = ApiError;

    fn try_from(served: &'a ServedPrediction) -> Result<Self, ApiError> {
        let prediction = &served.prediction;
        let top = prediction.contributions.len().min(TOP_CONTRIBUTIONS);
        // `predict_and_log` gives every logged prediction an id; only unlogged ones lack it.
        let prediction_id = served
            .prediction_id
            .ok_or_else(|| ApiError::Internal("a served prediction has no id".to_string()))?;
        Ok(PredictionAnswer {
            message: prediction.message,
            prediction_id,
            probability_of_fraud: prediction.probability_of_fraud,
            threshold: prediction.threshold,
            review_from: prediction.review_from,
            decision: prediction.decision,
            model_version: served.model_version,
            reason_codes: &prediction.reason_codes,
            contributions: &prediction.contributions[..top],
        })
    }
}

pub(super) fn one_answer(served: &[ServedPrediction]) -> Result<Response<Bytes>, ApiError> {
    let first = served
        .first()
        .ok_or_else(|| ApiError::Internal("the model returned no prediction".to_string()))?;
    Ok(json_response(
        StatusCode::OK,
        &PredictionAnswer::try_from(first)?,
    ))
}
