//! Data quality of a file or a window of traffic: per feature, how many values were missing
//! or outside the feature's domain, with a few examples a person can find again.
//!
//! Training data is read strictly (one bad cell refuses the file); data that is only *looked
//! at* (the current side of a drift check, the traffic a monitor examines) is read tolerantly:
//! a bad cell becomes a gap that the tests leave out, and is counted here instead, because a
//! drifted feed that starts sending a new code is exactly what drift checks exist to notice.

use serde::{Deserialize, Serialize};

use crate::schema::{FEATURES, FEATURE_COUNT};

/// How many bad cells of one feature are kept as examples.
pub const QUALITY_EXAMPLES: usize = 5;

/// One bad cell, kept as an example.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct QualityExample {
    /// In a file: the line the row starts on (header = 1), as a text editor counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// In served traffic: the prediction whose logged input it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_id: Option<String>,
    /// The cell as written (empty for a missing value).
    pub value: String,
    /// The rule it broke.
    pub rule: String,
}

/// The quality of one feature's values.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct FeatureQuality {
    /// Feature name, as in the schema.
    pub feature: String,
    /// Empty cells.
    pub missing: u64,
    /// Cells that are not a number of the feature's domain (text, a fraction, an unknown code,
    /// a value out of range).
    pub out_of_domain: u64,
    /// `missing` over the rows examined (0 when there are none).
    pub missing_share: f64,
    /// `out_of_domain` over the rows examined (0 when there are none).
    pub out_of_domain_share: f64,
    /// The first few bad cells, in file order.
    pub examples: Vec<QualityExample>,
}

/// Data quality over a set of rows, every feature listed in schema order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct DataQuality {
    /// Rows examined.
    pub rows: u64,
    /// Rows with at least one missing or out-of-domain value. Their good values are still
    /// tested; their bad ones are left out of their feature's test.
    pub rows_with_issues: u64,
    /// One entry per feature, in schema order.
    pub features: Vec<FeatureQuality>,
}

impl DataQuality {
    /// The data quality of `rows` rows without a missing or out-of-domain value.
    pub fn clean(rows: u64) -> Self {
        QualityTally::clean(rows)
    }

    /// True when no value was missing or out of domain.
    pub fn is_clean(&self) -> bool {
        self.rows_with_issues == 0
    }

    /// The features with at least one bad value.
    pub fn with_issues(&self) -> impl Iterator<Item = &FeatureQuality> {
        self.features
            .iter()
            .filter(|f| f.missing + f.out_of_domain > 0)
    }
}

/// Where a bad cell is.
#[derive(Clone, Copy, Debug)]
pub(crate) enum CellAt {
    /// A file's line.
    Line(u64),
    /// A logged prediction.
    Prediction(uuid::Uuid),
}

/// Counts bad cells while a file is read (see [`crate::dataset::read_applicants_tolerant`]).
#[derive(Debug)]
pub(crate) struct QualityTally {
    rows: u64,
    rows_with_issues: u64,
    missing: [u64; FEATURE_COUNT],
    out_of_domain: [u64; FEATURE_COUNT],
    examples: Vec<Vec<QualityExample>>,
    row_has_issue: bool,
}

impl QualityTally {
    pub(crate) fn new() -> Self {
        QualityTally {
            rows: 0,
            rows_with_issues: 0,
            missing: [0; FEATURE_COUNT],
            out_of_domain: [0; FEATURE_COUNT],
            examples: vec![Vec::new(); FEATURE_COUNT],
            row_has_issue: false,
        }
    }

    /// Records one bad cell of feature `index` (schema order).
    pub(crate) fn bad_cell(&mut self, index: usize, at: CellAt, cell: &str, rule: &str) {
        let (Some(missing), Some(outside), Some(examples)) = (
            self.missing.get_mut(index),
            self.out_of_domain.get_mut(index),
            self.examples.get_mut(index),
        ) else {
            return;
        };
        let (counter, rule) = if cell.trim().is_empty() {
            (missing, "missing value".to_string())
        } else {
            (outside, rule.to_string())
        };
        *counter += 1;
        if examples.len() < QUALITY_EXAMPLES {
            let (line, prediction_id) = match at {
                CellAt::Line(line) => (Some(line), None),
                CellAt::Prediction(id) => (None, Some(id.hyphenated().to_string())),
            };
            examples.push(QualityExample {
                line,
                prediction_id,
                value: cell.to_string(),
                rule,
            });
        }
        self.row_has_issue = true;
    }

    /// Closes the current row.
    pub(crate) fn end_row(&mut self) {
        self.rows += 1;
        if std::mem::take(&mut self.row_has_issue) {
            self.rows_with_issues += 1;
        }
    }

    /// The data quality of `rows` rows without a bad cell.
    pub(crate) fn clean(rows: u64) -> DataQuality {
        QualityTally {
            rows,
            ..QualityTally::new()
        }
        .finish()
    }

    pub(crate) fn finish(self) -> DataQuality {
        let share = |count: u64| {
            if self.rows == 0 {
                0.0
            } else {
                count as f64 / self.rows as f64
            }
        };
        let features = FEATURES
            .iter()
            .zip(self.examples)
            .enumerate()
            .map(|(j, (feature, examples))| FeatureQuality {
                feature: feature.name.to_string(),
                missing: self.missing[j],
                out_of_domain: self.out_of_domain[j],
                missing_share: share(self.missing[j]),
                out_of_domain_share: share(self.out_of_domain[j]),
                examples,
            })
            .collect();
        DataQuality {
            rows: self.rows,
            rows_with_issues: self.rows_with_issues,
            features,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_counted_by_kind_and_rows_once() {
        let mut tally = QualityTally::new();
        tally.bad_cell(0, CellAt::Line(2), "9", "must be one of 1, 2, 3, 4");
        tally.bad_cell(12, CellAt::Line(2), " ", "must be an integer");
        tally.end_row();
        tally.end_row();
        for line in 4..12 {
            tally.bad_cell(0, CellAt::Line(line), "x", "must be one of 1, 2, 3, 4");
            tally.end_row();
        }
        let quality = tally.finish();
        assert_eq!(quality.rows, 10);
        assert_eq!(quality.rows_with_issues, 9);
        assert_eq!(quality.features.len(), FEATURE_COUNT);
        let first = &quality.features[0];
        assert_eq!((first.missing, first.out_of_domain), (0, 9));
        assert_eq!(first.out_of_domain_share, 0.9);
        assert_eq!(first.examples.len(), QUALITY_EXAMPLES);
        assert_eq!(first.examples[0].line, Some(2));
        let age = &quality.features[12];
        assert_eq!((age.missing, age.out_of_domain), (1, 0));
        assert_eq!(age.examples[0].rule, "missing value");
        assert_eq!(quality.with_issues().count(), 2);
        assert!(!quality.is_clean());
    }
}
