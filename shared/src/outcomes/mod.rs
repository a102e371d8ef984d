//! Fraud outcomes: what became of a served prediction, reported weeks later (a chargeback,
//! an investigation) by its `prediction_id`.
//!
//! A recorded outcome turns the prediction's logged inputs into a labelled row (source
//! [`OUTCOME_SOURCE`], key the prediction id) that waits for the next retrain like a row of
//! `load-data --new`. What happens to each reported outcome is decided here, in one pure
//! function ([`decide`]) the stores apply inside their transaction, so the embedded store and
//! PostgreSQL follow the same rules.

mod file;
mod logged_inputs;
mod parse;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ports::StoreError;
use crate::schema::{Applicant, LabeledRecord};

pub use file::{
    is_outcomes_header, read_outcomes_file, read_outcomes_from, OutcomeFileError, OutcomesFile,
    MAX_FILE_OUTCOMES,
};
pub use logged_inputs::LoggedInputs;
pub use parse::outcomes_from_json;

/// Most outcomes in one request (422 above it).
pub const MAX_OUTCOMES: usize = 1000;

/// The `source` of the labelled rows that outcomes make.
pub const OUTCOME_SOURCE: &str = "outcome";

/// Refuses a load under [`OUTCOME_SOURCE`]: those rows belong to outcomes (one per prediction
/// id, relabelled in place), and PostgreSQL keeps them out of the loads' content key.
pub fn refuse_outcome_source(source: &str) -> Result<(), StoreError> {
    if source == OUTCOME_SOURCE {
        return Err(StoreError::Conflict(format!(
            "the source name `{OUTCOME_SOURCE}` is reserved for the rows outcomes make; \
             rename the file"
        )));
    }
    Ok(())
}

/// One reported outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The id the prediction's answer carried.
    pub prediction_id: Uuid,
    /// Whether the applicant turned out to commit fraud.
    pub fraud: bool,
    /// When the outcome was observed (defaults to when it was reported).
    pub observed_at: DateTime<Utc>,
}

/// An outcome as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StoredOutcome {
    pub fraud: bool,
    pub observed_at: DateTime<Utc>,
}

/// What the store holds for one prediction id when its outcome arrives.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutcomeState {
    /// The logged prediction's inputs; `None` when no prediction has this id.
    pub features: Option<LoggedInputs>,
    /// The outcome recorded before, if any.
    pub stored: Option<StoredOutcome>,
    /// The model version that absorbed the labelled row made from it, if any.
    pub absorbed_by: Option<u32>,
}

/// What became of one reported outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeResult {
    /// Stored now; the prediction's inputs wait for the next retrain as a labelled row.
    Recorded,
    /// The same outcome was stored before: nothing changed (reporting twice is safe).
    Unchanged,
    /// A different outcome is stored; send `overwrite=true` to replace it.
    Conflict,
    /// The stored outcome was different and is replaced (`overwrite=true`); the old one is
    /// kept in the audit trail, and the waiting labelled row carries the new label.
    Replaced,
    /// A different outcome is stored and a model version has trained on it already: it
    /// cannot be replaced.
    Absorbed,
    /// No logged prediction has this id.
    UnknownPrediction,
}

impl OutcomeResult {
    /// The HTTP status that names this result (each item of an answer carries one).
    pub fn status(self) -> u16 {
        match self {
            OutcomeResult::Recorded => 201,
            OutcomeResult::Unchanged | OutcomeResult::Replaced => 200,
            OutcomeResult::Conflict | OutcomeResult::Absorbed => 409,
            OutcomeResult::UnknownPrediction => 404,
        }
    }

    /// The result's name, as in the JSON answer.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeResult::Recorded => "recorded",
            OutcomeResult::Unchanged => "unchanged",
            OutcomeResult::Conflict => "conflict",
            OutcomeResult::Replaced => "replaced",
            OutcomeResult::Absorbed => "absorbed",
            OutcomeResult::UnknownPrediction => "unknown_prediction",
        }
    }

    /// Every result, in the order a report lists their counts.
    pub const ALL: [OutcomeResult; 6] = [
        OutcomeResult::Recorded,
        OutcomeResult::Unchanged,
        OutcomeResult::Conflict,
        OutcomeResult::Replaced,
        OutcomeResult::Absorbed,
        OutcomeResult::UnknownPrediction,
    ];
}

/// What the store writes for one outcome.
#[derive(Clone, Debug, PartialEq)]
pub enum OutcomeWrite {
    /// Nothing.
    Nothing,
    /// A new outcome, and its labelled row.
    Insert(LabeledRecord),
    /// The outcome replaces the stored one (kept in the audit trail), and the waiting
    /// labelled row takes the new label.
    Replace {
        record: LabeledRecord,
        previous: StoredOutcome,
    },
}

/// One outcome's fate, with what to write.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub result: OutcomeResult,
    pub write: OutcomeWrite,
    /// The outcome stored before (for `unchanged`, `conflict`, `replaced`, `absorbed`).
    pub stored: Option<StoredOutcome>,
    /// The version that absorbed the row (for `absorbed`).
    pub absorbed_by: Option<u32>,
}

