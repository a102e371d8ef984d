//! The serialised model: versioned JSON (`model.json`) and the MLflow `MLmodel` file that
//! describes it.
//!
//! Loading checks everything a model depends on: the format version, the feature names and
//! kinds against [`FEATURES`], the one-hot codes, the number and names of the coefficients and
//! that every number is finite. A mismatch is an error that says which field is wrong, never a
//! silently shifted model.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cost::CostMatrix;
use super::encoding::{EncodedFeature, Encoder};
use super::metrics::Metrics;
use super::pyfunc::{PYFUNC_CODE_DIR, PYFUNC_MODULE, PYFUNC_PYTHON_VERSION};
use super::train::CvResult;
use super::{Model, ModelError};
use crate::schema::{FEATURES, FEATURE_COUNT};

/// The artifact format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// File name of the JSON artifact inside the MLflow artifact folder.
pub const MODEL_JSON_FILE: &str = "model.json";

/// The MLflow artifact folder of the model.
pub const MLMODEL_ARTIFACT_PATH: &str = "model";

/// One encoded column's weight.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Coefficient {
    /// Column name: the feature, or `feature=code` for a one-hot column.
    pub column: String,
    /// Weight on the log-odds of fraud.
    pub weight: f64,
    /// Mean of the encoded column over the training rows (the reference of contributions).
    pub training_mean: f64,
}

/// Where a model came from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Provenance {
    /// When training finished.
    pub trained_at: DateTime<Utc>,
    /// Records the final model was fitted on.
    pub training_rows: usize,
    /// Distinct rows among them.
    pub distinct_rows: usize,
    /// Fingerprint of the training data (computed by the dataset module).
    pub data_fingerprint: String,
    /// Seed of splits and folds.
    pub seed: u64,
    /// Version of the fraudrisk crate that trained it.
    pub code_version: String,
    /// Registry version, filled in by the pipeline once registered.
    #[serde(default)]
    pub version: Option<u32>,
}

impl Provenance {
    /// The crate version to record as `code_version`.
    pub const CODE_VERSION: &'static str = env!("CARGO_PKG_VERSION");

    /// Provenance of a model trained now by this code, not yet registered.
    pub fn now(
        training_rows: usize,
        distinct_rows: usize,
        data_fingerprint: String,
        seed: u64,
    ) -> Self {
        Provenance {
            trained_at: Utc::now(),
            training_rows,
            distinct_rows,
            data_fingerprint,
            seed,
            code_version: Self::CODE_VERSION.to_string(),
            version: None,
        }
    }
}

/// The complete, self-describing model file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ModelArtifact {
    /// [`FORMAT_VERSION`] when written by this build.
    pub format_version: u32,
    /// Feature names in schema order.
    pub features: Vec<String>,
    /// Fitted encoding of each feature, in schema order.
    pub encoding: Vec<EncodedFeature>,
    /// Intercept on the log-odds of fraud.
    pub intercept: f64,
    /// One coefficient per encoded column, in column order.
    pub coefficients: Vec<Coefficient>,
    /// Decision threshold on P(fraud): the one with the lowest expected cost on the
    /// cross-validation's out-of-fold probabilities under `cost_matrix`.
    pub threshold: f64,
    /// The costs the threshold minimises (absent in artifacts written before costs were
    /// configurable, whose threshold is 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_matrix: Option<CostMatrix>,
    /// Lower end of the review band `[review_from, threshold)`, when one was configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_from: Option<f64>,
    /// The chosen L2 strength (linfa's alpha; scikit-learn's C = 1 / alpha).
    pub alpha: f64,
    /// Cross-validation results of the grid.
    pub cv: Vec<CvResult>,
    /// Holdout metrics, when there was a holdout.
    pub metrics: Option<Metrics>,
    /// Where the model came from.
    pub provenance: Provenance,
}

impl ModelArtifact {
    /// Captures a fitted model with its training record.
    pub fn new(
        model: &Model,
        costs: CostMatrix,
        alpha: f64,
        cv: Vec<CvResult>,
        metrics: Option<Metrics>,
        provenance: Provenance,
    ) -> Self {
        let encoder = model.encoder();
        let coefficients = encoder
            .column_names()
            .into_iter()
            .zip(model.weights().iter().zip(model.column_means()))
            .map(|(column, (&weight, &training_mean))| Coefficient {
                column,
                weight,
                training_mean,
            })
            .collect();
        ModelArtifact {
            format_version: FORMAT_VERSION,
            features: FEATURES.iter().map(|f| f.name.to_string()).collect(),
            encoding: encoder.features().to_vec(),
            intercept: model.intercept(),
            coefficients,
            threshold: model.threshold(),
            cost_matrix: Some(costs),
            review_from: model.review_from(),
            alpha,
            cv,
            metrics,
            provenance,
        }
    }

