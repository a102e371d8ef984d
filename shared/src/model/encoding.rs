//! Encoding of the 20 schema features into model columns.
//!
//! Numeric and ordinal features are standardised with the training mean and population
//! standard deviation (as scikit-learn's `StandardScaler`; a constant column gets std 1).
//! Nominal features are one-hot over every schema code, so a code unseen in training still
//! has a column (its weight stays at zero under L2). Binary features pass through.

use std::ops::Range;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::ModelError;
use crate::schema::{Applicant, FeatureKind, LabeledRecord, FEATURES, FEATURE_COUNT};

/// How one feature becomes model columns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "encoding", rename_all = "snake_case")]
pub enum FeatureEncoding {
    /// One column: (x − mean) / std.
    Standardized {
        /// Training mean.
        mean: f64,
        /// Training population standard deviation (1 when it was 0).
        std: f64,
    },
    /// One column per code, 1 where the value equals the code.
    OneHot {
        /// The feature's schema codes, in schema order.
        codes: Vec<i64>,
    },
    /// One column: the value as is.
    Passthrough,
}

impl FeatureEncoding {
    /// Number of model columns this encoding produces.
    pub fn width(&self) -> usize {
        match self {
            FeatureEncoding::OneHot { codes } => codes.len(),
            FeatureEncoding::Standardized { .. } | FeatureEncoding::Passthrough => 1,
        }
    }
}

/// One feature's encoding with the name and kind it was fitted for (kept in the artifact so a
/// schema change is caught on load).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncodedFeature {
    /// Schema name.
    pub name: String,
    /// Schema kind.
    pub kind: FeatureKind,
    /// Fitted parameters.
    #[serde(flatten)]
    pub encoding: FeatureEncoding,
}

/// The fitted encoder for all 20 features, in schema order.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoder {
    features: Vec<EncodedFeature>,
    /// `offsets[i]..offsets[i + 1]` are feature i's columns.
    offsets: [usize; FEATURE_COUNT + 1],
}

impl Encoder {
    /// Fits standardisation parameters on the given applicants.
    pub fn fit<'a, I>(applicants: I) -> Result<Self, ModelError>
    where
        I: IntoIterator<Item = &'a Applicant>,
        I::IntoIter: Clone,
    {
        let rows = applicants.into_iter();
        let n = rows.clone().count();
        if n == 0 {
            return Err(ModelError::Empty("fit the encoder on"));
        }
        if let Some((row, i)) = rows
            .clone()
            .enumerate()
            .find_map(|(r, a)| a.0.iter().position(|v| !v.is_finite()).map(|i| (r, i)))
        {
            return Err(ModelError::NonFinite(format!(
                "training row {row}, feature {}",
                FEATURES[i].name
            )));
        }
        let count = n as f64;
        let features = FEATURES
            .iter()
            .enumerate()
            .map(|(i, feature)| {
                let encoding = match feature.kind {
                    FeatureKind::Numeric | FeatureKind::Ordinal => {
                        // Two passes: exact enough, and the data is small.
                        let mean = rows.clone().map(|a| a.0[i]).sum::<f64>() / count;
                        let var =
                            rows.clone().map(|a| (a.0[i] - mean).powi(2)).sum::<f64>() / count;
                        let std = var.sqrt();
                        FeatureEncoding::Standardized {
                            mean,
                            std: if std > 0.0 { std } else { 1.0 },
                        }
                    }
                    FeatureKind::Nominal => FeatureEncoding::OneHot {
                        codes: feature.codes(),
                    },
                    FeatureKind::Binary => FeatureEncoding::Passthrough,
                };
                EncodedFeature {
                    name: feature.name.to_string(),
                    kind: feature.kind,
                    encoding,
                }
            })
            .collect();
        Self::from_features(features)
    }

