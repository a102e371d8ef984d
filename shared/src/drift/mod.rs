//! Drift tests: is the current data drawn from the same distribution as the reference data?
//!
//! Each feature gets the test its [`FeatureKind`](crate::schema::FeatureKind) calls for, in the exact variant scipy /
//! statsmodels compute (the fixtures in `shared/tests/fixtures/drift/` hold their results and
//! `shared/tests/drift_scipy.rs` checks agreement to a relative 1e-9):
//!
//! | kind    | test                      | reference implementation                                   |
//! |---------|---------------------------|------------------------------------------------------------|
//! | numeric | [`welch_t_test`]          | `scipy.stats.ttest_ind(ref, cur, equal_var=False)`, two-sided |
//! | binary  | [`two_proportion_z_test`] | `statsmodels proportions_ztest([s_ref, s_cur], [n_ref, n_cur])`, pooled, two-sided |
//! | nominal | [`chi_square_test`]       | `scipy.stats.chi2_contingency(table)`, Yates only at dof 1  |
//! | ordinal | [`mann_whitney_u_test`]   | `scipy.stats.mannwhitneyu(ref, cur, method="asymptotic")`, two-sided, tie and continuity corrected |
//!
//! All 20 features are tested (the seed skipped `foreign_worker`), the p-values are adjusted
//! together ([`adjust_p_values`], Bonferroni by default as the seed's README says), and each
//! feature also gets its population stability index ([`population_stability_index`]) as an
//! effect size. [`detect_drift`] puts it all in a [`DriftReport`] that never holds NaN or an
//! infinity, whatever the input: degenerate cases get a defined result and a `note`.
//!
//! [`detect_drift`] reads the rows once, split over the cores ([`drift_threads`]), counting each
//! feature's values per side; every test above then runs from those counts (ranks, deciles and
//! exact integer moments by counting), with the same results as the functions on the rows.
//!
//! References: B. L. Welch (1947), Biometrika 34, 28-35; H. B. Mann and D. R. Whitney (1947),
//! Ann. Math. Statist. 18, 50-60; F. Yates (1934), JRSS Suppl. 1, 217-235; S. Holm (1979),
//! Scand. J. Statist. 6, 65-70; Y. Benjamini and Y. Hochberg (1995), JRSS B 57, 289-300.

mod categorical;
mod correction;
mod counts;
mod detect;
mod distribution;
mod hypothesis;
mod kolmogorov;
mod ks;
mod moments;
mod psi;
mod special;
#[cfg(test)]
mod statrs_accuracy;

pub use correction::{adjust_p_values, Correction, UnknownCorrection};
pub use counts::{drift_threads, DRIFT_THREADS_ENV};
pub use detect::{detect_drift, detect_drift_grouped, DriftReport, FeatureDrift};
pub use distribution::{DistributionBin, FeatureDistribution, MAX_OTHER_VALUE_BINS};
pub use hypothesis::{chi_square_test, mann_whitney_u_test, two_proportion_z_test, welch_t_test};
pub use kolmogorov::kolmogorov_two_sided_sf;
pub use ks::{ks_2samp, ks_2samp_grouped, ks_2samp_sorted, KsMethod, KsOutcome};
pub(crate) use psi::{decile_bin, decile_bins, decile_edges, psi_from_counts};
pub use psi::{population_stability_index, PSI_SHARE_FLOOR};

use serde::{Deserialize, Serialize};

/// Settings of a drift check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DriftConfig {
    /// Family-wise (or, with Benjamini-Hochberg, false-discovery) significance level for the
    /// adjusted p-values.
    pub alpha: f64,
    /// How the 20 p-values are adjusted.
    pub correction: Correction,
    /// When set, a feature also needs at least this PSI to count as drifted, so that tiny but
    /// "significant" shifts in very large samples do not trigger a retrain.
    pub min_psi: Option<f64>,
}

impl Default for DriftConfig {
    /// alpha 0.05, Bonferroni, no PSI threshold.
    fn default() -> Self {
        DriftConfig {
            alpha: 0.05,
            correction: Correction::Bonferroni,
            min_psi: None,
        }
    }
}

/// The result of one two-sample test. Always finite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestOutcome {
    /// The test statistic: t, z, chi-square or U of the reference sample.
    pub statistic: f64,
    /// Two-sided p-value in [0, 1].
    pub p_value: f64,
    /// Degrees of freedom where the test has them (Welch t, chi-square).
    pub dof: Option<f64>,
    /// Why the result is a convention rather than a test (degenerate input), or what was left out.
    pub note: Option<String>,
}