    /// Pretty-printed JSON. Fails rather than write an artifact that could not be read back
    /// (JSON has no NaN or infinity).
    pub fn to_json_bytes(&self) -> Result<Vec<u8>, ModelError> {
        self.check()?;
        Ok(serde_json::to_vec_pretty(self)?)
    }

    /// Parses and checks an artifact.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let value: serde_json::Value = serde_json::from_slice(bytes)?;
        // The version decides how to read the rest, so it is checked before the shape.
        let version = value
            .get("format_version")
            .ok_or_else(|| ModelError::InvalidArtifact("format_version is missing".into()))?;
        let version = version.as_u64().ok_or_else(|| {
            ModelError::InvalidArtifact(format!(
                "format_version must be a non-negative integer, got {version}"
            ))
        })?;
        if version != u64::from(FORMAT_VERSION) {
            return Err(ModelError::UnsupportedFormat {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let artifact: ModelArtifact = match serde_json::from_value(value.clone()) {
            Ok(artifact) => artifact,
            Err(e) => {
                // serde_json writes NaN and infinity as null: say so where it happened.
                return Err(match find_null_number(&value, "") {
                    Some(path) => ModelError::InvalidArtifact(format!(
                        "{e}; {path} is null, which is how a NaN or infinite number is written"
                    )),
                    None => ModelError::Json(e),
                });
            }
        };
        artifact.check()?;
        Ok(artifact)
    }

    /// The model the artifact describes (checked again: the fields are public).
    pub fn model(&self) -> Result<Model, ModelError> {
        if self.format_version != FORMAT_VERSION {
            return Err(ModelError::UnsupportedFormat {
                found: u64::from(self.format_version),
                supported: FORMAT_VERSION,
            });
        }
        let schema: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
        if self.features.len() != FEATURE_COUNT {
            return Err(ModelError::InvalidArtifact(format!(
                "the artifact lists {} features, this build's schema has {FEATURE_COUNT}: {}",
                self.features.len(),
                schema.join(", ")
            )));
        }
        if let Some((i, (found, expected))) = self
            .features
            .iter()
            .zip(&schema)
            .enumerate()
            .find(|(_, (found, expected))| found != *expected)
        {
            return Err(ModelError::InvalidArtifact(format!(
                "feature {i} is {found:?} in the artifact but {expected:?} in this build's schema"
            )));
        }
        let encoder = Encoder::from_features(self.encoding.clone())?;
        let columns = encoder.column_names();
        if self.coefficients.len() != columns.len() {
            return Err(ModelError::InvalidArtifact(format!(
                "the artifact has {} coefficients, its encoding has {} columns",
                self.coefficients.len(),
                columns.len()
            )));
        }
        if let Some((c, expected)) = self
            .coefficients
            .iter()
            .zip(&columns)
            .find(|(c, expected)| c.column != **expected)
        {
            return Err(ModelError::InvalidArtifact(format!(
                "coefficient {:?} is where column {expected:?} belongs",
                c.column
            )));
        }
        Model::from_parts(
            encoder,
            self.intercept,
            self.coefficients.iter().map(|c| c.weight).collect(),
            self.coefficients.iter().map(|c| c.training_mean).collect(),
            self.threshold,
        )
        .and_then(|model| model.with_review_band(self.review_from))
        .map_err(|e| match e {
            ModelError::NonFinite(m) => ModelError::InvalidArtifact(format!("non-finite {m}")),
            other => other,
        })
    }

    /// Everything [`ModelArtifact::model`] checks, plus finite training figures.
    fn check(&self) -> Result<(), ModelError> {
        self.model()?;
        let bad = |what: String| Err(ModelError::InvalidArtifact(what));
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return bad(format!("alpha must be finite and > 0, got {}", self.alpha));
        }
        for c in &self.cv {
            if ![c.alpha, c.mean_roc_auc, c.std_roc_auc]
                .iter()
                .all(|v| v.is_finite())
            {
                return bad(format!("cross-validation result {c:?} is not finite"));
            }
        }
        if let Some(costs) = &self.cost_matrix {
            costs.validate()?;
        }
        if let Some(m) = &self.metrics {
            let values = [
                m.roc_auc,
                m.accuracy,
                m.precision,
                m.recall,
                m.f1,
                m.brier,
                m.log_loss,
                m.threshold,
                m.expected_cost.unwrap_or(0.0),
                m.expected_cost_at_0_5.unwrap_or(0.0),
            ];
            if !values.iter().all(|v| v.is_finite()) {
                return bad(format!("metrics contain a non-finite number: {m:?}"));
            }
        }
        Ok(())
    }

    /// An MLflow `MLmodel` file for the folder that holds `model.json` (see
    /// [`super::model_folder`]): the custom `fraudrisk` flavor (this crate's reader), a
    /// `python_function` flavor whose loader is the module in `code/` (so
    /// `mlflow.pyfunc.load_model` and `mlflow models serve` work), the run, a deterministic
    /// model UUID and a signature of the 20 inputs (long) and P(fraud) (double).
    pub fn mlmodel_file(&self, run_id: &str) -> String {
        let inputs: Vec<serde_json::Value> = self
            .features
            .iter()
            .map(|name| serde_json::json!({"type": "long", "name": name, "required": true}))
            .collect();
        let outputs = serde_json::json!([
            {"type": "double", "name": "probability_of_fraud", "required": true}
        ]);
        let created = self
            .provenance
            .trained_at
            .format("%Y-%m-%d %H:%M:%S%.6f")
            .to_string();
        let description = "Logistic regression estimating P(fraud) = P(creditability = 0) \
                           from the 20 applicant features; read model.json with the fraudrisk crate \
                           or mlflow.pyfunc.load_model (code/fraudrisk_pyfunc.py).";
        let mut out = String::new();
        out.push_str(&format!("artifact_path: {MLMODEL_ARTIFACT_PATH}\n"));
        out.push_str("flavors:\n  fraudrisk:\n");
        out.push_str(&format!(
            "    code_version: {}\n",
            yaml_quoted(&self.provenance.code_version)
        ));
        out.push_str(&format!("    data: {MODEL_JSON_FILE}\n"));
        out.push_str(&format!("    format_version: {}\n", self.format_version));
        out.push_str("    model_type: logistic_regression\n");
        // MLflow's keys (mlflow.pyfunc: loader_module, code, data, python_version); no `env`:
        // `mlflow models serve --env-manager local` does not read one.
        out.push_str("  python_function:\n");
        out.push_str(&format!("    code: {PYFUNC_CODE_DIR}\n"));
        out.push_str(&format!("    data: {MODEL_JSON_FILE}\n"));
        out.push_str(&format!("    loader_module: {PYFUNC_MODULE}\n"));
        out.push_str(&format!(
            "    python_version: {}\n",
            yaml_quoted(PYFUNC_PYTHON_VERSION)
        ));
        out.push_str("metadata:\n");
        out.push_str(&format!("  description: {}\n", yaml_quoted(description)));
        out.push_str(&format!("  alpha: {}\n", self.alpha));
        out.push_str(&format!("  threshold: {}\n", self.threshold));
        out.push_str(&format!(
            "model_uuid: {}\n",
            model_uuid(run_id, &self.provenance)
        ));
        out.push_str(&format!("run_id: {}\n", yaml_quoted(run_id)));
        out.push_str("signature:\n");
        out.push_str(&format!(
            "  inputs: {}\n",
            yaml_quoted(&serde_json::Value::Array(inputs).to_string())
        ));
        out.push_str(&format!(
            "  outputs: {}\n",
            yaml_quoted(&outputs.to_string())
        ));
        out.push_str("  params: null\n");
        out.push_str(&format!("utc_time_created: {}\n", yaml_quoted(&created)));
        out
    }
}

/// A YAML single-quoted scalar (a quote inside is doubled), safe for any text.
fn yaml_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''").replace('\n', " "))
}

/// A UUID-4-shaped hex id (as MLflow's `uuid4().hex`), derived from the run and the training
/// record so that rewriting the file for the same model gives the same id.
fn model_uuid(run_id: &str, provenance: &Provenance) -> String {
    let mut hasher = Sha256::new();
    hasher.update(run_id.as_bytes());
    hasher.update([0]);
    hasher.update(provenance.trained_at.to_rfc3339().as_bytes());
    hasher.update([0]);
    hasher.update(provenance.data_fingerprint.as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    hex::encode(bytes)
}

/// The path of the first null inside the numeric parts of an artifact, if any. `metrics` and
/// `provenance.version` may be null as a whole, so only nulls below them count.
fn find_null_number(value: &serde_json::Value, path: &str) -> Option<String> {
    match value {
        serde_json::Value::Null => {
            if path == "metrics" || path == "provenance.version" {
                None
            } else {
                Some(path.to_string())
            }
        }
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_null_number(v, &format!("{path}[{i}]"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
            let child = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            find_null_number(v, &child)
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
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
}
