//! Count, mean and sum of squared deviations of a sample, from its values or from its distinct
//! values and their counts, with the same result either way for whole numbers.
//!
//! Whole numbers of magnitude at most 2^20 (every numeric feature of the schema) are summed
//! exactly in integers: n, S1 = sum v and S2 = sum v^2, then mean = S1 / n and the sum of squared
//! deviations = (n S2 - S1^2) / n, each rounded once or twice at the end. Nothing depends on the
//! order of the values, so the rows and their counts (`detect_drift`'s single pass, the monitor's
//! SQL aggregates) give the same bits, and the result is at least as close to the true value as
//! numpy's pairwise sums. Other samples use Neumaier-compensated sums over the values.

/// Largest magnitude summed exactly: v^2 <= 2^40, so n S2 stays below 2^127 up to 2^43 values.
const EXACT_LIMIT: f64 = (1u64 << 20) as f64;
/// Most values summed exactly (see [`EXACT_LIMIT`]).
const EXACT_MAX_N: u64 = 1 << 43;

/// Sum with Neumaier's compensation: near-exact, so our means and variances differ from numpy's
/// (pairwise summation) only by numpy's own rounding.
pub(crate) fn compensated_sum(values: impl Iterator<Item = f64>) -> f64 {
    let mut sum = 0.0_f64;
    let mut compensation = 0.0_f64;
    for x in values {
        let t = sum + x;
        if sum.abs() >= x.abs() {
            compensation += (sum - t) + x;
        } else {
            compensation += (x - t) + sum;
        }
        sum = t;
    }
    sum + compensation
}

/// Count, mean and sum of squared deviations of a sample.
pub(crate) struct Moments {
    pub(crate) n: usize,
    pub(crate) mean: f64,
    pub(crate) squared_deviations: f64,
}

impl Moments {
    fn empty() -> Self {
        Moments {
            n: 0,
            mean: 0.0,
            squared_deviations: 0.0,
        }
    }

    /// A constant sample gets its value as mean and exactly zero variance: summing n copies of
    /// 0.1 and dividing by n need not give 0.1 back, and that rounding would fake a variance.
    fn constant(n: usize, value: f64) -> Self {
        Moments {
            n,
            mean: value,
            squared_deviations: 0.0,
        }
    }

    /// From the exact integer sums of n whole numbers.
    fn exact(n: u64, s1: i128, s2: i128) -> Self {
        let n_wide = i128::from(n);
        let scaled = n_wide * s2 - s1 * s1;
        Moments {
            n: n as usize,
            mean: s1 as f64 / n as f64,
            squared_deviations: scaled as f64 / n as f64,
        }
    }
}

/// Whether `value` is summed exactly: a whole number of magnitude at most 2^20.
#[inline]
fn is_small_whole(value: f64) -> bool {
    value.abs() <= EXACT_LIMIT && (value as i64) as f64 == value
}

/// The moments of finite values.
pub(crate) fn moments(values: &[f64]) -> Moments {
    let Some(&first) = values.first() else {
        return Moments::empty();
    };
    let n = values.len();
    let mut constant = true;
    let mut whole = true;
    let (mut s1, mut s2) = (0i128, 0i128);
    for &v in values {
        constant &= v == first;
        whole &= is_small_whole(v);
        if whole {
            let k = v as i64;
            s1 += i128::from(k);
            s2 += i128::from(k * k);
        }
    }
    if constant {
        return Moments::constant(n, first + 0.0);
    }
    if whole && (n as u64) <= EXACT_MAX_N {
        return Moments::exact(n as u64, s1, s2);
    }
    let mean = compensated_sum(values.iter().copied()) / n as f64;
    let squared_deviations = compensated_sum(values.iter().map(|&v| (v - mean) * (v - mean)));
    Moments {
        n,
        mean,
        squared_deviations,
    }
}

