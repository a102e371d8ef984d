//! The model as the pipeline and the HTTP layer use it: train with a holdout, save, load,
//! predict, and the JSON shapes they pass on.

use chrono::{TimeZone, Utc};
use fraudrisk::model::{
    distinct_row_count, train_with_holdout, CostMatrix, Decision, ModelArtifact, Provenance,
    TrainConfig, FRAUD_MESSAGE, NOT_FRAUD_MESSAGE,
};
use fraudrisk::schema::{Applicant, Domain, LabeledRecord, FEATURES, FEATURE_COUNT};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// 400 distinct applicants from the schema domains, each twice; fraud depends on the first
/// feature's code and the second feature's value.
fn records() -> Vec<LabeledRecord> {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let distinct: Vec<LabeledRecord> = (0..400)
        .map(|_| {
            let mut values = [0.0; FEATURE_COUNT];
            for (value, feature) in values.iter_mut().zip(FEATURES.iter()) {
                *value = match feature.domain {
                    Domain::Codes(codes) => codes[rng.gen_range(0..codes.len())].0 as f64,
                    Domain::Range { min, max } => rng.gen_range(min..=max.min(min + 50)) as f64,
                };
            }
            let z = 1.0 - 0.6 * values[0] + 0.05 * values[1];
            let fraud = rng.gen::<f64>() < 1.0 / (1.0 + (-z).exp());
            LabeledRecord {
                applicant: Applicant(values),
                creditability: u8::from(!fraud),
            }
        })
        .collect();
    distinct.iter().chain(distinct.iter()).copied().collect()
}

#[test]
fn train_save_load_predict() {
    let data = records();
    let config = TrainConfig::default();
    let outcome = train_with_holdout(data.clone(), &config).unwrap();
    assert_eq!(outcome.cv.len(), config.alphas.len());
    assert!(outcome.metrics.roc_auc > 0.6, "{:?}", outcome.metrics);

    let provenance = Provenance {
        trained_at: Utc.with_ymd_and_hms(2024, 6, 1, 13, 0, 0).unwrap(),
        training_rows: outcome.train_rows,
        distinct_rows: distinct_row_count(&data),
        data_fingerprint: "test".into(),
        seed: config.seed,
        code_version: Provenance::CODE_VERSION.into(),
        version: Some(3),
    };
    let artifact = ModelArtifact::new(
        &outcome.model,
        config.costs,
        outcome.chosen_alpha,
        outcome.cv.clone(),
        Some(outcome.metrics.clone()),
        provenance,
    );
    let bytes = artifact.to_json_bytes().unwrap();
    let loaded = ModelArtifact::from_json_bytes(&bytes)
        .unwrap()
        .model()
        .unwrap();
    for r in data.iter().take(40) {
        let before = outcome.model.predict(&r.applicant);
        let after = loaded.predict(&r.applicant);
        assert_eq!(before, after);
    }
}

#[test]
fn prediction_json_has_the_fields_the_api_returns() {
    let data = records();
    // Even costs: on this weakly separable data 5:1 costs call nearly everyone fraud, and
    // the test needs both decisions.
    let config = TrainConfig {
        costs: CostMatrix {
            false_negative: 1.0,
            false_positive: 1.0,
        },
        ..TrainConfig::default()
    };
    let model = train_with_holdout(data.clone(), &config).unwrap().model;
    let mut saw = [false, false];
    for r in &data {
        let prediction = model.predict(&r.applicant);
        let json = serde_json::to_value(&prediction).unwrap();
        let p = json["probability_of_fraud"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p));
        match prediction.decision {
            Decision::Fraud => {
                saw[0] = true;
                assert_eq!(json["decision"], "fraud");
                assert_eq!(json["message"], FRAUD_MESSAGE);
                assert!(p >= model.threshold());
            }
            Decision::Review => panic!("a model without a review band decided review"),
            Decision::NotFraud => {
                saw[1] = true;
                assert_eq!(json["decision"], "not_fraud");
                assert_eq!(json["message"], NOT_FRAUD_MESSAGE);
                assert!(p < model.threshold());
            }
        }
        let contributions = json["contributions"].as_array().unwrap();
        assert_eq!(contributions.len(), FEATURE_COUNT);
        assert!(contributions[0]["feature"].is_string());
        assert!(contributions[0]["value"].is_number());
        assert!(contributions[0]["contribution"].is_number());
        assert_eq!(json["threshold"], model.threshold());
        assert!(json["reason_codes"].as_array().unwrap().len() <= 4);
    }
    assert_eq!(saw, [true, true], "both decisions occur on this data");
}
