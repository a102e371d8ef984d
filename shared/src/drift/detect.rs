//! The drift check over all 20 features and its report.

use serde::{Deserialize, Serialize};

use super::categorical::{categorical_feature, CategoryCounts};
use super::distribution::{decile_distribution, FeatureDistribution};
use super::hypothesis::{
    moments, moments_of_groups, non_finite_note, welch_finite, welch_of_moments,
};
use super::psi::{decile_bins, decile_bins_grouped, psi_from_counts, DecileBins};
use super::{adjust_p_values, Correction, DriftConfig, TestOutcome};
use crate::dataset::DataQuality;
use crate::schema::{Applicant, Feature, FeatureKind, FEATURES};

/// The drift verdict for one feature.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct FeatureDrift {
    /// Feature name, as in the schema.
    pub feature: String,
    /// Feature kind, which chose the test.
    pub kind: FeatureKind,
    /// `welch_t`, `two_proportion_z`, `chi_square` or `mann_whitney_u`.
    pub test: String,
    /// t, z, chi-square, or U of the reference sample.
    pub statistic: f64,
    /// Two-sided p-value of this feature's test alone.
    pub p_value: f64,
    /// The p-value adjusted for the 20 tests by the report's correction.
    pub adjusted_p_value: f64,
    /// Population stability index (effect size; see [`super::population_stability_index`]).
    pub psi: f64,
    /// adjusted p < alpha, and psi >= min_psi when a PSI threshold is set.
    pub significant: bool,
    /// Reference values the test used.
    pub reference_n: usize,
    /// Current values the test used.
    pub current_n: usize,
    /// Mean of the finite reference values (for a 0/1 binary feature, the share of 1s); 0 if none.
    pub reference_mean: f64,
    /// Mean of the finite current values; 0 if none.
    pub current_mean: f64,
    /// Why a result is a convention (degenerate input) or what was left out of the test.
    pub note: Option<String>,
    /// Both sides' counts per code or per reference-decile bin, for charts (absent in reports
    /// written before it existed, and for a numeric feature with no value on a side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<FeatureDistribution>,
}

/// The drift check of a current data set against a reference one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct DriftReport {
    /// True when at least one feature drifted significantly.
    pub drift: bool,
    /// The multiple-testing correction applied.
    pub correction: Correction,
    /// The significance level the adjusted p-values were compared with.
    pub alpha: f64,
    /// The PSI a feature also needed to count as drifted, if any.
    pub min_psi: Option<f64>,
    /// Rows in the reference data.
    pub reference_rows: usize,
    /// Rows in the current data.
    pub current_rows: usize,
    /// One entry per feature, in schema order: all 20 are tested.
    pub features: Vec<FeatureDrift>,
    /// Missing and out-of-domain values in the current data, when it was read tolerantly
    /// (`fraudctl drift` without `--strict`): their cells were left out of their feature's test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_quality: Option<DataQuality>,
}

/// Tests every feature of `current` against `reference` with its kind's test, adjusts the 20
/// p-values with `config.correction`, and flags features whose adjusted p is below
/// `config.alpha` (and, when `config.min_psi` is set, whose PSI reaches it).
///
/// A feature with fewer than 2 usable values on a side is not tested (p = 1, with a note), so a
/// single new row can never signal drift. Non-finite values are left out and counted in the
/// note. Binary features test the share of their highest code (1) among values that are one of
/// their codes; nominal and ordinal features test every value seen, codes or not.
///
/// Cost: one pass over the rows for the 15 categorical features together (counts per code),
/// then one column at a time for the 5 numeric ones; no copy of the rows is made.
pub fn detect_drift(
    reference: &[Applicant],
    current: &[Applicant],
    config: &DriftConfig,
) -> DriftReport {
    let mut counters: Vec<(usize, CategoryCounts)> = FEATURES
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kind != FeatureKind::Numeric)
        .map(|(j, f)| (j, CategoryCounts::new(f)))
        .collect();
    for (side, rows) in [reference, current].into_iter().enumerate() {
        for row in rows {
            for (j, counts) in counters.iter_mut() {
                counts.add(side, row.0[*j]);
            }
        }
    }
    let mut counters = counters.into_iter().peekable();

    let mut partials = Vec::with_capacity(FEATURES.len());
    // Reused column buffers for the numeric features.
    let mut ref_column: Vec<f64> = Vec::new();
    let mut cur_column: Vec<f64> = Vec::new();
    for (j, feature) in FEATURES.iter().enumerate() {
        let partial = if feature.kind == FeatureKind::Numeric {
            fill_column(&mut ref_column, reference, j);
            fill_column(&mut cur_column, current, j);
            let non_finite = [
                reference.len() - ref_column.len(),
                current.len() - cur_column.len(),
            ];
            numeric_feature(&mut ref_column, &cur_column, non_finite)
        } else {
            match counters.next_if(|(k, _)| *k == j) {
                Some((_, counts)) => categorical_feature(feature, &counts),
                // Unreachable: every non-numeric feature has a counter, in schema order.
                None => Partial::untested("internal: no counts for this feature"),
            }
        };
        partials.push((feature, partial));
    }
    finish_report(partials, config, reference.len(), current.len())
}