/// Why a logged prediction cannot become a labelled row.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("the logged inputs of prediction {prediction_id} are unusable: {reason}")]
pub struct UnusableInputs {
    pub prediction_id: Uuid,
    pub reason: String,
}

/// Decides what happens to `outcome` given what is stored for its prediction id.
pub fn decide(
    outcome: &Outcome,
    state: &OutcomeState,
    overwrite: bool,
) -> Result<Decision, UnusableInputs> {
    let decision = |result, write| Decision {
        result,
        write,
        stored: state.stored,
        absorbed_by: state.absorbed_by,
    };
    let Some(features) = &state.features else {
        return Ok(decision(
            OutcomeResult::UnknownPrediction,
            OutcomeWrite::Nothing,
        ));
    };
    let record = labeled_record(outcome, features)?;
    Ok(match state.stored {
        None => decision(OutcomeResult::Recorded, OutcomeWrite::Insert(record)),
        Some(stored) if stored.fraud == outcome.fraud => {
            decision(OutcomeResult::Unchanged, OutcomeWrite::Nothing)
        }
        Some(_) if !overwrite => decision(OutcomeResult::Conflict, OutcomeWrite::Nothing),
        Some(_) if state.absorbed_by.is_some() => {
            decision(OutcomeResult::Absorbed, OutcomeWrite::Nothing)
        }
        Some(previous) => decision(
            OutcomeResult::Replaced,
            OutcomeWrite::Replace { record, previous },
        ),
    })
}

/// The labelled row an outcome makes of the logged inputs (fraud is creditability 0).
pub fn labeled_record(
    outcome: &Outcome,
    features: &LoggedInputs,
) -> Result<LabeledRecord, UnusableInputs> {
    let unusable = |reason: String| UnusableInputs {
        prediction_id: outcome.prediction_id,
        reason,
    };
    let values = *features
        .values()
        .map_err(|reason| unusable(reason.to_string()))?;
    let applicant = Applicant::validate(values).map_err(|errors| unusable(errors.to_string()))?;
    Ok(LabeledRecord {
        applicant,
        creditability: u8::from(!outcome.fraud),
    })
}

/// The replaced outcomes of a store's `history` column (a JSON array of `{"fraud",
/// "observed_at", ...}`, oldest first); entries that do not parse are skipped.
pub fn replaced_outcomes(history: &str) -> Vec<StoredOutcome> {
    let entries: Vec<serde_json::Value> = serde_json::from_str(history).unwrap_or_default();
    entries
        .iter()
        .filter_map(|entry| {
            Some(StoredOutcome {
                fraud: entry.get("fraud")?.as_bool()?,
                observed_at: DateTime::parse_from_rfc3339(entry.get("observed_at")?.as_str()?)
                    .ok()?
                    .with_timezone(&Utc),
            })
        })
        .collect()
}

/// One item of an outcomes report.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct OutcomeItem {
    /// The item's position in the request or file (0-based in a request, the line in a file).
    pub index: usize,
    pub prediction_id: Uuid,
    pub result: OutcomeResult,
    /// The HTTP status that names the result: 201 recorded, 200 unchanged or replaced, 409
    /// conflict or absorbed, 404 unknown prediction.
    pub status: u16,
    /// The outcome stored before, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_fraud: Option<bool>,
    /// The version that trained on the stored outcome (`absorbed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub absorbed_by: Option<u32>,
    /// What the caller can do, for the results that need something.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<&'static str>,
}

impl OutcomeItem {
    /// The report item for `decision` of the outcome at `index`.
    pub fn new(index: usize, prediction_id: Uuid, decision: &Decision) -> Self {
        let hint = match decision.result {
            OutcomeResult::Conflict => {
                Some("a different outcome is stored: send overwrite=true to replace it")
            }
            OutcomeResult::Absorbed => Some(
                "a model version has trained on the stored outcome; it can no longer be replaced",
            ),
            OutcomeResult::UnknownPrediction => Some(
                "no logged prediction has this id (ids come from the prediction answers; a \
                 prediction answered a moment ago by `fraudctl serve` may still be on its way to \
                 the log)",
            ),
            _ => None,
        };
        OutcomeItem {
            index,
            prediction_id,
            result: decision.result,
            status: decision.result.status(),
            stored_fraud: decision.stored.map(|s| s.fraud),
            absorbed_by: match decision.result {
                OutcomeResult::Absorbed => decision.absorbed_by,
                _ => None,
            },
            hint,
        }
    }
}

/// How many items had each result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct OutcomeCounts {
    pub recorded: usize,
    pub unchanged: usize,
    pub conflict: usize,
    pub replaced: usize,
    pub absorbed: usize,
    pub unknown_prediction: usize,
}

impl OutcomeCounts {
    /// Counts the items' results.
    pub fn of(items: &[OutcomeItem]) -> Self {
        let mut counts = OutcomeCounts::default();
        for item in items {
            *counts.slot(item.result) += 1;
        }
        counts
    }

