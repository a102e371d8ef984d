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

use super::calibration::Calibration;
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
    /// The recalibration every probability goes through (Platt scaling on the out-of-fold
    /// log-odds), when one was configured; absent: the logistic regression's own
    /// probabilities (and in artifacts written before calibration existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
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
            calibration: model.calibration().copied(),
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
        .and_then(|model| model.with_calibration(self.calibration))
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
                m.expected_calibration_error,
            ];
            let bins = m.reliability.iter().flat_map(|b| {
                [b.lower, b.upper]
                    .into_iter()
                    .chain(b.mean_predicted)
                    .chain(b.observed_rate)
            });
            if !values.iter().copied().chain(bins).all(f64::is_finite) {
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
#[path = "artifact_tests.rs"]
mod tests;