/// [`detect_drift`] with the current side given per feature (schema order) as distinct values
/// and their counts, as the monitor's SQL aggregates return them; a missing or unusable cell
/// is a NaN value. The reference is rows as before. Same tests, same report: categorical
/// features to the bit, numeric ones to rounding (their sums of squared deviations are added
/// per distinct value instead of per row).
pub fn detect_drift_grouped(
    reference: &[Applicant],
    current: &[Vec<(f64, u64)>],
    current_rows: usize,
    config: &DriftConfig,
) -> DriftReport {
    let empty = Vec::new();
    let mut partials = Vec::with_capacity(FEATURES.len());
    let mut ref_column: Vec<f64> = Vec::new();
    for (j, feature) in FEATURES.iter().enumerate() {
        let groups = current.get(j).unwrap_or(&empty);
        let partial = if feature.kind == FeatureKind::Numeric {
            fill_column(&mut ref_column, reference, j);
            let finite: Vec<(f64, u64)> = groups
                .iter()
                .filter(|g| g.0.is_finite())
                .map(|&(v, c)| (v + 0.0, c))
                .collect();
            let non_finite: u64 = groups
                .iter()
                .filter(|g| !g.0.is_finite())
                .map(|g| g.1)
                .sum();
            let dropped = [reference.len() - ref_column.len(), non_finite as usize];
            numeric_feature_grouped(&mut ref_column, &finite, dropped)
        } else {
            let mut counts = CategoryCounts::new(feature);
            for row in reference {
                counts.add(0, row.0[j]);
            }
            for &(value, count) in groups {
                counts.add_count(1, value, count);
            }
            categorical_feature(feature, &counts)
        };
        partials.push((feature, partial));
    }
    finish_report(partials, config, reference.len(), current_rows)
}

/// Adjusts the 20 p-values together and assembles the report.
fn finish_report(
    partials: Vec<(&'static Feature, Partial)>,
    config: &DriftConfig,
    reference_rows: usize,
    current_rows: usize,
) -> DriftReport {
    let p_values: Vec<f64> = partials.iter().map(|(_, p)| p.outcome.p_value).collect();
    let adjusted = adjust_p_values(&p_values, config.correction);
    let features: Vec<FeatureDrift> = partials
        .into_iter()
        .zip(adjusted)
        .map(|((feature, partial), adjusted_p_value)| {
            partial.finish(feature, adjusted_p_value, config)
        })
        .collect();
    DriftReport {
        drift: features.iter().any(|f| f.significant),
        correction: config.correction,
        alpha: config.alpha,
        min_psi: config.min_psi,
        reference_rows,
        current_rows,
        features,
        data_quality: None,
    }
}

/// The test name a feature kind gets in the report.
fn test_name(kind: FeatureKind) -> &'static str {
    match kind {
        FeatureKind::Numeric => "welch_t",
        FeatureKind::Binary => "two_proportion_z",
        FeatureKind::Nominal => "chi_square",
        FeatureKind::Ordinal => "mann_whitney_u",
    }
}