    /// Rebuilds an encoder from stored parameters, checking them against the schema.
    pub fn from_features(features: Vec<EncodedFeature>) -> Result<Self, ModelError> {
        if features.len() != FEATURE_COUNT {
            return Err(ModelError::InvalidArtifact(format!(
                "the encoding lists {} features, the schema has {FEATURE_COUNT}",
                features.len()
            )));
        }
        let mut offsets = [0; FEATURE_COUNT + 1];
        for (i, (stored, schema)) in features.iter().zip(FEATURES.iter()).enumerate() {
            if stored.name != schema.name {
                return Err(ModelError::InvalidArtifact(format!(
                    "encoding {i} is for {:?}, the schema's feature {i} is {:?}",
                    stored.name, schema.name
                )));
            }
            if stored.kind != schema.kind {
                return Err(ModelError::InvalidArtifact(format!(
                    "{} is encoded as {}, the schema says {}",
                    schema.name, stored.kind, schema.kind
                )));
            }
            let expected_shape = match (&stored.encoding, schema.kind) {
                (
                    FeatureEncoding::Standardized { mean, std },
                    FeatureKind::Numeric | FeatureKind::Ordinal,
                ) => {
                    if !mean.is_finite() || !std.is_finite() || *std <= 0.0 {
                        return Err(ModelError::InvalidArtifact(format!(
                            "{} has mean {mean} and std {std}; both must be finite and std positive",
                            schema.name
                        )));
                    }
                    true
                }
                (FeatureEncoding::OneHot { codes }, FeatureKind::Nominal) => {
                    if *codes != schema.codes() {
                        return Err(ModelError::InvalidArtifact(format!(
                            "{} is one-hot over codes {codes:?}, the schema's codes are {:?}",
                            schema.name,
                            schema.codes()
                        )));
                    }
                    true
                }
                (FeatureEncoding::Passthrough, FeatureKind::Binary) => true,
                _ => false,
            };
            if !expected_shape {
                return Err(ModelError::InvalidArtifact(format!(
                    "{} ({}) has the wrong encoding {:?}",
                    schema.name, schema.kind, stored.encoding
                )));
            }
            offsets[i + 1] = offsets[i] + stored.encoding.width();
        }
        Ok(Encoder { features, offsets })
    }

    /// The per-feature encodings, in schema order.
    pub fn features(&self) -> &[EncodedFeature] {
        &self.features
    }

    /// Total number of model columns.
    pub fn n_columns(&self) -> usize {
        self.offsets[FEATURE_COUNT]
    }

    /// The first column of feature `i` (schema index).
    pub fn offset(&self, i: usize) -> usize {
        self.offsets[i]
    }

    /// The columns of feature `i` (schema index).
    pub fn columns_of(&self, i: usize) -> Range<usize> {
        self.offsets[i]..self.offsets[i + 1]
    }

    /// Column names: the feature name, or `name=code` for a one-hot column.
    pub fn column_names(&self) -> Vec<String> {
        let mut names = Vec::with_capacity(self.n_columns());
        for feature in &self.features {
            match &feature.encoding {
                FeatureEncoding::OneHot { codes } => {
                    names.extend(codes.iter().map(|c| format!("{}={c}", feature.name)));
                }
                _ => names.push(feature.name.clone()),
            }
        }
        names
    }

    /// Encodes one applicant into `out`, which must hold [`Encoder::n_columns`] values
    /// (a shorter slice leaves the remaining columns unwritten rather than panicking).
    pub fn encode_into(&self, applicant: &Applicant, out: &mut [f64]) {
        for (i, feature) in self.features.iter().enumerate() {
            let x = applicant.0[i];
            let Some(slot) = out.get_mut(self.columns_of(i)) else {
                return;
            };
            match &feature.encoding {
                FeatureEncoding::Standardized { mean, std } => slot[0] = (x - mean) / std,
                FeatureEncoding::OneHot { codes } => {
                    for (cell, code) in slot.iter_mut().zip(codes) {
                        *cell = if *code as f64 == x { 1.0 } else { 0.0 };
                    }
                }
                FeatureEncoding::Passthrough => slot[0] = x,
            }
        }
    }

