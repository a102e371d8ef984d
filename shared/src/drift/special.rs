//! The distribution tails behind the p-values.
//!
//! From statrs wherever it agrees with scipy to the drift tests' relative 1e-9, down to
//! p = 1e-300 (`statrs_accuracy.rs` measures every choice against scipy, point by point):
//! the chi-square tail (`ChiSquared::sf`, i.e. statrs's regularised upper incomplete gamma),
//! the normal tail through it, and ln Gamma.
//!
//! The Student t tail is the project's own, because statrs 0.18 falls short there at large
//! degrees of freedom: its `beta_reg` forms the prefactor x^a (1-x)^b / B(a, b) as
//! `exp(ln_gamma(a+b) - ln_gamma(a) - ln_gamma(b) + ...)`, and at a Welch dof of 10^6 those
//! log-gammas are ~10^7, so their difference loses ~1e-9 absolute, i.e. relative error in p
//! (measured: 1.2e-9 at dof 2e6, the drift fixtures' million-against-a-million case; 1.7e-8
//! at 1e7; its continued fraction also stops after 140 steps). Here the prefactor is written
//! with the Stirling correction mu(x) = ln Gamma(x) - [(x - 1/2) ln x - x + ln sqrt(2 pi)]
//! (Temme; DiDonato and Morris, TOMS 708), which never subtracts large log-gammas, and each
//! ratio is taken with `ln_1p` where it is close to 1. The continued fraction uses the
//! modified Lentz method (Press et al., Numerical Recipes, 3rd ed., 6.4), with a generous
//! iteration cap.

use statrs::distribution::{ChiSquared, ContinuousCDF};
use statrs::function::gamma::ln_gamma;

/// ln sqrt(2 pi).
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;
/// Relative step at which a continued fraction or series counts as converged.
const EPS: f64 = 1e-16;
/// Smallest magnitude the Lentz method lets a denominator take (avoids division by zero).
const FPMIN: f64 = 1e-300;
/// Iteration cap: the fractions need O(sqrt(a)) steps, and a reaches ~10^6 for a million rows.
const MAX_ITER: usize = 1_000_000;

/// Stirling correction mu(x) = ln Gamma(x) - [(x - 1/2) ln x - x + ln sqrt(2 pi)], x > 0.
pub(crate) fn stirling_correction(x: f64) -> f64 {
    if x >= 10.0 {
        // Asymptotic series 1/(12x) - 1/(360x^3) + ...; at x >= 10 the first omitted term is
        // below 1e-17 (Abramowitz and Stegun 6.1.41).
        let r = 1.0 / x;
        let r2 = r * r;
        r * (1.0 / 12.0
            + r2 * (-1.0 / 360.0
                + r2 * (1.0 / 1260.0
                    + r2 * (-1.0 / 1680.0
                        + r2 * (1.0 / 1188.0 + r2 * (-691.0 / 360_360.0 + r2 / 156.0))))))
    } else {
        // Small x: magnitudes are small, so the subtraction costs nothing.
        ln_gamma(x) - ((x - 0.5) * x.ln() - x + LN_SQRT_2PI)
    }
}

/// a ln(r) where r = 1 + delta / a is a ratio near or far from 1: `ln_1p` keeps precision near 1,
/// the plain logarithm far from it (where 1 + delta/a itself would lose digits).
fn scaled_log(a: f64, ratio: f64, delta: f64) -> f64 {
    let d = delta / a;
    if d.abs() < 0.5 {
        a * d.ln_1p()
    } else {
        a * ratio.ln()
    }
}

/// ln of x^a y^b / B(a, b), y = 1 - x given separately so it keeps full relative precision.
fn ln_beta_prefactor(a: f64, b: f64, x: f64, y: f64) -> f64 {
    let c = a + b;
    // x c / a - 1 = (x b - y a) / a, and y c / b - 1 = (y a - x b) / b.
    let delta = x * b - y * a;
    scaled_log(a, x * c / a, delta) + scaled_log(b, y * c / b, -delta) + 0.5 * (a * b / c).ln()
        - LN_SQRT_2PI
        + stirling_correction(c)
        - stirling_correction(a)
        - stirling_correction(b)
}