/// One feature's results before the p-values are adjusted together.
pub(super) struct Partial {
    pub(super) outcome: TestOutcome,
    pub(super) psi: f64,
    pub(super) n: [usize; 2],
    pub(super) means: [f64; 2],
    pub(super) notes: Vec<String>,
    pub(super) distribution: Option<FeatureDistribution>,
}

impl Partial {
    fn untested(reason: &str) -> Self {
        Partial {
            outcome: TestOutcome::undefined(reason),
            psi: 0.0,
            n: [0, 0],
            means: [0.0, 0.0],
            notes: Vec::new(),
            distribution: None,
        }
    }

    fn finish(
        self,
        feature: &Feature,
        adjusted_p_value: f64,
        config: &DriftConfig,
    ) -> FeatureDrift {
        let mut notes: Vec<String> = self.outcome.note.into_iter().collect();
        notes.extend(self.notes);
        // Defensive: the tests never produce NaN or infinities, but a report must never hold
        // one (JSON cannot), so any that slipped through would be replaced and named.
        let mut finite = |value: f64, what: &str, fallback: f64| {
            if value.is_finite() {
                value
            } else {
                notes.push(format!(
                    "internal: non-finite {what} replaced by {fallback}"
                ));
                fallback
            }
        };
        let statistic = finite(self.outcome.statistic, "statistic", 0.0);
        let p_value = finite(self.outcome.p_value, "p-value", 1.0);
        let adjusted_p_value = finite(adjusted_p_value, "adjusted p-value", 1.0);
        let psi = finite(self.psi, "PSI", 0.0);
        let reference_mean = finite(self.means[0], "reference mean", 0.0);
        let current_mean = finite(self.means[1], "current mean", 0.0);
        let significant =
            adjusted_p_value < config.alpha && config.min_psi.is_none_or(|min| psi >= min);
        FeatureDrift {
            feature: feature.name.to_string(),
            kind: feature.kind,
            test: test_name(feature.kind).to_string(),
            statistic,
            p_value,
            adjusted_p_value,
            psi,
            significant,
            reference_n: self.n[0],
            current_n: self.n[1],
            reference_mean,
            current_mean,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
            distribution: self.distribution,
        }
    }
}

/// The test outcome, unless a side has fewer than 2 values: then the feature is not tested.
pub(super) fn tested_if_enough(n: [usize; 2], test: impl FnOnce() -> TestOutcome) -> TestOutcome {
    if n[0] < 2 || n[1] < 2 {
        TestOutcome::undefined(format!(
            "fewer than 2 values on a side (reference {}, current {}): not tested",
            n[0], n[1]
        ))
    } else {
        test()
    }
}

/// Copies feature `j`'s finite values (with -0.0 made 0.0) into `column`.
fn fill_column(column: &mut Vec<f64>, rows: &[Applicant], j: usize) {
    column.clear();
    column.extend(
        rows.iter()
            .map(|row| row.0[j])
            .filter(|v| v.is_finite())
            .map(|v| v + 0.0),
    );
}

fn numeric_feature(reference: &mut [f64], current: &[f64], non_finite: [usize; 2]) -> Partial {
    let n = [reference.len(), current.len()];
    let (outcome, ref_mean, cur_mean) = welch_finite(reference, current);
    let bins = decile_bins(reference, current);
    numeric_partial(n, (outcome, ref_mean, cur_mean), bins, non_finite)
}

/// [`numeric_feature`] with the current side as distinct finite values and their counts.
fn numeric_feature_grouped(
    reference: &mut [f64],
    current: &[(f64, u64)],
    non_finite: [usize; 2],
) -> Partial {
    let current_moments = moments_of_groups(current);
    let n = [reference.len(), current_moments.n];
    let welch = welch_of_moments(moments(reference), current_moments);
    let bins = decile_bins_grouped(reference, current);
    numeric_partial(n, welch, bins, non_finite)
}