/// The moments of a sample given as distinct finite values with their counts: the same
/// numbers as [`moments`] over the expanded sample when the values are whole (see the module
/// doc); otherwise each value's deviation weighted by its count, equal to rounding.
pub(crate) fn moments_of_groups(groups: impl Iterator<Item = (f64, u64)> + Clone) -> Moments {
    let groups = groups.filter(|g| g.1 > 0);
    let n: u64 = groups.clone().map(|g| g.1).sum();
    let mut distinct = groups.clone();
    let Some((first, _)) = distinct.next() else {
        return Moments::empty();
    };
    if distinct.next().is_none() {
        return Moments::constant(n as usize, first + 0.0);
    }
    if n <= EXACT_MAX_N && groups.clone().all(|(v, _)| is_small_whole(v)) {
        let (mut s1, mut s2) = (0i128, 0i128);
        for (v, c) in groups {
            let (k, c) = (i128::from(v as i64), i128::from(c));
            s1 += k * c;
            s2 += k * k * c;
        }
        return Moments::exact(n, s1, s2);
    }
    let mean = compensated_sum(groups.clone().map(|(v, c)| v * c as f64)) / n as f64;
    let squared_deviations =
        compensated_sum(groups.map(|(v, c)| (v - mean) * (v - mean) * c as f64));
    Moments {
        n: n as usize,
        mean,
        squared_deviations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(groups: &[(f64, u64)]) -> Vec<f64> {
        groups
            .iter()
            .flat_map(|&(v, c)| std::iter::repeat_n(v, c as usize))
            .collect()
    }

    /// Whole numbers: the values and their counts give the same bits, in any order.
    #[test]
    fn whole_numbers_give_the_same_bits_from_values_and_counts() {
        let groups = [(1.0, 3), (250.0, 7), (999_999.0, 2), (-4.0, 5), (37.0, 11)];
        let mut values = expand(&groups);
        let from_values = moments(&values);
        values.reverse();
        let reversed = moments(&values);
        let from_groups = moments_of_groups(groups.iter().copied());
        for m in [&reversed, &from_groups] {
            assert_eq!(m.n, from_values.n);
            assert_eq!(m.mean.to_bits(), from_values.mean.to_bits());
            assert_eq!(
                m.squared_deviations.to_bits(),
                from_values.squared_deviations.to_bits()
            );
        }
    }

    /// By hand: {1, 2, 3, 6}: mean 3, squared deviations 4 + 1 + 0 + 9 = 14.
    #[test]
    fn exact_moments_by_hand() {
        let m = moments(&[1.0, 2.0, 3.0, 6.0]);
        assert_eq!((m.n, m.mean, m.squared_deviations), (4, 3.0, 14.0));
    }

    /// Fractions and large values take the compensated path; values and counts agree to
    /// rounding there.
    #[test]
    fn other_values_agree_to_rounding() {
        for groups in [
            vec![(0.1, 3), (0.7, 2), (1.5, 4)],
            vec![(3e6, 2), (1.0, 5), (7.0, 1)],
        ] {
            let a = moments(&expand(&groups));
            let b = moments_of_groups(groups.iter().copied());
            assert_eq!(a.n, b.n);
            assert!((a.mean - b.mean).abs() <= 1e-15 * a.mean.abs());
            let rel = ((a.squared_deviations - b.squared_deviations) / a.squared_deviations).abs();
            assert!(rel < 1e-14, "{rel}");
        }
    }

    /// A constant sample has its value as mean and no variance, whatever n.
    #[test]
    fn constant_samples() {
        let m = moments(&[0.1; 7]);
        assert_eq!((m.mean, m.squared_deviations), (0.1, 0.0));
        let g = moments_of_groups([(0.1, 7), (5.0, 0)].into_iter());
        assert_eq!((g.n, g.mean, g.squared_deviations), (7, 0.1, 0.0));
        assert_eq!(moments(&[]).n, 0);
        assert_eq!(moments_of_groups(std::iter::empty()).n, 0);
    }
}
