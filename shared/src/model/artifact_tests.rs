//! Tests of `artifact`: the JSON round trip, what loading refuses, the MLmodel file.

use super::*;
use crate::model::{fit, testdata, TrainConfig};
use chrono::TimeZone;

fn artifact() -> ModelArtifact {
    let records = testdata::records(200, 2, 4);
    let config = TrainConfig {
        alphas: vec![0.1, 1.0, 10.0, 100.0],
        ..TrainConfig::default()
    };
    let outcome = fit(&records, &config).unwrap();
    let metrics = crate::model::evaluate(&outcome.model, &records, &config.costs).unwrap();
    let provenance = Provenance {
        trained_at: Utc.with_ymd_and_hms(2024, 5, 1, 13, 0, 0).unwrap(),
        training_rows: records.len(),
        distinct_rows: crate::model::distinct_row_count(&records),
        data_fingerprint: "sha256:abc".into(),
        seed: config.seed,
        code_version: Provenance::CODE_VERSION.into(),
        version: None,
    };
    ModelArtifact::new(
        &outcome.model,
        config.costs,
        outcome.chosen_alpha,
        outcome.cv,
        Some(metrics),
        provenance,
    )
}

fn json(a: &ModelArtifact) -> serde_json::Value {
    serde_json::from_slice(&a.to_json_bytes().unwrap()).unwrap()
}

fn load(v: &serde_json::Value) -> Result<ModelArtifact, ModelError> {
    ModelArtifact::from_json_bytes(&serde_json::to_vec(v).unwrap())
}

#[test]
fn round_trip_keeps_predictions_bit_for_bit() {
    let a = artifact();
    let back = ModelArtifact::from_json_bytes(&a.to_json_bytes().unwrap()).unwrap();
    assert_eq!(back, a);
    let (m1, m2) = (a.model().unwrap(), back.model().unwrap());
    for r in testdata::records(30, 1, 99) {
        assert_eq!(
            m1.probability_of_fraud(&r.applicant).to_bits(),
            m2.probability_of_fraud(&r.applicant).to_bits()
        );
    }
}

#[test]
fn coefficients_are_named_per_column() {
    let a = artifact();
    let v = json(&a);
    assert_eq!(v["format_version"], FORMAT_VERSION);
    assert_eq!(v["features"][0], FEATURES[0].name);
    let names: Vec<&str> = a.coefficients.iter().map(|c| c.column.as_str()).collect();
    let nominal = FEATURES
        .iter()
        .find(|f| f.kind == crate::schema::FeatureKind::Nominal)
        .unwrap();
    assert!(names.contains(&format!("{}={}", nominal.name, nominal.codes()[0]).as_str()));
    assert_eq!(v["provenance"]["version"], serde_json::Value::Null);
}

#[test]
fn rejects_an_unknown_format_version() {
    let mut v = json(&artifact());
    v["format_version"] = 2.into();
    let err = load(&v).unwrap_err();
    assert!(matches!(
        err,
        ModelError::UnsupportedFormat { found: 2, .. }
    ));
    assert!(err.to_string().contains("format_version 2"), "{err}");
    v.as_object_mut().unwrap().remove("format_version");
    assert!(load(&v).unwrap_err().to_string().contains("format_version"));
}

#[test]
fn rejects_mismatched_feature_names() {
    let mut v = json(&artifact());
    v["features"][3] = "colour".into();
    let err = load(&v).unwrap_err().to_string();
    assert!(
        err.contains("colour") && err.contains(FEATURES[3].name),
        "{err}"
    );
    let mut v = json(&artifact());
    v["features"].as_array_mut().unwrap().pop();
    let err = load(&v).unwrap_err().to_string();
    assert!(err.contains("19 features"), "{err}");
}

