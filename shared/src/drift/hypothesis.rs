//! The four two-sample tests, each the exact variant scipy / statsmodels compute by default.
//!
//! Non-finite inputs (NaN, infinities) are left out of every test and counted in the note.
//! Where scipy would return NaN or raise, these functions return a defined outcome (statistic 0,
//! p = 1 unless said otherwise) and say why in `note`; no outcome ever holds NaN or an infinity.

use super::moments::{compensated_sum, moments, Moments};
use super::special::{chi_square_sf, normal_two_sided, student_t_two_sided};
use super::TestOutcome;

impl TestOutcome {
    /// An outcome for input on which the test says nothing: statistic 0, p = 1, with the reason.
    pub(crate) fn undefined(note: impl Into<String>) -> Self {
        TestOutcome {
            statistic: 0.0,
            p_value: 1.0,
            dof: None,
            note: Some(note.into()),
        }
    }

    /// Appends a sentence to the note.
    pub(crate) fn with_note(mut self, extra: Option<String>) -> Self {
        if let Some(extra) = extra {
            self.note = Some(match self.note.take() {
                Some(note) => format!("{note}; {extra}"),
                None => extra,
            });
        }
        self
    }
}

/// The finite values of a sample (with -0.0 made 0.0), and how many were left out. Borrows when
/// every value is finite.
pub(crate) fn finite_values(values: &[f64]) -> (std::borrow::Cow<'_, [f64]>, usize) {
    if values.iter().all(|v| v.is_finite()) {
        return (std::borrow::Cow::Borrowed(values), 0);
    }
    let kept: Vec<f64> = values
        .iter()
        .filter(|v| v.is_finite())
        .map(|v| v + 0.0)
        .collect();
    let dropped = values.len() - kept.len();
    (std::borrow::Cow::Owned(kept), dropped)
}

/// The note for values left out of a test, if any. A tolerant file read
/// ([`crate::dataset::read_applicants_tolerant`]) leaves missing and out-of-domain cells as NaN,
/// so the note names them too.
pub(crate) fn non_finite_note(reference: usize, current: usize) -> Option<String> {
    (reference + current > 0).then(|| {
        format!(
            "{reference} reference and {current} current values left out of the test \
             (non-finite, missing or out of domain)"
        )
    })
}

/// Welch's unequal-variance t-test, two-sided: `scipy.stats.ttest_ind(reference, current,
/// equal_var=False)`. The statistic is t of (mean_ref - mean_cur) over sqrt(s1^2/n1 + s2^2/n2),
/// `dof` the Welch-Satterthwaite degrees of freedom, and p = I_{df/(df+t^2)}(df/2, 1/2).
///
/// Degenerate input: fewer than 2 finite values on a side, or both sides constant and equal,
/// gives statistic 0 and p = 1 (scipy: NaN). Both sides constant with different values is a
/// certain shift: p = 0 as in scipy, whose t = +-inf is reported as +-`f64::MAX` (JSON has no
/// infinity), `dof` None. One constant side is an ordinary case (df = n_other - 1).
pub fn welch_t_test(reference: &[f64], current: &[f64]) -> TestOutcome {
    let (r, r_dropped) = finite_values(reference);
    let (c, c_dropped) = finite_values(current);
    welch_finite(&r, &c)
        .0
        .with_note(non_finite_note(r_dropped, c_dropped))
}

/// Welch's test on finite values; also returns the two means (0 for an empty side).
pub(crate) fn welch_finite(reference: &[f64], current: &[f64]) -> (TestOutcome, f64, f64) {
    welch_of_moments(moments(reference), moments(current))
}