fn numeric_partial(
    n: [usize; 2],
    (outcome, ref_mean, cur_mean): (TestOutcome, f64, f64),
    bins: Option<DecileBins>,
    non_finite: [usize; 2],
) -> Partial {
    let outcome = tested_if_enough(n, || outcome);
    let psi = bins
        .as_ref()
        .map_or(0.0, |b| psi_from_counts(&b.reference, &b.current));
    Partial {
        outcome,
        psi,
        n,
        means: [ref_mean, cur_mean],
        notes: non_finite_note(non_finite[0], non_finite[1])
            .into_iter()
            .collect(),
        distribution: bins.as_ref().map(decile_distribution),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::{chi_square_test, mann_whitney_u_test, two_proportion_z_test, welch_t_test};
    use crate::schema::FEATURE_COUNT;

    /// A valid applicant: every feature at its smallest allowed value.
    fn base() -> Applicant {
        let mut values = [0.0; FEATURE_COUNT];
        for (v, f) in values.iter_mut().zip(FEATURES.iter()) {
            *v = match f.domain {
                crate::schema::Domain::Range { min, .. } => min as f64,
                crate::schema::Domain::Codes(codes) => codes[0].0 as f64,
            };
        }
        Applicant(values)
    }

    /// Rows whose feature `j` cycles through `values`, all else at `base()`.
    fn rows_with(j: usize, values: &[f64]) -> Vec<Applicant> {
        values
            .iter()
            .map(|&v| {
                let mut a = base();
                a.0[j] = v;
                a
            })
            .collect()
    }

    fn index_of(kind: FeatureKind) -> usize {
        FEATURES.iter().position(|f| f.kind == kind).unwrap()
    }

    /// Every number in the report is finite and the JSON has no NaN, for empty input, a single
    /// row, constant columns and non-finite values.
    #[test]
    fn degenerate_inputs_give_a_finite_report() {
        let mut weird = base();
        weird.0[0] = f64::NAN;
        weird.0[1] = f64::INFINITY;
        weird.0[19] = 7.0;
        let cases: Vec<(Vec<Applicant>, Vec<Applicant>)> = vec![
            (vec![], vec![]),
            (vec![base()], vec![base(); 3]),
            (vec![base(); 5], vec![base(); 5]),
            (vec![base(); 5], vec![weird; 4]),
        ];
        for (r, c) in cases {
            let report = detect_drift(&r, &c, &DriftConfig::default());
            assert_eq!(report.features.len(), FEATURE_COUNT);
            for f in &report.features {
                for x in [
                    f.statistic,
                    f.p_value,
                    f.adjusted_p_value,
                    f.psi,
                    f.reference_mean,
                    f.current_mean,
                ] {
                    assert!(x.is_finite(), "{f:?}");
                }
                assert!((0.0..=1.0).contains(&f.p_value));
            }
            // serde_json writes NaN as null, which would not read back as a number.
            let json = serde_json::to_string(&report).unwrap();
            let back: DriftReport = serde_json::from_str(&json).unwrap();
            assert_eq!(back, report);
        }
    }

    /// Constant columns: the same constant on both sides is "no drift" (scipy: NaN), different
    /// constants a certain shift (scipy: p = 0) that is flagged.
    #[test]
    fn constant_columns() {
        let j = index_of(FeatureKind::Numeric);
        let same = detect_drift(
            &rows_with(j, &[30.0; 4]),
            &rows_with(j, &[30.0; 3]),
            &DriftConfig::default(),
        );
        assert_eq!(same.features[j].p_value, 1.0);
        assert!(!same.features[j].significant);
        let shifted = detect_drift(
            &rows_with(j, &[30.0; 4]),
            &rows_with(j, &[40.0; 3]),
            &DriftConfig::default(),
        );
        assert_eq!(shifted.features[j].p_value, 0.0);
        assert_eq!(shifted.features[j].statistic, -f64::MAX);
        assert!(shifted.features[j].significant && shifted.drift);
    }

    /// detect_drift's per-feature results equal the public tests on the same columns, the
    /// binary one included (foreign_worker, the seed's untested last feature, is tested).
    #[test]
    fn report_matches_the_individual_tests() {
        let n_ref = 300;
        let n_cur = 120;
        let make = |n: usize, salt: usize| -> Vec<Applicant> {
            (0..n)
                .map(|i| {
                    let mut a = base();
                    for (j, f) in FEATURES.iter().enumerate() {
                        let h = (i * 7 + j * 13 + salt * (j + 1)) % 97;
                        a.0[j] = match f.domain {
                            crate::schema::Domain::Range { min, .. } => {
                                (min + (h as i64) % 40) as f64
                            }
                            crate::schema::Domain::Codes(codes) => codes[h % codes.len()].0 as f64,
                        };
                    }
                    a
                })
                .collect()
        };
        let r = make(n_ref, 0);
        let c = make(n_cur, 5);
        let report = detect_drift(&r, &c, &DriftConfig::default());
        for (j, f) in FEATURES.iter().enumerate() {
            let rc: Vec<f64> = r.iter().map(|a| a.0[j]).collect();
            let cc: Vec<f64> = c.iter().map(|a| a.0[j]).collect();
            let expected = match f.kind {
                FeatureKind::Numeric => welch_t_test(&rc, &cc),
                FeatureKind::Ordinal => mann_whitney_u_test(&rc, &cc),
                FeatureKind::Binary => {
                    let s = |v: &[f64]| v.iter().filter(|&&x| x == 1.0).count() as u64;
                    two_proportion_z_test(s(&rc), n_ref as u64, s(&cc), n_cur as u64)
                }
                FeatureKind::Nominal => {
                    let table: Vec<[u64; 2]> = f
                        .codes()
                        .iter()
                        .map(|&code| {
                            let k =
                                |v: &[f64]| v.iter().filter(|&&x| x == code as f64).count() as u64;
                            [k(&rc), k(&cc)]
                        })
                        .collect();
                    chi_square_test(&table)
                }
            };
            let got = &report.features[j];
            assert_eq!(got.statistic, expected.statistic, "{}", f.name);
            assert_eq!(got.p_value, expected.p_value, "{}", f.name);
            assert_eq!((got.reference_n, got.current_n), (n_ref, n_cur));
            // The chart's counts are the test's: every value in one bin.
            let distribution = got.distribution.as_ref().unwrap();
            assert_eq!(distribution.totals(), [n_ref as u64, n_cur as u64]);
            assert_eq!(
                got.psi,
                crate::drift::population_stability_index(&rc, &cc, f),
                "{}",
                f.name
            );
        }
        assert_eq!(report.features[19].feature, "foreign_worker");
    }

    /// significant = adjusted p < alpha and psi >= min_psi; a PSI threshold can veto.
    #[test]
    fn min_psi_vetoes_small_effects() {
        let j = index_of(FeatureKind::Numeric);
        let r: Vec<f64> = (0..2000).map(|i| 20.0 + (i % 40) as f64).collect();
        let c: Vec<f64> = (0..2000).map(|i| 25.0 + (i % 40) as f64).collect();
        let (r, c) = (rows_with(j, &r), rows_with(j, &c));
        let plain = detect_drift(&r, &c, &DriftConfig::default());
        assert!(plain.features[j].significant);
        let psi = plain.features[j].psi;
        assert!(psi > 0.0);
        let strict = DriftConfig {
            min_psi: Some(psi * 2.0),
            ..DriftConfig::default()
        };
        let vetoed = detect_drift(&r, &c, &strict);
        assert!(!vetoed.features[j].significant);
        assert_eq!(
            vetoed.features[j].adjusted_p_value,
            plain.features[j].adjusted_p_value
        );
    }

    /// Values outside a binary feature's codes are left out of its test and named in the note.
    #[test]
    fn binary_values_outside_codes_are_left_out() {
        let j = index_of(FeatureKind::Binary);
        let report = detect_drift(
            &rows_with(j, &[0.0, 1.0, 1.0, 3.0]),
            &rows_with(j, &[0.0, 0.0, 1.0]),
            &DriftConfig::default(),
        );
        let f = &report.features[j];
        assert_eq!((f.reference_n, f.current_n), (3, 3));
        assert_eq!(f.p_value, two_proportion_z_test(2, 3, 1, 3).p_value);
        assert!(f.note.as_deref().unwrap().contains("outside the codes"));
    }
}