#[test]
fn rejects_a_wrong_coefficient_count() {
    let mut v = json(&artifact());
    let n = v["coefficients"].as_array().unwrap().len();
    v["coefficients"].as_array_mut().unwrap().pop();
    let err = load(&v).unwrap_err().to_string();
    assert!(
        err.contains(&format!("{} coefficients", n - 1)) && err.contains(&n.to_string()),
        "{err}"
    );
}

#[test]
fn rejects_non_finite_numbers() {
    // Written by hand: serde_json writes NaN as null.
    let mut v = json(&artifact());
    v["coefficients"][2]["weight"] = serde_json::Value::Null;
    let err = load(&v).unwrap_err().to_string();
    assert!(err.contains("coefficients[2].weight"), "{err}");
    // A number too large for f64 is refused by the parser.
    let text = serde_json::to_string(&json(&artifact())).unwrap();
    let text = text.replacen("\"intercept\":", "\"intercept\":1e999,\"x\":", 1);
    assert!(ModelArtifact::from_json_bytes(text.as_bytes()).is_err());
    // And a model built in code with a NaN is not written.
    let mut a = artifact();
    a.intercept = f64::NAN;
    let err = a.to_json_bytes().unwrap_err().to_string();
    assert!(err.contains("intercept"), "{err}");
    let mut a = artifact();
    a.metrics.as_mut().unwrap().roc_auc = f64::INFINITY;
    assert!(a.to_json_bytes().is_err());
}

#[test]
fn rejects_a_changed_encoding() {
    let mut v = json(&artifact());
    v["encoding"][1]["std"] = (-1.0).into();
    let err = load(&v).unwrap_err().to_string();
    assert!(err.contains("std"), "{err}");
    let mut v = json(&artifact());
    v["coefficients"][0]["column"] = "something_else".into();
    assert!(load(&v).unwrap_err().to_string().contains("something_else"));
    assert!(matches!(
        ModelArtifact::from_json_bytes(b"not json"),
        Err(ModelError::Json(_))
    ));
}