/// Welch's test from the two sides' moments; also returns the two means.
pub(crate) fn welch_of_moments(r: Moments, c: Moments) -> (TestOutcome, f64, f64) {
    let means = (r.mean, c.mean);
    let outcome = if r.n < 2 || c.n < 2 {
        TestOutcome::undefined(format!(
            "Welch t-test needs at least 2 values per side (reference {}, current {}); scipy returns NaN",
            r.n, c.n
        ))
    } else {
        let n1 = r.n as f64;
        let n2 = c.n as f64;
        let vn1 = r.squared_deviations / (n1 - 1.0) / n1;
        let vn2 = c.squared_deviations / (n2 - 1.0) / n2;
        if vn1 + vn2 <= 0.0 || (vn1 + vn2).is_nan() {
            // Both constant (or deviations so small their squares underflow).
            return (
                if r.mean == c.mean {
                    TestOutcome::undefined(
                        "both samples are the same constant: nothing to test (scipy returns NaN)",
                    )
                } else {
                    certain_shift(r.mean - c.mean)
                },
                means.0,
                means.1,
            );
        }
        // Welch-Satterthwaite on variances scaled by the larger one, so tiny variances cannot
        // underflow when squared.
        let scale = vn1.max(vn2);
        let (s1, s2) = (vn1 / scale, vn2 / scale);
        let dof = (s1 + s2) * (s1 + s2) / (s1 * s1 / (n1 - 1.0) + s2 * s2 / (n2 - 1.0));
        let t = (r.mean - c.mean) / (vn1 + vn2).sqrt();
        if t.is_finite() {
            TestOutcome {
                statistic: t,
                p_value: student_t_two_sided(t, dof),
                dof: Some(dof),
                note: None,
            }
        } else {
            certain_shift(r.mean - c.mean)
        }
    };
    (outcome, means.0, means.1)
}

fn certain_shift(difference: f64) -> TestOutcome {
    TestOutcome {
        statistic: f64::MAX.copysign(difference),
        p_value: 0.0,
        dof: None,
        note: Some(
            "no variation within either sample but different values: a certain shift \
             (scipy: t = inf, p = 0); t is reported as the largest finite number"
                .to_string(),
        ),
    }
}

/// Two-proportion z-test, pooled variance, two-sided: `statsmodels.stats.proportion.
/// proportions_ztest([ref_successes, cur_successes], [ref_n, cur_n])`. z = (p_ref - p_cur) /
/// sqrt(p(1-p)(1/n_ref + 1/n_cur)) with the pooled p; p-value = erfc(|z| / sqrt 2).
///
/// Degenerate input gives z = 0 and p = 1 with a note: an empty side, successes above n, or
/// every trial with the same outcome on both sides (statsmodels: NaN).
pub fn two_proportion_z_test(
    ref_successes: u64,
    ref_n: u64,
    cur_successes: u64,
    cur_n: u64,
) -> TestOutcome {
    if ref_n == 0 || cur_n == 0 {
        return TestOutcome::undefined(format!(
            "two-proportion z-test needs observations on both sides (reference {ref_n}, current {cur_n})"
        ));
    }
    if ref_successes > ref_n || cur_successes > cur_n {
        return TestOutcome::undefined(format!(
            "successes exceed observations (reference {ref_successes}/{ref_n}, current {cur_successes}/{cur_n})"
        ));
    }
    let (n1, n2) = (ref_n as f64, cur_n as f64);
    let difference = ref_successes as f64 / n1 - cur_successes as f64 / n2;
    let pooled = (ref_successes + cur_successes) as f64 / (ref_n + cur_n) as f64;
    let variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2);
    if variance <= 0.0 {
        return TestOutcome::undefined(
            "every observation on both sides has the same outcome: nothing to test (statsmodels returns NaN)",
        );
    }
    let z = difference / variance.sqrt();
    TestOutcome {
        statistic: z,
        p_value: normal_two_sided(z),
        dof: None,
        note: None,
    }
}

