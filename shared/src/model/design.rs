//! The training records encoded once, compactly, and shared by every fold and fit.
//!
//! A one-hot matrix of the 20 features has about 60 columns, of which 21 are non-zero in any
//! row. Stored as such it costs 480 bytes a row and every fold copied 4/5 of it. Here a row is
//! its 11 single-column values (numeric, ordinal and binary features, as they are: no
//! standardisation yet) and, for each of the 9 nominal features, the model column its value
//! switches on: 106 bytes a row, built once. A fold is a list of row indices. Standardisation
//! depends on the rows a model is fitted on, so it is not baked in: [`Design::encoder`] computes
//! it for a set of rows exactly as [`Encoder::fit`] does on those records, and the solver
//! applies it on the fly (a standardised column is an affine function of the raw one).
//!
//! Identical rows (same values, same label) are grouped once as well: the folds keep a group
//! together, and a fit passes over one row of each group weighted by its copies
//! ([`Design::distinct`]). The seed's reference file repeats each of its 1,000 applicants about
//! ten times, so a fit there does a tenth of the work.

use super::encoding::{EncodedFeature, Encoder, FeatureEncoding};
use super::split::{group_rows, Groups};
use super::ModelError;
use crate::schema::{FeatureKind, LabeledRecord, FEATURES};

/// A row set: indices into the design, ascending (the records' order).
pub(crate) type Rows = [u32];

/// Where each stored value goes in the model's columns.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    /// Schema index of each single-column feature, in schema order.
    pub dense_features: Vec<usize>,
    /// Model column of each single-column feature.
    pub dense_columns: Vec<usize>,
    /// Whether each single-column feature is standardised (numeric, ordinal) or used as is.
    pub standardized: Vec<bool>,
    /// Schema index of each nominal feature, in schema order.
    pub nominal_features: Vec<usize>,
    /// Number of model columns (the encoder's).
    pub n_columns: usize,
}

impl Layout {
    fn of_schema() -> Self {
        let mut layout = Layout {
            dense_features: Vec::new(),
            dense_columns: Vec::new(),
            standardized: Vec::new(),
            nominal_features: Vec::new(),
            n_columns: 0,
        };
        for (i, feature) in FEATURES.iter().enumerate() {
            match feature.kind {
                FeatureKind::Nominal => {
                    layout.nominal_features.push(i);
                    layout.n_columns += feature.codes().len();
                }
                kind => {
                    layout.dense_features.push(i);
                    layout.dense_columns.push(layout.n_columns);
                    layout.standardized.push(kind != FeatureKind::Binary);
                    layout.n_columns += 1;
                }
            }
        }
        layout
    }

    /// The intercept's index in the solver's parameter vector (after the model columns).
    pub fn intercept(&self) -> usize {
        self.n_columns
    }

    /// A parameter slot that is always zero: the column of a nominal value that is no schema
    /// code (the one-hot encoding gives it no column). Pointing at it keeps the loops free of
    /// branches.
    pub fn no_column(&self) -> usize {
        self.n_columns + 1
    }
}

/// The training records, encoded once.
#[derive(Clone, Debug)]
pub(crate) struct Design {
    layout: Layout,
    /// `rows × dense_width` raw values of the single-column features, row-major.
    dense: Vec<f64>,
    /// `rows × nominal_width` model columns switched on by the nominal values, row-major.
    columns: Vec<u16>,
    /// Whether each row is fraud.
    fraud: Vec<bool>,
    /// The groups of identical rows.
    groups: Groups,
}

/// The distinct rows of a row set and how many times each occurs in it.
pub(crate) struct Distinct {
    /// The first row of each group present, in the row set's order.
    pub rows: Vec<u32>,
    /// The number of rows of the set in that row's group (f32: linfa's sample weights).
    pub copies: Vec<f32>,
}