#[test]
fn mlmodel_names_the_flavor_run_and_signature() {
    let a = artifact();
    let text = a.mlmodel_file("run-123");
    assert!(text.starts_with("artifact_path: model\n"));
    assert!(text.contains("flavors:\n  fraudrisk:\n"));
    assert!(text.contains("    data: model.json\n"));
    assert!(text.contains(
        "  python_function:\n    code: code\n    data: model.json\n    \
         loader_module: fraudrisk_pyfunc\n    python_version: '3.11'\nmetadata:\n"
    ));
    assert!(text.contains(&format!("    format_version: {FORMAT_VERSION}\n")));
    assert!(text.contains("run_id: 'run-123'\n"));
    assert!(text.contains("utc_time_created: '2024-05-01 13:00:00.000000'\n"));
    let uuid_line = text
        .lines()
        .find(|l| l.starts_with("model_uuid: "))
        .unwrap();
    let uuid = uuid_line.trim_start_matches("model_uuid: ");
    assert_eq!(uuid.len(), 32);
    assert!(uuid.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(text, a.mlmodel_file("run-123"), "deterministic");
    assert_ne!(text, a.mlmodel_file("run-124"));
    let field = |key: &str| -> serde_json::Value {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap();
        let quoted = line.trim_start().trim_start_matches(key).trim();
        serde_json::from_str(&quoted[1..quoted.len() - 1].replace("''", "'")).unwrap()
    };
    let inputs = field("inputs:");
    let inputs = inputs.as_array().unwrap();
    assert_eq!(inputs.len(), FEATURE_COUNT);
    for (input, feature) in inputs.iter().zip(FEATURES.iter()) {
        assert_eq!(input["name"], feature.name);
        assert_eq!(input["type"], "long");
    }
    assert_eq!(field("outputs:")[0]["type"], "double");
}

#[test]
fn yaml_quoting_survives_quotes() {
    assert_eq!(yaml_quoted("it's"), "'it''s'");
}

#[test]
fn the_threshold_costs_and_review_band_survive_the_round_trip() {
    let records = testdata::records(200, 2, 4);
    let config = TrainConfig {
        alphas: vec![1.0, 10.0],
        review_below: Some(0.05),
        ..TrainConfig::default()
    };
    let outcome = fit(&records, &config).unwrap();
    assert_eq!(outcome.model.review_from(), Some(0.05));
    let mut a = artifact();
    a.threshold = outcome.model.threshold();
    a.review_from = outcome.model.review_from();
    let v = json(&a);
    assert_eq!(v["cost_matrix"]["false_negative"], 5.0);
    assert_eq!(v["review_from"], 0.05);
    let model = load(&v).unwrap().model().unwrap();
    assert_eq!(model.threshold(), outcome.model.threshold());
    assert_eq!(model.review_from(), Some(0.05));
    // An artifact from before costs: no cost matrix, no band, its own threshold.
    let mut old = json(&artifact());
    let map = old.as_object_mut().unwrap();
    map.remove("cost_matrix");
    map.remove("review_from");
    map.insert("threshold".into(), 0.5.into());
    let model = load(&old).unwrap().model().unwrap();
    assert_eq!((model.threshold(), model.review_from()), (0.5, None));
    // A bad band or cost matrix is refused.
    let mut bad = json(&a);
    bad["review_from"] = 1.5.into();
    assert!(load(&bad).is_err());
    let mut bad = json(&a);
    bad["cost_matrix"]["false_positive"] = 0.0.into();
    assert!(load(&bad).is_err());
}

#[test]
fn a_calibration_survives_the_round_trip_and_old_files_load_without_one() {
    let records = testdata::records(200, 2, 4);
    let config = TrainConfig {
        alphas: vec![1.0, 10.0],
        calibration: crate::model::CalibrationMethod::Platt,
        ..TrainConfig::default()
    };
    let outcome = fit(&records, &config).unwrap();
    let metrics = crate::model::evaluate(&outcome.model, &records, &config.costs).unwrap();
    let a = ModelArtifact::new(
        &outcome.model,
        config.costs,
        outcome.chosen_alpha,
        outcome.cv,
        Some(metrics),
        artifact().provenance,
    );
    let v = json(&a);
    assert_eq!(v["calibration"]["method"], "platt");
    assert!(v["metrics"]["expected_calibration_error"].is_f64());
    assert_eq!(v["metrics"]["reliability"].as_array().unwrap().len(), 10);
    let back = load(&v).unwrap();
    assert_eq!(back, a);
    let model = back.model().unwrap();
    assert_eq!(model.calibration(), outcome.model.calibration());
    for r in records.iter().take(20) {
        assert_eq!(
            model.probability_of_fraud(&r.applicant).to_bits(),
            outcome.model.probability_of_fraud(&r.applicant).to_bits()
        );
    }
    // A file written before calibration existed: no calibration, no ECE, no reliability table.
    let mut old = json(&a);
    let map = old.as_object_mut().unwrap();
    map.remove("calibration");
    let metrics = map["metrics"].as_object_mut().unwrap();
    metrics.remove("expected_calibration_error");
    metrics.remove("reliability");
    let loaded = load(&old).unwrap();
    assert_eq!(loaded.calibration, None);
    let m = loaded.metrics.as_ref().unwrap();
    assert_eq!(
        (m.expected_calibration_error, m.reliability.len()),
        (0.0, 0)
    );
    assert!(loaded.model().unwrap().calibration().is_none());
    // What the build wrote without calibration has no `calibration` key at all.
    assert!(json(&artifact()).get("calibration").is_none());
    // Non-finite or unknown calibrations are refused.
    let mut bad = json(&a);
    bad["calibration"] = serde_json::json!({"method": "isotonic"});
    assert!(load(&bad).is_err());
    let mut bad = json(&a);
    bad["calibration"]["a"] = serde_json::Value::Null;
    assert!(load(&bad).is_err());
}