    fn slot(&mut self, result: OutcomeResult) -> &mut usize {
        match result {
            OutcomeResult::Recorded => &mut self.recorded,
            OutcomeResult::Unchanged => &mut self.unchanged,
            OutcomeResult::Conflict => &mut self.conflict,
            OutcomeResult::Replaced => &mut self.replaced,
            OutcomeResult::Absorbed => &mut self.absorbed,
            OutcomeResult::UnknownPrediction => &mut self.unknown_prediction,
        }
    }

    /// The count of one result.
    pub fn get(&self, result: OutcomeResult) -> usize {
        let mut copy = *self;
        *copy.slot(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Applicant, FEATURES};

    fn seed_json() -> serde_json::Value {
        let example = crate::request::seed_example_corrected();
        let values: Vec<f64> = FEATURES
            .iter()
            .map(|f| example[f.name].as_f64().unwrap())
            .collect();
        Applicant::validate(values.try_into().unwrap())
            .unwrap()
            .to_json()
    }

    fn seed_features() -> LoggedInputs {
        serde_json::from_value(seed_json()).unwrap()
    }

    fn outcome(fraud: bool) -> Outcome {
        Outcome {
            prediction_id: Uuid::now_v7(),
            fraud,
            observed_at: Utc::now(),
        }
    }

    fn stored(fraud: bool) -> Option<StoredOutcome> {
        Some(StoredOutcome {
            fraud,
            observed_at: Utc::now(),
        })
    }

    #[test]
    fn each_result_follows_from_the_stored_state() {
        let features = Some(seed_features());
        let fraud = outcome(true);
        let cases = [
            (
                OutcomeState::default(),
                false,
                OutcomeResult::UnknownPrediction,
            ),
            (
                OutcomeState {
                    features: features.clone(),
                    ..Default::default()
                },
                false,
                OutcomeResult::Recorded,
            ),
            (
                OutcomeState {
                    features: features.clone(),
                    stored: stored(true),
                    absorbed_by: Some(3),
                },
                true,
                OutcomeResult::Unchanged,
            ),
            (
                OutcomeState {
                    features: features.clone(),
                    stored: stored(false),
                    absorbed_by: None,
                },
                false,
                OutcomeResult::Conflict,
            ),
            (
                OutcomeState {
                    features: features.clone(),
                    stored: stored(false),
                    absorbed_by: None,
                },
                true,
                OutcomeResult::Replaced,
            ),
            (
                OutcomeState {
                    features: features.clone(),
                    stored: stored(false),
                    absorbed_by: Some(2),
                },
                true,
                OutcomeResult::Absorbed,
            ),
        ];
        for (state, overwrite, expected) in cases {
            let decision = decide(&fraud, &state, overwrite).unwrap();
            assert_eq!(decision.result, expected, "{state:?} overwrite={overwrite}");
            let writes = !matches!(decision.write, OutcomeWrite::Nothing);
            assert_eq!(
                writes,
                matches!(expected, OutcomeResult::Recorded | OutcomeResult::Replaced)
            );
        }
    }

    #[test]
    fn fraud_is_creditability_zero() {
        let features = seed_features();
        assert_eq!(
            labeled_record(&outcome(true), &features)
                .unwrap()
                .creditability,
            0
        );
        assert!(labeled_record(&outcome(true), &features)
            .unwrap()
            .is_fraud());
        assert_eq!(
            labeled_record(&outcome(false), &features)
                .unwrap()
                .creditability,
            1
        );
    }

    #[test]
    fn damaged_logged_inputs_are_named() {
        let mut json = seed_json();
        json["age_years"] = serde_json::json!("old");
        let features = serde_json::from_value(json.clone()).unwrap();
        let error = labeled_record(&outcome(true), &features).unwrap_err();
        assert!(error.reason.contains("age_years"), "{error}");
        json["age_years"] = serde_json::json!(-5);
        let features = serde_json::from_value(json).unwrap();
        let error = labeled_record(&outcome(true), &features).unwrap_err();
        assert!(error.reason.contains("age_years"), "{error}");
    }

    #[test]
    fn items_carry_status_and_hint() {
        let decision = Decision {
            result: OutcomeResult::Absorbed,
            write: OutcomeWrite::Nothing,
            stored: stored(false),
            absorbed_by: Some(4),
        };
        let item = OutcomeItem::new(2, Uuid::nil(), &decision);
        assert_eq!(item.status, 409);
        assert_eq!(item.absorbed_by, Some(4));
        assert_eq!(item.stored_fraud, Some(false));
        let json = serde_json::to_value(&item).unwrap();
        assert_eq!(json["result"], "absorbed");
        let counts = OutcomeCounts::of(&[item.clone(), item]);
        assert_eq!(counts.absorbed, 2);
        assert_eq!(counts.get(OutcomeResult::Absorbed), 2);
        assert_eq!(counts.recorded, 0);
    }
}