impl Design {
    /// Encodes `records` (validated: finite values).
    pub fn new(records: &[LabeledRecord]) -> Result<Self, ModelError> {
        let layout = Layout::of_schema();
        if records.len() > u32::MAX as usize {
            return Err(ModelError::InvalidConfig(format!(
                "{} training rows are more than the {} one fit can index",
                records.len(),
                u32::MAX
            )));
        }
        let no_column = u16::try_from(layout.no_column())
            .map_err(|_| ModelError::InvalidConfig("too many model columns".into()))?;
        // Column of each code of each nominal feature.
        let code_columns: Vec<Vec<(f64, u16)>> = {
            let mut offset = 0usize;
            let mut per_feature = Vec::new();
            for feature in FEATURES.iter() {
                let codes = match feature.kind {
                    FeatureKind::Nominal => feature.codes(),
                    _ => Vec::new(),
                };
                if feature.kind == FeatureKind::Nominal {
                    per_feature.push(
                        codes
                            .iter()
                            .enumerate()
                            .map(|(k, c)| (*c as f64, (offset + k) as u16))
                            .collect(),
                    );
                }
                offset += if feature.kind == FeatureKind::Nominal {
                    codes.len()
                } else {
                    1
                };
            }
            per_feature
        };
        let mut dense = Vec::with_capacity(records.len() * layout.dense_features.len());
        let mut columns = Vec::with_capacity(records.len() * layout.nominal_features.len());
        let mut fraud = Vec::with_capacity(records.len());
        for record in records {
            let values = &record.applicant.0;
            dense.extend(layout.dense_features.iter().map(|&i| values[i]));
            columns.extend(
                layout
                    .nominal_features
                    .iter()
                    .zip(&code_columns)
                    .map(|(&i, codes)| {
                        codes
                            .iter()
                            .find(|(code, _)| *code == values[i])
                            .map_or(no_column, |(_, column)| *column)
                    }),
            );
            fraud.push(record.is_fraud());
        }
        Ok(Design {
            layout,
            dense,
            columns,
            fraud,
            groups: group_rows(records),
        })
    }

