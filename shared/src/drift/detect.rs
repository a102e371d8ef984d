//! The drift check over all 20 features and its report.

use serde::{Deserialize, Serialize};

use super::categorical::categorical_feature;
use super::counts::{count_features, ValueCounts};
use super::distribution::{decile_distribution, FeatureDistribution};
use super::hypothesis::{non_finite_note, welch_of_moments};
use super::moments::moments_of_groups;
use super::psi::{decile_bins_of_groups, psi_from_counts};
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
/// Cost: one pass over the rows, split over the cores by blocks of rows (at most
/// `FRAUDRISK_DRIFT_THREADS` threads when set), counts every feature's values on both sides;
/// every test then works from those counts: ranks, deciles and moments by counting, no sort and
/// no copy of a column (values outside a feature's domain are the exception: they are sorted).
pub fn detect_drift(
    reference: &[Applicant],
    current: &[Applicant],
    config: &DriftConfig,
) -> DriftReport {
    let counts = count_features(reference, current);
    finish_report(
        feature_partials(counts),
        config,
        reference.len(),
        current.len(),
    )
}

/// [`detect_drift`] with the current side given per feature (schema order) as distinct values
/// and their counts, as the monitor's SQL aggregates return them; a missing or unusable cell
/// is a NaN value. The reference is rows as before. Same tests, same report: the same numbers
/// as [`detect_drift`] on the expanded rows for whole-number values (every valid row's), to
/// rounding otherwise.
pub fn detect_drift_grouped(
    reference: &[Applicant],
    current: &[Vec<(f64, u64)>],
    current_rows: usize,
    config: &DriftConfig,
) -> DriftReport {
    let mut counts = count_features(reference, &[]);
    for (counter, groups) in counts.iter_mut().zip(current) {
        for &(value, count) in groups {
            counter.add_count(1, value, count);
        }
    }
    finish_report(
        feature_partials(counts),
        config,
        reference.len(),
        current_rows,
    )
}

/// Each feature's test from its counts, in schema order.
fn feature_partials(counts: Vec<ValueCounts>) -> Vec<(&'static Feature, Partial)> {
    FEATURES
        .iter()
        .zip(counts)
        .map(|(feature, counts)| {
            let groups = counts.groups();
            let partial = if feature.kind == FeatureKind::Numeric {
                numeric_feature(&groups, counts.non_finite)
            } else {
                categorical_feature(feature, &groups, counts.non_finite)
            };
            (feature, partial)
        })
        .collect()
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

/// A numeric feature's Welch test, PSI over the reference's deciles and chart, from its counts.
fn numeric_feature(groups: &[(f64, [u64; 2])], non_finite: [u64; 2]) -> Partial {
    let side = |s: usize| groups.iter().map(move |&(v, c)| (v, c[s]));
    let (reference, current) = (moments_of_groups(side(0)), moments_of_groups(side(1)));
    let n = [reference.n, current.n];
    let (outcome, ref_mean, cur_mean) = welch_of_moments(reference, current);
    let outcome = tested_if_enough(n, || outcome);
    let bins = decile_bins_of_groups(groups);
    let psi = bins
        .as_ref()
        .map_or(0.0, |b| psi_from_counts(&b.reference, &b.current));
    Partial {
        outcome,
        psi,
        n,
        means: [ref_mean, cur_mean],
        notes: non_finite_note(non_finite[0] as usize, non_finite[1] as usize)
            .into_iter()
            .collect(),
        distribution: bins.as_ref().map(decile_distribution),
    }
}

// The tests' helper rows: one copy, shared with shared/tests/drift_counting.rs. Its items are
// brought in by `use super::…`, so this module's imports (and `Domain`) serve it.
#[cfg(test)]
#[path = "../../tests/drift_common/rows.rs"]
mod test_rows;
#[cfg(test)]
use crate::schema::Domain;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::{chi_square_test, mann_whitney_u_test, two_proportion_z_test, welch_t_test};
    use crate::schema::FEATURE_COUNT;

    use super::test_rows::{base, first_of, rows_with};

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
        let j = first_of(FeatureKind::Numeric);
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
                            Domain::Range { min, .. } => (min + (h as i64) % 40) as f64,
                            Domain::Codes(codes) => codes[h % codes.len()].0 as f64,
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
        let j = first_of(FeatureKind::Numeric);
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
        let j = first_of(FeatureKind::Binary);
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