/// The continued fraction of I_x(a, b) (Numerical Recipes `betacf`, modified Lentz).
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < FPMIN {
        d = FPMIN;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=MAX_ITER {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < FPMIN {
            d = FPMIN;
        }
        c = 1.0 + aa / c;
        if c.abs() < FPMIN {
            c = FPMIN;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < FPMIN {
            d = FPMIN;
        }
        c = 1.0 + aa / c;
        if c.abs() < FPMIN {
            c = FPMIN;
        }
        d = 1.0 / d;
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() <= EPS {
            break;
        }
    }
    h
}

/// Regularised incomplete beta I_x(a, b) for a, b > 0, with y = 1 - x passed in so that values
/// of x near 1 keep their precision. Small results are computed directly (never as 1 - ...).
pub(crate) fn beta_reg(a: f64, b: f64, x: f64, y: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if y <= 0.0 {
        return 1.0;
    }
    // The fraction converges fast for x below (a + 1) / (a + b + 2); above it use the symmetry
    // I_x(a, b) = 1 - I_y(b, a), where the result is large so the subtraction is harmless.
    if x < (a + 1.0) / (a + b + 2.0) {
        let front = ln_beta_prefactor(a, b, x, y).exp();
        (front * beta_continued_fraction(a, b, x) / a).clamp(0.0, 1.0)
    } else {
        let front = ln_beta_prefactor(b, a, y, x).exp();
        (1.0 - front * beta_continued_fraction(b, a, y) / b).clamp(0.0, 1.0)
    }
}

/// Two-sided normal tail 2 (1 - Phi(|z|)) (scipy's `2 * norm.sf(|z|)`), taken as the
/// chi-square tail of z^2 with one dof, i.e. statrs's Q(1/2, z^2 / 2): that agrees with scipy to
/// 1e-13, where statrs's `erfc` (behind its `Normal::sf`) is off by up to 8e-11.
/// NaN gives 1 (no evidence).
pub(crate) fn normal_two_sided(z: f64) -> f64 {
    chi_square_sf(1.0, z * z)
}

/// Chi-square upper tail P(X >= statistic) with `dof` degrees of freedom (scipy's
/// `chi2.sf`), i.e. Q(dof / 2, statistic / 2). NaN gives 1.
pub(crate) fn chi_square_sf(dof: f64, statistic: f64) -> f64 {
    if statistic.is_nan() {
        return 1.0;
    }
    // Every caller has dof >= 1; a distribution that cannot exist is no evidence of drift.
    ChiSquared::new(dof).map_or(1.0, |d| d.sf(statistic).clamp(0.0, 1.0))
}

/// Two-sided Student t tail 2 (1 - F_df(|t|)) = I_{df/(df+t^2)}(df/2, 1/2).
pub(crate) fn student_t_two_sided(t: f64, df: f64) -> f64 {
    if t == 0.0 || t.is_nan() {
        return 1.0;
    }
    let t2 = t * t;
    // x = df / (df + t^2) and y = t^2 / (df + t^2), each to full relative precision
    // (t^2 = inf gives x = 0, y = 1).
    let x = 1.0 / (1.0 + t2 / df);
    let y = 1.0 / (1.0 + df / t2);
    beta_reg(0.5 * df, 0.5, x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    /// erfc(1/sqrt 2) = 0.317310507862914 (two-sided p at z = 1, a standard table value),
    /// z = 1.959963984540054 gives 0.05; erfc(0) = 1; the sign of z does not matter.
    #[test]
    fn normal_tail_known_values() {
        assert!(rel(normal_two_sided(1.0), 0.317_310_507_862_914_15) < 1e-13);
        assert!(rel(normal_two_sided(-1.959_963_984_540_054), 0.05) < 1e-12);
        assert_eq!(normal_two_sided(0.0), 1.0);
        assert_eq!(normal_two_sided(f64::INFINITY), 0.0);
        assert_eq!(normal_two_sided(f64::NAN), 1.0);
    }

    /// With one degree of freedom the t distribution is Cauchy: p = 1 - (2/pi) atan|t|;
    /// with two, p = 1 - |t| / sqrt(2 + t^2). Both closed forms are exact.
    #[test]
    fn student_t_closed_forms() {
        for t in [0.1, 0.5, 1.0, 3.0, 10.0, 1e3] {
            // 1 - (2/pi) atan t = (2/pi) atan(1/t), free of cancellation for large t.
            let cauchy = 2.0 / std::f64::consts::PI * f64::atan(1.0 / t);
            assert!(rel(student_t_two_sided(t, 1.0), cauchy) < 1e-12, "t = {t}");
            // 1 - t/s with s = sqrt(2 + t^2) equals 2 / (s (s + t)).
            let s = (2.0 + t * t).sqrt();
            let two = 2.0 / (s * (s + t));
            assert!(rel(student_t_two_sided(-t, 2.0), two) < 1e-12, "t = {t}");
        }
        assert_eq!(student_t_two_sided(0.0, 5.0), 1.0);
        assert_eq!(student_t_two_sided(f64::INFINITY, 5.0), 0.0);
    }

    /// With two degrees of freedom the chi-square tail is e^(-x/2); with four, (1 + x/2) e^(-x/2).
    #[test]
    fn chi_square_closed_forms() {
        for x in [0.02, 1.0, 3.8, 5.0, 60.0, 1400.0] {
            let h = 0.5 * x;
            assert!(rel(chi_square_sf(2.0, x), (-h).exp()) < 1e-13, "x = {x}");
            assert!(
                rel(chi_square_sf(4.0, x), (1.0 + h) * (-h).exp()) < 1e-13,
                "x = {x}"
            );
        }
        assert_eq!(chi_square_sf(3.0, 0.0), 1.0);
        assert_eq!(chi_square_sf(3.0, f64::INFINITY), 0.0);
        assert_eq!(chi_square_sf(3.0, f64::NAN), 1.0);
    }
}