/// Pearson's chi-square test of independence on a categories x {reference, current} table,
/// `scipy.stats.chi2_contingency(table)` with its default `correction=True`: Yates' continuity
/// correction (each |observed - expected| reduced by at most 0.5) only when dof = 1.
/// dof = categories - 1; p = Q(dof/2, chi2/2).
///
/// Categories with no observation on either side are dropped first (scipy refuses the zero
/// expected frequencies they would give). One remaining category gives chi2 = 0, p = 1, dof 0,
/// as scipy does; an empty side gives chi2 = 0, p = 1 with a note (scipy raises).
pub fn chi_square_test(table: &[[u64; 2]]) -> TestOutcome {
    let rows: Vec<[u64; 2]> = table
        .iter()
        .copied()
        .filter(|row| row[0] + row[1] > 0)
        .collect();
    let column = |j: usize| rows.iter().map(|row| row[j]).sum::<u64>();
    let (ref_total, cur_total) = (column(0), column(1));
    if ref_total == 0 || cur_total == 0 {
        return TestOutcome::undefined(format!(
            "chi-square test needs observations on both sides (reference {ref_total}, current {cur_total})"
        ));
    }
    if rows.len() < 2 {
        return TestOutcome {
            dof: Some(0.0),
            ..TestOutcome::undefined("only one category observed: dof = 0 (scipy: chi2 = 0, p = 1)")
        };
    }
    let dof = (rows.len() - 1) as f64;
    let total = (ref_total + cur_total) as f64;
    let column_totals = [ref_total, cur_total];
    let yates = rows.len() == 2;
    let mut terms = Vec::with_capacity(2 * rows.len());
    for row in &rows {
        let row_total = row[0] + row[1];
        for (observed, column_total) in row.iter().zip(column_totals) {
            // As scipy: the product of the margins, then one division.
            let expected = (row_total as f64 * column_total as f64) / total;
            let mut observed = *observed as f64;
            if yates {
                // scipy's form: move the observed count towards the expected one by
                // min(0.5, |expected - observed|).
                let gap = expected - observed;
                observed += gap.abs().min(0.5) * gap.signum();
            }
            let deviation = observed - expected;
            terms.push(deviation * deviation / expected);
        }
    }
    let statistic = compensated_sum(terms.into_iter());
    TestOutcome {
        statistic,
        p_value: chi_square_sf(dof, statistic),
        dof: Some(dof),
        note: None,
    }
}