    /// Encodes records into a row-major matrix.
    pub fn encode_records<'a, I>(&self, records: I) -> Array2<f64>
    where
        I: ExactSizeIterator<Item = &'a LabeledRecord>,
    {
        let n = records.len();
        let width = self.n_columns();
        let mut matrix = Array2::zeros((n, width));
        for (mut row, record) in matrix.rows_mut().into_iter().zip(records) {
            if let Some(slice) = row.as_slice_mut() {
                self.encode_into(&record.applicant, slice);
            }
        }
        matrix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applicants() -> Vec<Applicant> {
        let mut a = [0.0; FEATURE_COUNT];
        for (v, f) in a.iter_mut().zip(FEATURES.iter()) {
            *v = match f.kind {
                FeatureKind::Numeric => 10.0,
                _ => f.codes()[0] as f64,
            };
        }
        let mut b = a;
        for (v, f) in b.iter_mut().zip(FEATURES.iter()) {
            *v = match f.kind {
                FeatureKind::Numeric => 20.0,
                _ => *f.codes().last().unwrap() as f64,
            };
        }
        let c = b;
        vec![Applicant(a), Applicant(b), Applicant(c)]
    }

    #[test]
    fn column_count_follows_the_schema() {
        let encoder = Encoder::fit(&applicants()).unwrap();
        let expected: usize = FEATURES
            .iter()
            .map(|f| match f.kind {
                FeatureKind::Nominal => f.codes().len(),
                _ => 1,
            })
            .sum();
        assert_eq!(encoder.n_columns(), expected);
        assert_eq!(encoder.column_names().len(), expected);
        let mut names = encoder.column_names();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), expected, "column names are unique");
    }

    #[test]
    fn standardises_with_population_std_and_one_hots_every_code() {
        let data = applicants();
        let encoder = Encoder::fit(&data).unwrap();
        let numeric = FEATURES
            .iter()
            .position(|f| f.kind == FeatureKind::Numeric)
            .unwrap();
        // Values 10, 20, 20: mean 50/3, population variance 200/9.
        match &encoder.features()[numeric].encoding {
            FeatureEncoding::Standardized { mean, std } => {
                assert!((mean - 50.0 / 3.0).abs() < 1e-12);
                assert!((std - (200.0f64 / 9.0).sqrt()).abs() < 1e-12);
            }
            other => panic!("{other:?}"),
        }
        let mut row = vec![f64::NAN; encoder.n_columns()];
        encoder.encode_into(&data[0], &mut row);
        assert!(row.iter().all(|v| v.is_finite()));
        let z = (10.0 - 50.0 / 3.0) / (200.0f64 / 9.0).sqrt();
        assert!((row[encoder.offset(numeric)] - z).abs() < 1e-12);
        for (i, f) in FEATURES.iter().enumerate() {
            let cols = &row[encoder.columns_of(i)];
            match f.kind {
                FeatureKind::Nominal => {
                    // The first code is hot, every other code (even ones never seen) has a 0.
                    assert_eq!(cols.len(), f.codes().len());
                    assert_eq!(cols[0], 1.0);
                    assert_eq!(cols.iter().sum::<f64>(), 1.0);
                }
                FeatureKind::Binary => assert_eq!(cols, &[f.codes()[0] as f64]),
                _ => assert_eq!(cols.len(), 1),
            }
        }
    }

    #[test]
    fn constant_columns_get_std_one() {
        let one = applicants()[0];
        let encoder = Encoder::fit([one, one].iter()).unwrap();
        for f in encoder.features() {
            if let FeatureEncoding::Standardized { std, .. } = f.encoding {
                assert_eq!(std, 1.0);
            }
        }
        let mut row = vec![0.0; encoder.n_columns()];
        encoder.encode_into(&one, &mut row);
        assert!(row.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn rejects_empty_and_non_finite_training_data() {
        let none: Vec<Applicant> = Vec::new();
        assert!(matches!(Encoder::fit(&none), Err(ModelError::Empty(_))));
        let mut bad = applicants();
        bad[1].0[4] = f64::NAN;
        let err = Encoder::fit(&bad).unwrap_err();
        assert!(err.to_string().contains(FEATURES[4].name), "{err}");
    }

    #[test]
    fn from_features_rejects_a_schema_mismatch() {
        let encoder = Encoder::fit(&applicants()).unwrap();
        let mut features = encoder.features().to_vec();
        features.swap(0, 1);
        assert!(Encoder::from_features(features).is_err());
        let mut features = encoder.features().to_vec();
        let nominal = FEATURES
            .iter()
            .position(|f| f.kind == FeatureKind::Nominal)
            .unwrap();
        features[nominal].encoding = FeatureEncoding::OneHot { codes: vec![1, 2] };
        let err = Encoder::from_features(features).unwrap_err();
        assert!(err.to_string().contains("codes"), "{err}");
        let mut features = encoder.features().to_vec();
        features.pop();
        assert!(Encoder::from_features(features).is_err());
    }
}