    /// The groups of identical rows (what the splits deal out whole).
    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// One row of each group of identical rows in `rows`, with its number of copies there.
    pub fn distinct(&self, rows: &Rows) -> Distinct {
        let mut copies_of_group = vec![0u32; self.groups.len()];
        for &r in rows {
            copies_of_group[self.groups.group_of_row[r as usize] as usize] += 1;
        }
        let mut distinct = Distinct {
            rows: Vec::new(),
            copies: Vec::new(),
        };
        for &r in rows {
            let copies = &mut copies_of_group[self.groups.group_of_row[r as usize] as usize];
            if *copies > 0 {
                distinct.rows.push(r);
                // f32 counts are exact up to 2^24 copies of one row, and within 6e-8 beyond.
                distinct.copies.push(*copies as f32);
                *copies = 0;
            }
        }
        distinct
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn len(&self) -> usize {
        self.fraud.len()
    }

    /// Every row, as a row set.
    pub fn all_rows(&self) -> Vec<u32> {
        (0..self.len() as u32).collect()
    }

    /// Row `r`'s single-column values.
    #[inline]
    pub fn dense(&self, r: u32) -> &[f64] {
        let width = self.layout.dense_features.len();
        let start = r as usize * width;
        &self.dense[start..start + width]
    }

    /// Row `r`'s nominal columns.
    #[inline]
    pub fn columns(&self, r: u32) -> &[u16] {
        let width = self.layout.nominal_features.len();
        let start = r as usize * width;
        &self.columns[start..start + width]
    }

    #[inline]
    pub fn is_fraud(&self, r: u32) -> bool {
        self.fraud[r as usize]
    }

    /// The encoder [`Encoder::fit`] would fit on these rows' records: the same sums in the
    /// same order, so the same means and standard deviations to the last bit.
    pub fn encoder(&self, rows: &Rows) -> Result<Encoder, ModelError> {
        if rows.is_empty() {
            return Err(ModelError::Empty("fit the encoder on"));
        }
        let count = rows.len() as f64;
        let mut features: Vec<EncodedFeature> = FEATURES
            .iter()
            .map(|feature| EncodedFeature {
                name: feature.name.to_string(),
                kind: feature.kind,
                encoding: match feature.kind {
                    FeatureKind::Nominal => FeatureEncoding::OneHot {
                        codes: feature.codes(),
                    },
                    _ => FeatureEncoding::Passthrough,
                },
            })
            .collect();
        for (slot, &i) in self.layout.dense_features.iter().enumerate() {
            if !self.layout.standardized[slot] {
                continue;
            }
            let value = |r: &u32| self.dense(*r)[slot];
            let mean = rows.iter().map(value).sum::<f64>() / count;
            let var = rows.iter().map(|r| (value(r) - mean).powi(2)).sum::<f64>() / count;
            let std = var.sqrt();
            features[i].encoding = FeatureEncoding::Standardized {
                mean,
                std: if std > 0.0 { std } else { 1.0 },
            };
        }
        Encoder::from_features(features)
    }

    /// The affine map from stored values to the encoder's columns: for each single-column
    /// feature, `(scale, shift)` with `encoded = scale · stored + shift`.
    pub fn affine(&self, encoder: &Encoder) -> Vec<(f64, f64)> {
        self.layout
            .dense_features
            .iter()
            .map(|&i| match encoder.features()[i].encoding {
                FeatureEncoding::Standardized { mean, std } => (1.0 / std, -mean / std),
                _ => (1.0, 0.0),
            })
            .collect()
    }

    /// Mean of each encoded model column over `rows` (what reason codes compare with).
    pub fn column_means(&self, encoder: &Encoder, rows: &Rows) -> Vec<f64> {
        let mut sums = vec![0.0; self.layout.no_column() + 1];
        let standardized: Vec<Option<(f64, f64)>> = self
            .layout
            .dense_features
            .iter()
            .map(|&i| match encoder.features()[i].encoding {
                FeatureEncoding::Standardized { mean, std } => Some((mean, std)),
                _ => None,
            })
            .collect();
        for &r in rows {
            for ((&column, &x), scaling) in self
                .layout
                .dense_columns
                .iter()
                .zip(self.dense(r))
                .zip(&standardized)
            {
                sums[column] += match scaling {
                    Some((mean, std)) => (x - mean) / std,
                    None => x,
                };
            }
            for &column in self.columns(r) {
                sums[column as usize] += 1.0;
            }
        }
        let count = rows.len().max(1) as f64;
        sums.truncate(self.layout.n_columns);
        sums.into_iter().map(|s| s / count).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testdata;
    use ndarray::Axis;

    #[test]
    fn the_encoder_of_a_row_set_is_encoder_fit_on_those_records() {
        let records = testdata::records(300, 3, 5);
        let design = Design::new(&records).unwrap();
        let rows: Vec<u32> = (0..records.len() as u32).filter(|r| r % 3 != 1).collect();
        let subset: Vec<LabeledRecord> = rows.iter().map(|&r| records[r as usize]).collect();
        let expected = Encoder::fit(subset.iter().map(|r| &r.applicant)).unwrap();
        assert_eq!(design.encoder(&rows).unwrap(), expected);
    }

    #[test]
    fn stored_rows_reproduce_the_one_hot_matrix_and_its_means() {
        let records = testdata::records(200, 2, 9);
        let design = Design::new(&records).unwrap();
        let rows = design.all_rows();
        let encoder = design.encoder(&rows).unwrap();
        let matrix = encoder.encode_records(records.iter());
        let affine = design.affine(&encoder);
        for (r, expected) in matrix.rows().into_iter().enumerate() {
            let mut row = vec![0.0; design.layout().no_column() + 1];
            let r = r as u32;
            for ((&column, &x), (scale, shift)) in design
                .layout()
                .dense_columns
                .iter()
                .zip(design.dense(r))
                .zip(&affine)
            {
                row[column] = scale * x + shift;
            }
            for &column in design.columns(r) {
                row[column as usize] = 1.0;
            }
            for (got, want) in row.iter().zip(expected.iter()) {
                assert!((got - want).abs() < 1e-12, "row {r}: {got} vs {want}");
            }
            assert_eq!(design.is_fraud(r), records[r as usize].is_fraud());
        }
        let means = matrix.mean_axis(Axis(0)).unwrap();
        for (got, want) in design
            .column_means(&encoder, &rows)
            .iter()
            .zip(means.iter())
        {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn a_value_that_is_no_code_switches_no_column_on() {
        let mut records = testdata::records(20, 1, 3);
        let nominal = FEATURES
            .iter()
            .position(|f| f.kind == FeatureKind::Nominal)
            .unwrap();
        records[0].applicant.0[nominal] = 999.0;
        let design = Design::new(&records).unwrap();
        assert_eq!(
            design.columns(0)[0] as usize,
            design.layout().no_column(),
            "the value 999 is no code"
        );
    }
}