/// Mann-Whitney U test, two-sided, normal approximation with tie correction and continuity
/// correction: `scipy.stats.mannwhitneyu(reference, current, alternative="two-sided",
/// method="asymptotic", use_continuity=True)`. The statistic is U of the reference sample
/// (R_ref - n_ref(n_ref+1)/2 with average ranks for ties); p = 2 sf(z), clipped to 1, where
/// z = (max(U_ref, U_cur) - n_ref n_cur / 2 - 1/2) / sigma and
/// sigma^2 = n_ref n_cur / 12 ((n + 1) - sum(t^3 - t) / (n (n - 1))).
///
/// Ranks come from sorting (n log n). An empty side gives U = 0, p = 1 with a note (scipy
/// raises); all values equal gives U = n_ref n_cur / 2 and p = 1, as scipy does.
pub fn mann_whitney_u_test(reference: &[f64], current: &[f64]) -> TestOutcome {
    let (r, r_dropped) = finite_values(reference);
    let (c, c_dropped) = finite_values(current);
    let mut r = r.into_owned();
    let mut c = c.into_owned();
    r.sort_unstable_by(f64::total_cmp);
    c.sort_unstable_by(f64::total_cmp);
    // Merge the two sorted samples into groups of equal values, ascending.
    let mut groups = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < r.len() || j < c.len() {
        let value = match (r.get(i), c.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        let start = (i, j);
        while r.get(i) == Some(&value) {
            i += 1;
        }
        while c.get(j) == Some(&value) {
            j += 1;
        }
        groups.push(((i - start.0) as u64, (j - start.1) as u64));
    }
    mann_whitney_from_groups(groups.into_iter()).with_note(non_finite_note(r_dropped, c_dropped))
}

/// Mann-Whitney U from tie groups given in ascending order of value, each as (reference count,
/// current count): ranks by counting, so small integer codes need no sort at all.
pub(crate) fn mann_whitney_from_groups(groups: impl Iterator<Item = (u64, u64)>) -> TestOutcome {
    // Exact integer arithmetic: twice the rank sum and the tie term fit easily in u128.
    let (mut n1, mut n2, mut below, mut twice_rank_sum, mut tie_term) =
        (0u128, 0u128, 0u128, 0u128, 0u128);
    let mut distinct = 0usize;
    for (a, b) in groups {
        let (a, b) = (u128::from(a), u128::from(b));
        let t = a + b;
        if t == 0 {
            continue;
        }
        // The group occupies ranks below+1 ..= below+t; its average rank is below + (t + 1)/2.
        twice_rank_sum += a * (2 * below + t + 1);
        tie_term += t * t * t - t;
        below += t;
        n1 += a;
        n2 += b;
        distinct += 1;
    }
    if n1 == 0 || n2 == 0 {
        return TestOutcome::undefined(format!(
            "Mann-Whitney U test needs values on both sides (reference {n1}, current {n2}); scipy raises"
        ));
    }
    let twice_u1 = twice_rank_sum - n1 * (n1 + 1);
    let n1n2 = n1 * n2;
    let u1 = twice_u1 as f64 / 2.0;
    if distinct == 1 {
        return TestOutcome {
            statistic: u1,
            ..TestOutcome::undefined(
                "all values are equal: ranks carry no information (scipy: p = 1)",
            )
        };
    }
    let twice_u = twice_u1.max(2 * n1n2 - twice_u1);
    let n = n1 + n2;
    // U - mu - 1/2 is a half-integer: form it exactly. The continuity correction always
    // subtracts 1/2 because the larger U is used (scipy's _get_mwu_z).
    let numerator = (twice_u as f64 - n1n2 as f64 - 1.0) / 2.0;
    let sigma =
        (n1n2 as f64 / 12.0 * ((n as f64 + 1.0) - tie_term as f64 / (n * (n - 1)) as f64)).sqrt();
    let z = numerator / sigma;
    // p = 2 sf(z); for z <= 0 that is >= 1, which scipy clips to 1.
    let p_value = if z > 0.0 {
        normal_two_sided(z).min(1.0)
    } else {
        1.0
    };
    TestOutcome {
        statistic: u1,
        p_value,
        dof: None,
        note: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Welch, two-sided, by hand: ref {1,2,3} (mean 2, s^2 1), cur {5,5,5} (s^2 0):
    /// t = -3 / sqrt(1/3) = -3 sqrt 3; df = (1/3)^2 / ((1/3)^2 / 2) = 2;
    /// p (df = 2) = 1 - |t| / sqrt(2 + t^2) = 1 - sqrt(27/29).
    #[test]
    fn welch_one_constant_side_by_hand() {
        let out = welch_t_test(&[1.0, 2.0, 3.0], &[5.0, 5.0, 5.0]);
        assert!((out.statistic + 3.0 * 3f64.sqrt()).abs() < 1e-14);
        assert!((out.dof.unwrap() - 2.0).abs() < 1e-14);
        let expected = 1.0 - (27.0f64 / 29.0).sqrt();
        assert!(((out.p_value - expected) / expected).abs() < 1e-12);
        assert!(out.note.is_none());
    }

    /// Welch degenerate cases: scipy gives NaN for n < 2 and for equal constants, and
    /// t = -inf, p = 0 for different constants; ours stay finite and say why.
    #[test]
    fn welch_degenerate_inputs_are_defined() {
        for (r, c) in [
            (&[][..], &[1.0, 2.0][..]),
            (&[1.0][..], &[2.0, 2.0, 3.0][..]),
            (&[0.1, 0.1, 0.1][..], &[0.1, 0.1][..]),
        ] {
            let out = welch_t_test(r, c);
            assert_eq!((out.statistic, out.p_value), (0.0, 1.0));
            assert!(out.note.is_some());
        }
        let out = welch_t_test(&[1.0, 1.0, 1.0], &[2.0, 2.0]);
        assert_eq!((out.statistic, out.p_value), (-f64::MAX, 0.0));
        assert!(out.note.unwrap().contains("certain shift"));
    }

    /// Non-finite values are left out and counted: the result equals the test on the rest.
    #[test]
    fn welch_ignores_non_finite_values() {
        let clean = welch_t_test(&[1.0, 2.0, 4.0], &[3.0, 5.0, 6.0, 9.0]);
        let dirty = welch_t_test(
            &[1.0, f64::NAN, 2.0, 4.0],
            &[3.0, 5.0, f64::INFINITY, 6.0, 9.0],
        );
        assert_eq!(clean.statistic, dirty.statistic);
        assert_eq!(clean.p_value, dirty.p_value);
        assert!(dirty.note.unwrap().contains("1 reference and 1 current"));
    }

    /// Pooled two-proportion z by hand: 2/4 vs 3/4, pooled 5/8, var = 15/64 * 1/2,
    /// z = -0.25 / sqrt(15/128) = -sqrt(8/15); p = erfc(|z| / sqrt 2).
    #[test]
    fn two_proportion_by_hand() {
        let out = two_proportion_z_test(2, 4, 3, 4);
        let z = -(8.0f64 / 15.0).sqrt();
        assert!((out.statistic - z).abs() < 1e-15);
        // erfc(sqrt(4/15)) = 0.46520881845214174 (C library erfc).
        assert!((out.p_value - 0.465_208_818_452_141_74).abs() < 1e-13);
    }

    /// Degenerate proportions: empty side, impossible counts, no variation.
    #[test]
    fn two_proportion_degenerate() {
        for out in [
            two_proportion_z_test(0, 0, 1, 5),
            two_proportion_z_test(6, 5, 1, 5),
            two_proportion_z_test(0, 10, 0, 10),
            two_proportion_z_test(10, 10, 5, 5),
        ] {
            assert_eq!((out.statistic, out.p_value), (0.0, 1.0));
            assert!(out.note.is_some());
        }
    }

    /// Chi-square, dof = 1 with Yates, by hand: [[10, 20], [20, 10]], all expected 15,
    /// |O - E| = 5 -> 4.5 after Yates, chi2 = 4 * 4.5^2 / 15 = 5.4, p = erfc(sqrt(2.7)).
    #[test]
    fn chi_square_yates_by_hand() {
        let out = chi_square_test(&[[10, 20], [20, 10]]);
        assert!((out.statistic - 5.4).abs() < 1e-13);
        assert_eq!(out.dof, Some(1.0));
        // erfc(sqrt 2.7) = 0.02013675155034634 (C library erfc).
        assert!((out.p_value - 0.020_136_751_550_346_34).abs() < 1e-15);
    }

    /// Chi-square without Yates (dof = 2) by hand: [[10, 10], [10, 10], [20, 0]]; every row
    /// totals 20, columns 40 and 20, so each expected row is (40/3, 20/3); p = e^{-chi2/2}
    /// because Q(1, x) = e^-x.
    #[test]
    fn chi_square_dof_two_by_hand() {
        // Column totals 40 and 20, total 60; rows 20, 20, 20 -> expected (40/3, 20/3) each row.
        let out = chi_square_test(&[[10, 10], [10, 10], [20, 0]]);
        let (e0, e1): (f64, f64) = (40.0 / 3.0, 20.0 / 3.0);
        let chi2 = 2.0 * ((10.0 - e0).powi(2) / e0 + (10.0 - e1).powi(2) / e1)
            + (20.0 - e0).powi(2) / e0
            + (0.0 - e1).powi(2) / e1;
        assert!((out.statistic - chi2).abs() < 1e-12);
        assert_eq!(out.dof, Some(2.0));
        assert!(((out.p_value - (-chi2 / 2.0).exp()) / out.p_value).abs() < 1e-12);
    }

    /// Chi-square degenerate: zero rows dropped, one category left, one empty side.
    #[test]
    fn chi_square_degenerate() {
        let one = chi_square_test(&[[5, 3], [0, 0]]);
        assert_eq!((one.statistic, one.p_value, one.dof), (0.0, 1.0, Some(0.0)));
        let empty = chi_square_test(&[[5, 0], [7, 0]]);
        assert_eq!((empty.statistic, empty.p_value), (0.0, 1.0));
        assert!(empty.note.is_some());
        assert_eq!(chi_square_test(&[]).p_value, 1.0);
    }

    /// Mann-Whitney by hand: ref {1, 2}, cur {3, 4, 5}: ranks 1, 2 -> R = 3, U_ref = 0,
    /// U_cur = 6, mu = 3, sigma^2 = 6/12 * 6 = 3, z = (6 - 3 - 0.5) / sqrt 3, p = erfc(z/sqrt 2).
    #[test]
    fn mann_whitney_by_hand() {
        let out = mann_whitney_u_test(&[2.0, 1.0], &[5.0, 3.0, 4.0]);
        assert_eq!(out.statistic, 0.0);
        let z = 2.5 / 3f64.sqrt();
        let expected = normal_two_sided(z);
        assert_eq!(out.p_value, expected);
        // erfc(2.5 / sqrt 6) = 0.14891467317876567 (C library erfc).
        assert!((out.p_value - 0.148_914_673_178_765_67).abs() < 1e-15);
    }

    /// Mann-Whitney with ties, by hand: ref {1, 1, 2}, cur {1, 2, 2}: groups 1 x3 (rank 2),
    /// 2 x3 (rank 5); R_ref = 2 + 2 + 5 = 9, U_ref = 3, U_cur = 6, tie term 24 + 24 = 48,
    /// sigma^2 = 9/12 (7 - 48/30) = 4.05, z = (6 - 4.5 - 0.5) / sqrt 4.05.
    #[test]
    fn mann_whitney_ties_by_hand() {
        let out = mann_whitney_u_test(&[1.0, 1.0, 2.0], &[1.0, 2.0, 2.0]);
        assert_eq!(out.statistic, 3.0);
        assert_eq!(out.p_value, normal_two_sided(1.0 / 4.05f64.sqrt()));
    }

    /// Counting ranks from groups equals sorting the raw values.
    #[test]
    fn mann_whitney_groups_match_sorting() {
        let r = [1.0, 3.0, 3.0, 2.0, 4.0, 1.0];
        let c = [2.0, 2.0, 4.0, 4.0, 5.0];
        let from_groups =
            mann_whitney_from_groups([(2, 0), (1, 2), (2, 0), (1, 2), (0, 1)].into_iter());
        assert_eq!(mann_whitney_u_test(&r, &c), from_groups);
    }

    /// Mann-Whitney degenerate: empty side, all values equal (scipy: p = 1), identical samples
    /// (z < 0, p clipped to 1).
    #[test]
    fn mann_whitney_degenerate() {
        let empty = mann_whitney_u_test(&[], &[1.0]);
        assert_eq!((empty.statistic, empty.p_value), (0.0, 1.0));
        let same = mann_whitney_u_test(&[2.0; 4], &[2.0; 3]);
        assert_eq!((same.statistic, same.p_value), (6.0, 1.0));
        assert!(same.note.is_some());
        let identical = mann_whitney_u_test(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]);
        assert_eq!((identical.statistic, identical.p_value), (4.5, 1.0));
        assert!(identical.note.is_none());
    }
}
