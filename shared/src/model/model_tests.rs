//! Tests of the model: contributions, the fast path, decisions, calibration.

use super::*;
use crate::schema::LabeledRecord;

fn small_config() -> TrainConfig {
    TrainConfig {
        alphas: vec![0.1, 1.0, 10.0, 100.0],
        ..TrainConfig::default()
    }
}

fn fitted() -> (Model, Vec<LabeledRecord>) {
    let records = testdata::records(300, 3, 7);
    let outcome = fit(&records, &small_config()).unwrap();
    (outcome.model, records)
}

#[test]
fn contributions_and_base_add_up_to_the_log_odds() {
    let (model, records) = fitted();
    for record in records.iter().take(50) {
        let prediction = model.predict(&record.applicant);
        let sum: f64 = prediction
            .contributions
            .iter()
            .map(|c| c.contribution)
            .sum();
        let z = model.base_log_odds() + sum;
        let p = 1.0 / (1.0 + (-z).exp());
        assert!((p - prediction.probability_of_fraud).abs() < 1e-12);
        assert_eq!(prediction.contributions.len(), FEATURES.len());
    }
}

#[test]
fn contributions_are_sorted_by_magnitude_and_carry_raw_values() {
    let (model, records) = fitted();
    let applicant = records[0].applicant;
    let prediction = model.predict(&applicant);
    for pair in prediction.contributions.windows(2) {
        assert!(pair[0].contribution.abs() >= pair[1].contribution.abs());
    }
    for c in &prediction.contributions {
        let i = crate::schema::feature_index(c.feature).unwrap();
        assert_eq!(c.value, applicant.0[i]);
    }
}

#[test]
fn the_fast_path_agrees_with_the_encoded_dot_product() {
    let (model, records) = fitted();
    for record in records.iter().take(50) {
        let mut row = vec![0.0; model.encoder().n_columns()];
        model.encoder().encode_into(&record.applicant, &mut row);
        let z: f64 = model.intercept()
            + row
                .iter()
                .zip(model.weights())
                .map(|(x, w)| x * w)
                .sum::<f64>();
        assert!((z - model.log_odds(&record.applicant)).abs() < 1e-10);
    }
}

#[test]
fn the_model_learns_the_direction_of_fraud() {
    // In the synthetic data fraud grows with the first numeric feature: its weight on the
    // log-odds of FRAUD must be positive (a sign flip in the label mapping would show here).
    let (model, _) = fitted();
    let numeric = FEATURES
        .iter()
        .position(|f| f.kind == crate::schema::FeatureKind::Numeric)
        .unwrap();
    let column = model.encoder().offset(numeric);
    assert!(model.weights()[column] > 0.3, "{}", model.weights()[column]);
}

#[test]
fn decision_follows_the_threshold_and_serialises_like_the_seed() {
    let (model, records) = fitted();
    let applicant = records[0].applicant;
    let p = model.probability_of_fraud(&applicant);
    let strict = model.with_threshold((p + 1.0) / 2.0).unwrap();
    assert_eq!(strict.predict(&applicant).decision, Decision::NotFraud);
    let lenient = model.with_threshold(p / 2.0).unwrap();
    let prediction = lenient.predict(&applicant);
    assert_eq!(prediction.decision, Decision::Fraud);
    assert_eq!(prediction.message, FRAUD_MESSAGE);
    let json = serde_json::to_value(&prediction).unwrap();
    assert_eq!(json["decision"], "fraud");
    assert_eq!(
        serde_json::to_value(Decision::NotFraud).unwrap(),
        "not_fraud"
    );
    assert!(model.with_threshold(1.0).is_err());
    assert!(model.with_threshold(f64::NAN).is_err());
    // A review band below the threshold: review inside it, the same decisions outside.
    let banded = model
        .with_threshold((p + 1.0) / 2.0)
        .unwrap()
        .with_review_band(Some(p / 2.0))
        .unwrap();
    let prediction = banded.predict(&applicant);
    assert_eq!(prediction.decision, Decision::Review);
    assert_eq!(prediction.message, REVIEW_MESSAGE);
    assert_eq!(
        serde_json::to_value(prediction).unwrap()["decision"],
        "review"
    );
    assert_eq!(banded.decide((p + 1.0) / 2.0), Decision::Fraud);
    assert_eq!(banded.decide(p / 4.0), Decision::NotFraud);
    assert!(model.with_review_band(Some(0.0)).is_err());
}

#[test]
fn unknown_nominal_code_scores_without_panicking() {
    let (model, records) = fitted();
    let mut applicant = records[0].applicant;
    let nominal = FEATURES
        .iter()
        .position(|f| f.kind == crate::schema::FeatureKind::Nominal)
        .unwrap();
    applicant.0[nominal] = 99.0;
    let p = model.probability_of_fraud(&applicant);
    assert!(p.is_finite() && p > 0.0 && p < 1.0);
}

#[test]
fn sigmoid_is_stable_at_extremes() {
    assert_eq!(sigmoid(1000.0), 1.0);
    assert_eq!(sigmoid(-1000.0), 0.0);
    assert!((sigmoid(0.0) - 0.5).abs() < 1e-15);
}
